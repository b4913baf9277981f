import Foundation

/// Checkpoints a process that runs under DMTCP (`dmtcp_launch`) through `dmtcp_command --bcheckpoint`.
///
/// DMTCP writes its images where the coordinator was told to (`dmtcp_launch --ckptdir`, or
/// `DMTCP_CHECKPOINT_DIR`); the images directory of the checkpoint then holds `dmtcp.txt` naming
/// that location. The probe fails when the process is not running under a reachable coordinator.
public struct DMTCPDumper: ProcessDumper {
    /// The `dmtcp_command` program.
    public var command: String
    /// More arguments for `dmtcp_command`, e.g. `["--coord-port", "7779"]`.
    public var extraArguments: [String]

    /// `"dmtcp"`.
    public var name: String { "dmtcp" }

    /// Creates a DMTCP dumper.
    public init(command: String = "dmtcp_command", extraArguments: [String] = []) {
        self.command = command
        self.extraArguments = extraArguments
    }

    /// Checks that `dmtcp_command` exists and reaches a coordinator (`--status`).
    public func probe() -> DumperProbe {
        guard ExternalProcess.locate(command) != nil else {
            return DumperProbe(isUsable: false, reason: "'\(command)' is not installed (Debian: apt-get install dmtcp)")
        }
        let version = (try? ExternalProcess.run([command, "--version"], timeout: 30))?.output
            .split(separator: "\n").first.map(String.init)
        do {
            let status = try ExternalProcess.run([command] + extraArguments + ["--status"], timeout: 30)
            guard status.status == 0 else {
                return DumperProbe(
                    isUsable: false,
                    version: version,
                    reason:
                        "no DMTCP coordinator answers; start the program with dmtcp_launch (\(status.output.lastLines(2)))"
                )
            }
        } catch {
            return DumperProbe(isUsable: false, version: version, reason: error.message)
        }
        return DumperProbe(isUsable: true, version: version)
    }

    /// Asks the coordinator for a blocking checkpoint of every process it manages.
    public func dump(_ request: DumpRequest) throws -> DumpOutcome {
        let result = try ExternalProcess.run(
            [command] + extraArguments + ["--bcheckpoint"],
            timeout: request.timeout,
            timer: request.timer,
            logDirectory: Syscalls.parentDirectory(of: request.imagesDirectory)
        )
        guard result.status == 0 else {
            throw CheckpointError(
                .ioFailure,
                "dmtcp_command --bcheckpoint failed (exit \(result.status)): \(result.output.lastLines(3))",
                underlying: DumperExit(status: result.status)
            )
        }
        let location = ProcessInfo.processInfo.environment["DMTCP_CHECKPOINT_DIR"] ?? "the coordinator's --ckptdir"
        let note = "DMTCP images for step \(request.step), rank \(request.rank): \(location)\n"
        try? note.write(toFile: request.imagesDirectory + "/dmtcp.txt", atomically: true, encoding: .utf8)
        return .continued
    }
}
