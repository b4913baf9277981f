import Foundation

/// Runs a helper program (a dumper) with a timeout and collects its output.
struct ExternalProcess {
    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs `arguments[0]` (looked up in `PATH` when it has no `/`) with the rest as arguments.
    /// - Throws: `notFound` when the program does not exist; `timedOut` after `timeout` seconds
    ///   (the program is killed).
    static func run(
        _ arguments: [String],
        timeout: Double,
        environment: [String: String]? = nil
    ) throws(CheckpointError) -> Result {
        guard let program = arguments.first, let executable = locate(program) else {
            throw CheckpointError(
                .notFound,
                "program '\(arguments.first ?? "")' was not found in PATH; install it or give its full path"
            )
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ckpt-dumper-\(UUID().uuidString).log"
        )
        guard FileManager.default.createFile(atPath: output.path, contents: nil) else {
            throw CheckpointError(.ioFailure, "could not create a log file for '\(program)'", path: output.path)
        }
        defer { try? FileManager.default.removeItem(at: output) }
        let finished = DispatchSemaphore(value: 0)
        do {
            let handle = try FileHandle(forWritingTo: output)
            defer { try? handle.close() }
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            process.terminationHandler = { _ in finished.signal() }
            try process.run()
        } catch {
            throw CheckpointError(.ioFailure, "could not start '\(program)'", underlying: SendableDescription(error))
        }
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
            throw CheckpointError(.timedOut, "'\(program)' did not finish within \(timeout) s and was killed")
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return Result(status: process.terminationStatus, output: text)
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

/// A non-`Sendable` error, carried as its description.
struct SendableDescription: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ error: any Error) { description = "\(error)" }
}

extension String {
    /// The last `count` lines, for error messages that quote a program's output.
    func lastLines(_ count: Int) -> String {
        split(separator: "\n", omittingEmptySubsequences: true).suffix(count).joined(separator: " | ")
    }
}
