import ArgumentParser
import Checkpoint

/// `ckpt`: lists, verifies, inspects, extracts from, exports, compares, prunes and reports on swift-checkpoint
/// checkpoint directories.
///
/// Only `ckpt prune` modifies a checkpoint directory (under its lock); every other command only
/// reads and takes no lock, so it is safe to run beside a job that is writing checkpoints.
@main
struct CkptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ckpt",
        abstract: "List, verify, inspect, extract, export, compare, prune and report on checkpoint directories.",
        discussion: """
            DIR is the directory a Checkpointer writes to: the one holding ckpt-<step> folders. \
            Only 'ckpt prune' changes it, and only while no checkpointer holds its lock; the other commands \
            only read and take no lock, so they can run beside a job that is writing checkpoints. \
            Long operations show a progress bar on standard error when it is a terminal.

            EXIT STATUS
              0  success
              1  corruption found (a checksum, shard or manifest failed to verify)
              2  bad input or not found (bad arguments, missing directory, no checkpoints,
                 unknown step, rank or entry, an output file that exists, a directory
                 locked by a running checkpointer)
              3  any other failure (permissions, I/O errors, unsupported format version)
            """,
        version: LibraryVersion.string,
        subcommands: [
            List.self, Verify.self, Inspect.self, Extract.self, Export.self, Diff.self, Prune.self, Report.self,
        ]
    )

    /// Parses and runs a subcommand, printing any failure as one `error:` line with the documented exit status.
    ///
    /// ArgumentParser's own `main()` would print usage after a parse error and exit with `EX_USAGE` (64);
    /// this keeps the tool's statuses to the four documented ones.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let status as ExitCode {
            // The command has already reported what went wrong.
            exit(withError: status)
        } catch let error as CheckpointError {
            Console.error("error: " + error.oneLine)
            exit(withError: ExitStatus.of(error))
        } catch let error as ToolError {
            Console.error("error: " + error.oneLine)
            exit(withError: error.status)
        } catch {
            switch exitCode(for: error) {
            case .success:
                exit(withError: error)  // --help, --version: ArgumentParser prints them
            case .validationFailure:
                let message = firstLine(message(for: error))
                Console.error("error: \(message) (see '\(helpCommand())')")
                exit(withError: ExitStatus.badInput)
            default:
                Console.error("error: \(firstLine(message(for: error)))")
                exit(withError: ExitStatus.failure)
            }
        }
    }

    /// `ckpt verify --help` when the arguments name a subcommand, else `ckpt --help`.
    private static func helpCommand() -> String {
        let names = configuration.subcommands.compactMap { $0.configuration.commandName }
        let subcommand = CommandLine.arguments.dropFirst().first { names.contains($0) }
        return ["ckpt", subcommand, "--help"].compactMap { $0 }.joined(separator: " ")
    }

    private static func firstLine(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? "unknown error"
    }
}

/// The options every subcommand shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print machine-readable JSON instead of a table.")
    var json = false
}

/// The exit statuses documented in `ckpt --help`.
enum ExitStatus {
    /// Corruption found.
    static let corruption = ExitCode(1)
    /// Bad arguments, a missing directory, no checkpoints, an unknown step or rank.
    static let badInput = ExitCode(2)
    /// Anything else: permissions, I/O errors, a format this build does not read.
    static let failure = ExitCode(3)

    /// The status for a library error.
    static func of(_ error: CheckpointError) -> ExitCode {
        if error.isCorruption { return corruption }
        switch error.code {
        case .notFound, .noCheckpoint, .invalidConfiguration, .entryMissing: return badInput
        default: return failure
        }
    }
}

/// A failure of the tool itself rather than of the library: an output file that exists, a format
/// an entry cannot be written in. Reported as one `error:` line with its exit status.
struct ToolError: Error, CustomStringConvertible {
    var message: String
    var path: String?
    var status: ExitCode

    /// Bad input: exit status 2.
    static func badInput(_ message: String, path: String? = nil) -> ToolError {
        ToolError(message: message, path: path, status: ExitStatus.badInput)
    }

    /// Any other failure: exit status 3.
    static func failure(_ message: String, path: String? = nil) -> ToolError {
        ToolError(message: message, path: path, status: ExitStatus.failure)
    }

    /// The message and the file on one line.
    var oneLine: String { path.map { "\(message) (\($0))" } ?? message }

    var description: String { oneLine }
}

extension CheckpointError {
    /// The message, file and cause on one line, without the code (`description` has it too).
    var oneLine: String {
        var text = message
        if let path { text += " (\(path))" }
        if let underlying { text += " [\(underlying)]" }
        return text
    }
}
