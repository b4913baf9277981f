import Foundation

/// Runs a helper program (a dumper) with a timeout and collects its output.
struct ExternalProcess {
    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs `arguments[0]` (looked up in `PATH` when it has no `/`) with the rest as arguments.
    ///
    /// The program's output (standard output and error together) goes to a private log, which
    /// the result's `output` is read back from: a file created owner-only (`0600`, `O_EXCL`,
    /// never through a link) in `logDirectory` and removed afterwards, or without a directory an
    /// anonymous file no other process can reach. Never a shared folder such as `/tmp`: the library
    /// acts on what the output says (`outcome: restored`).
    /// - Parameter logDirectory: A directory of the checkpoint's own tree for the log (the folder
    ///   that holds a dump's images folder, `ckpt-STEP/images`, so that the images folder the
    ///   program gets stays empty); `nil`: an anonymous file (probes, which have no tree).
    /// - Throws: `notFound` when the program does not exist; `timedOut` after `timeout` seconds
    ///   (the program is killed), or when `timer` says the time is up; `ioFailure` when the log
    ///   cannot be created or the program cannot be started.
    static func run(
        _ arguments: [String],
        timeout: Double,
        timer: DumpTimer = .monotonic,
        environment: [String: String]? = nil,
        logDirectory: String? = nil
    ) throws(CheckpointError) -> Result {
        guard let program = arguments.first, let executable = locate(program) else {
            throw CheckpointError(
                .notFound,
                "program '\(arguments.first ?? "")' was not found in PATH; install it or give its full path"
            )
        }

        let log: OpenFile
        if let logDirectory {
            let name = ".dump-output-" + String(UInt64.random(in: 0...UInt64.max), radix: 16) + ".log"
            log = try OpenFile.createExclusive(logDirectory + "/" + name, permissions: 0o600, readable: true)
        } else {
            log = try OpenFile.createAnonymous("ckpt-dumper-log")
        }
        defer {
            log.close()
            if logDirectory != nil { try? Syscalls.removeTree(log.path) }
        }
        let finished = DispatchSemaphore(value: 0)
        let output = FileHandle(fileDescriptor: log.descriptor, closeOnDealloc: false)
        func makeProcess() -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = Array(arguments.dropFirst())
            if let environment {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            process.terminationHandler = { _ in finished.signal() }
            return process
        }
        var process = makeProcess()
        do {
            // A program file just written (a site's dump script) can be "busy" for a moment: a
            // process another thread spawns while the file is open for writing inherits that
            // descriptor until it executes its own program. Retry for up to a second.
            var attempt = 0
            while true {
                do {
                    try process.run()
                    break
                } catch  where Self.isTextFileBusy(error) && attempt < 20 {
                    attempt += 1
                    Thread.sleep(forTimeInterval: 0.05)
                    process = makeProcess()
                }
            }
        } catch {
            throw CheckpointError(.ioFailure, "could not start '\(program)'", underlying: SendableDescription(error))
        }
        if !timer.wait(finished, timeout: timeout) {
            killGroup(process.processIdentifier)
            // The program's end signals `finished` once more (the expiry took the first signal).
            while process.isRunning { finished.wait() }
            throw CheckpointError(.timedOut, "'\(program)' did not finish within \(timeout) s and was killed")
        }
        return Result(status: process.terminationStatus, output: readText(log))
    }

    /// Whether starting a program failed because its file is open for writing (`ETXTBSY`), which
    /// Foundation reports inside a Cocoa error.
    static func isTextFileBusy(_ error: any Error) -> Bool {
        var error: NSError? = error as NSError
        while let current = error {
            if current.domain == NSPOSIXErrorDomain && current.code == Int(ETXTBSY) { return true }
            error = current.userInfo[NSUnderlyingErrorKey] as? NSError
        }
        return false
    }

    /// An open log as text (at most its last 1 MiB; empty when unreadable).
    private static func readText(_ log: OpenFile) -> String {
        guard let size = try? log.size() else { return "" }
        let count = min(size, 1 << 20)
        var bytes = [UInt8](repeating: 0, count: count)
        let read: Bool = bytes.withUnsafeMutableBytes { buffer in
            (try? log.read(into: buffer, at: size - count)) != nil
        }
        return read ? String(decoding: bytes, as: UTF8.self) : ""
    }

    /// A program's log as text (at most its last 1 MiB; empty when unreadable). Read through the
    /// library's own file calls: Foundation's file reading leaks its buffer on Linux.
    static func readText(_ path: String) -> String {
        guard let bytes = try? CheckpointDirectory.readWholeFile(path, limit: Int.max) else { return "" }
        return String(decoding: bytes.suffix(1 << 20), as: UTF8.self)
    }

