import Foundation

/// Which incarnation of this process is running: the kernel's start time of the process, which a
/// copy restored from a process image cannot share with the original.
///
/// CRIU gives a restored process its old pid back and DMTCP virtualizes pids, so the pid does not
/// tell the copy from the original; but both create the copy as a new process, whose start time in
/// `/proc/self/stat` (field 22, in clock ticks since boot) is the time of the restore. A dumper
/// reads it before and after the dump: when it changed, the dump call is returning in a restored
/// copy (``DumpOutcome/restored``).
struct ProcessIncarnation: Equatable {
    /// The start time, in clock ticks since boot.
    var startTime: UInt64

    /// This process's incarnation; `nil` where `/proc/self/stat` cannot be read or parsed.
    static func current() -> ProcessIncarnation? {
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/stat") else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return parse(String(decoding: data, as: UTF8.self))
    }

    /// The incarnation in the text of a `/proc/PID/stat` file: field 22, counted after the command
    /// name in parentheses (which may itself contain spaces and parentheses).
    static func parse(_ stat: String) -> ProcessIncarnation? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        // After ") " come fields 3 (state), 4, …: field 22 is the 20th of them.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count >= 20, let startTime = UInt64(fields[19]) else { return nil }
        return ProcessIncarnation(startTime: startTime)
    }

    /// How a dump call comes out for the process it dumped: ``DumpOutcome/restored`` when this
    /// process is no longer the incarnation `before` was taken in.
    static func outcome(since before: ProcessIncarnation?) -> DumpOutcome {
        guard let before, let now = current(), now != before else { return .continued }
        return .restored
    }

    /// Appends a line to `restores.log` in a dump's images folder when a copy restored from those
    /// images resumes: when, which pid, which start time. The folder's images are unchanged (CRIU
    /// and DMTCP ignore the file), and the line is the one trace of a restore that outlives the
    /// restored process where its log level hides the checkpointer's notice.
    static func noteRestore(in imagesDirectory: String) {
        let line =
            "restored \(Date().formatted(.iso8601)) pid \(Syscalls.processID)"
            + " start time \(current().map { String($0.startTime) } ?? "unknown")\n"
        let path = imagesDirectory + "/restores.log"
        if let handle = FileHandle(forWritingAtPath: path) {
            defer { try? handle.close() }
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: Data(line.utf8))
        } else {
            _ = FileManager.default.createFile(
                atPath: path,
                contents: Data(line.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        }
    }
}
