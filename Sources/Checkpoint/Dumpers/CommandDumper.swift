import Foundation

/// Dumps a process by running any program, with placeholders in its arguments:
/// `{pid}`, `{dir}` (the images directory), `{step}`, `{rank}` and `{prev}` (the previous images
/// directory, or empty).
///
/// ```swift
/// let dumper = CommandDumper(arguments: ["/opt/site/bin/snapshot", "--pid", "{pid}", "--to", "{dir}"])
/// ```
///
/// The program runs without a shell. Exit status 0 is success; a line `outcome: restored` on its
/// output reports that this process is a restored copy. Its output goes to an owner-only log
/// beside the images directory, removed once read. Placeholders are filled in one pass: a value
/// that contains one (a directory named `b{rank}{step}`) is passed as it is.
public struct CommandDumper: ProcessDumper {
    /// The program and its arguments, with placeholders.
    public var arguments: [String]
    /// Arguments that print the program's version (first line), or `nil`.
    public var versionArguments: [String]?
    /// Whether ranks that share a process run the command once (from the lowest rank) rather than
    /// once per rank with their own `{rank}`. Default `false`.
    public var oncePerProcess: Bool

    /// `"command"`.
    public var name: String { "command" }

    /// Creates a dumper from a program and its arguments.
    public init(arguments: [String], versionArguments: [String]? = nil, oncePerProcess: Bool = false) {
        self.arguments = arguments
        self.versionArguments = versionArguments
        self.oncePerProcess = oncePerProcess
    }

    /// Creates a dumper from a command line split at spaces (no quoting), as the `heat` example's
    /// `--dumper 'command:…'` does.
    public init(commandLine: String) {
        self.init(arguments: commandLine.split(separator: " ", omittingEmptySubsequences: true).map(String.init))
    }

    /// Checks that the program exists (and asks its version when configured).
    public func probe() -> DumperProbe {
        guard let program = arguments.first, ExternalProcess.locate(program) != nil else {
            return DumperProbe(isUsable: false, reason: "program '\(arguments.first ?? "")' was not found")
        }
        guard let versionArguments, let result = try? ExternalProcess.run(versionArguments, timeout: 30) else {
            return DumperProbe(isUsable: true)
        }
        return DumperProbe(isUsable: true, version: result.output.split(separator: "\n").first.map(String.init))
    }

    /// Runs the program with the placeholders filled in.
    public func dump(_ request: DumpRequest) throws -> DumpOutcome {
        let result = try ExternalProcess.run(
            substituted(request),
            timeout: request.timeout,
            timer: request.timer,
            logDirectory: Syscalls.parentDirectory(of: request.imagesDirectory)
        )
        guard result.status == 0 else {
            throw CheckpointError(
                .ioFailure,
                "dump command failed (exit \(result.status)): \(result.output.lastLines(3))",
                underlying: DumperExit(status: result.status)
            )
        }
        let restored = result.output.split(separator: "\n").contains {
            $0.trimmingCharacters(in: .whitespaces) == "outcome: restored"
        }
        return restored ? .restored : .continued
    }

    /// The arguments with the placeholders replaced.
    ///
    /// Each argument is read once, left to right: a placeholder's value is inserted as it is, never
    /// read again, so an images directory named `b{rank}{step}` reaches the program unchanged.
    public func substituted(_ request: DumpRequest) -> [String] {
        let values: [(placeholder: String, value: String)] = [
            ("{pid}", String(request.pid)),
            ("{dir}", request.imagesDirectory),
            ("{step}", String(request.step.rawValue)),
            ("{rank}", String(request.rank)),
            ("{prev}", request.previousImagesDirectory ?? ""),
        ]
        return arguments.map { argument in
            var result = ""
            var rest = Substring(argument)
            while let first = rest.first {
                if first == "{", let match = values.first(where: { rest.hasPrefix($0.placeholder) }) {
                    result += match.value
                    rest = rest.dropFirst(match.placeholder.count)
                } else {
                    result.append(first)
                    rest = rest.dropFirst()
                }
            }
            return result
        }
    }
}
