import Foundation

/// Checkpoints a process that runs under DMTCP (`dmtcp_launch`).
///
/// When the process to dump is this one and it runs under `dmtcp_launch` (which preloads DMTCP's
/// library), the dumper asks DMTCP directly: `dmtcp_checkpoint()` of DMTCP's plugin API checkpoints
/// the whole computation, returns once the images are written, and returns a second time in every
/// copy that `dmtcp_restart` makes — which then reports ``DumpOutcome/restored``. It cannot be
/// interrupted, so the request's timeout does not apply. Otherwise (another process, or no DMTCP
/// library in this one) it runs `dmtcp_command --bcheckpoint`; DMTCP 4.2.0's coordinator does not
/// block that command (it returns before the images are written), so the dump is then only
/// requested, not finished, when the call returns.
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

    /// Checks that this process runs under DMTCP, or that `dmtcp_command` exists and reaches a
    /// coordinator (`--status`).
    public func probe() -> DumperProbe {
        // Under dmtcp_launch, start no program (not even `dmtcp_command --version`): DMTCP records
        // the descriptors Foundation keeps for its child processes, and `dmtcp_restart` then fails
        // to find their peers (connectionrewirer.cpp: "PeerDiscoveryDbRestart").
        if Self.checkpointFunction() != nil { return DumperProbe(isUsable: true) }
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

    /// Checkpoints every process the coordinator manages: through DMTCP's library when this process
    /// is the one to dump and runs under `dmtcp_launch`, else through `dmtcp_command --bcheckpoint`.
    /// - Returns: ``DumpOutcome/restored`` when DMTCP's library says this process is a copy that
    ///   `dmtcp_restart` restored; otherwise ``DumpOutcome/continued``.
    public func dump(_ request: DumpRequest) throws -> DumpOutcome {
        if request.pid == Syscalls.processID, let checkpoint = Self.checkpointFunction() {
            let outcome: DumpOutcome
            switch checkpoint() {
            case 1: outcome = .continued  // DMTCP_AFTER_CHECKPOINT
            case 2: outcome = .restored  // DMTCP_AFTER_RESTART
            case let other:
                throw CheckpointError(.ioFailure, "dmtcp_checkpoint() failed (returned \(other))")
            }
            note(request)
            if outcome == .restored { ProcessIncarnation.noteRestore(in: request.imagesDirectory) }
            return outcome
        }
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
        note(request)
        return .continued
    }

    /// Writes `dmtcp.txt`, which says where DMTCP put the images, into the request's images folder.
    private func note(_ request: DumpRequest) {
        let location = ProcessInfo.processInfo.environment["DMTCP_CHECKPOINT_DIR"] ?? "the coordinator's --ckptdir"
        let note = "DMTCP images for step \(request.step), rank \(request.rank): \(location)\n"
        try? note.write(toFile: request.imagesDirectory + "/dmtcp.txt", atomically: true, encoding: .utf8)
    }

    /// `int dmtcp_checkpoint(void)` of DMTCP's plugin API (`dmtcp.h`), when `dmtcp_launch` loaded
    /// DMTCP's library into this process: it returns 1 (`DMTCP_AFTER_CHECKPOINT`) in the process
    /// that was checkpointed, 2 (`DMTCP_AFTER_RESTART`) in a restored copy.
    private static func checkpointFunction() -> (@convention(c) () -> Int32)? {
        Syscalls.loadedSymbol("dmtcp_checkpoint").map { unsafeBitCast($0, to: (@convention(c) () -> Int32).self) }
    }
}