    /// Kills a program and whatever it started. Foundation starts each program as the leader of its
    /// own process group, so a shell script's children go too (killing the shell alone would leave
    /// them running, holding the dumper's resources).
    private static func killGroup(_ leader: Int32) {
        Syscalls.killProcessGroup(leader)
    }

    /// Runs a program outside this process's tree of children, for a dumper that dumps this very
    /// process: `criu dump` refuses to run inside the tree it dumps ("The criu itself is within
    /// dumped tree").
    ///
    /// A launcher shell starts the program in the background and exits at once, so the program is
    /// reparented (to init or the nearest subreaper); the program waits until the launcher is gone
    /// before it starts. Its output goes to `dump-output.log` and its exit status to `dump-status`
    /// in `directory`, which is polled rather than waited on so that this process holds no
    /// descriptor of the program while it is being dumped — and so that a copy restored from the
    /// images, which resumes inside this loop, finds the status too.
    /// - Throws: `notFound` when the program does not exist; `timedOut` after `timeout` seconds
    ///   (the program is killed); `ioFailure` when it cannot be started.
    static func runDetached(
        _ arguments: [String],
        timeout: Double,
        timer: DumpTimer = .monotonic,
        directory: String
    ) throws(CheckpointError) -> Result {
        guard let program = arguments.first, let executable = locate(program) else {
            throw CheckpointError(
                .notFound,
                "program '\(arguments.first ?? "")' was not found in PATH; install it or give its full path"
            )
        }
        let gate = directory + "/.dump-gate"
        let status = directory + "/dump-status"
        let output = directory + "/dump-output.log"
        let script = """
            gate=$1; status=$2; output=$3; shift 3
            (
                waited=0
                while [ ! -e "$gate" ]; do
                    waited=$((waited + 1))
                    if [ "$waited" -gt 3000 ]; then exit 1; fi
                    sleep 0.01
                done
                "$@" > "$output" 2>&1
                echo $? > "$status.tmp" && mv "$status.tmp" "$status"
            ) &
            """
        // (The program gives up after 30 s without the gate: this process died before it opened it.)
        // The launcher leads a new process group, which the program stays in and which (so its
        // number) outlives the launcher: the group is what a timeout kills.
        let group = try spawnLauncher(script, [gate, status, output, executable] + arguments.dropFirst())
        guard FileManager.default.createFile(atPath: gate, contents: nil) else {
            killGroup(group)
            throw CheckpointError(.ioFailure, "could not start '\(program)' (no gate file)", path: gate)
        }
        let timeIsUp = timer.start(timeout: timeout)
        while !FileManager.default.fileExists(atPath: status) {
            if timeIsUp() {
                killGroup(group)
                try? FileManager.default.removeItem(atPath: gate)
                throw CheckpointError(.timedOut, "'\(program)' did not finish within \(timeout) s and was killed")
            }
            Syscalls.sleep(microseconds: 20_000)
        }
        try? FileManager.default.removeItem(atPath: gate)
        let code = Int32(readText(status).trimmingCharacters(in: .whitespacesAndNewlines))
        return Result(status: code ?? -1, output: readText(output))
    }

    /// Starts `/bin/sh -c script sh ARGUMENTS…` as the leader of a new process group and waits for
    /// that shell (not for what it leaves in the background) to exit.
    ///
    /// Not through Foundation's `Process`: it learns that a program ended when a socket it passes
    /// to the program is closed, and a background child inherits that socket, so `Process` would
    /// wait for the detached program too. Here the shell gets `/dev/null` on 0, 1 and 2 and no
    /// other descriptor.
    /// - Returns: The shell's process id, which is also the group's.
    private static func spawnLauncher(_ script: String, _ arguments: [String]) throws(CheckpointError) -> Int32 {
        let pid: Int32
        do {
            let shell = ["/bin/sh", "-c", script, "sh"]
            pid = try Syscalls.spawnInNewSession("/bin/sh", arguments: shell + arguments)
        } catch {
            throw CheckpointError(
                .ioFailure,
                "could not start /bin/sh to launch a dumper",
                underlying: error.underlying
            )
        }
        // A launcher that cannot be waited for is no longer this process's child: it has ended.
        _ = try? Syscalls.waitForExit(of: pid)
        return pid
    }

    /// The full path of a program: as given when it contains `/`, else the first match in `PATH`.
    static func locate(_ program: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
extension String {
    /// The last `count` lines, for error messages that quote a program's output.
    func lastLines(_ count: Int) -> String {
        split(separator: "\n", omittingEmptySubsequences: true).suffix(count).joined(separator: " | ")
    }
}
