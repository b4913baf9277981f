import ArgumentParser
import Checkpoint

/// `--key-file` and `--run-id`: what a checkpoint must be to be read (authenticated by a key,
/// belonging to a run), for the commands that read data.
struct TrustOptions: ParsableArguments {
    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp(
            "Require checkpoints sealed by this key (a file only you can read; repeat for older keys).",
            valueName: "file"
        )
    )
    var keyFiles: [String] = []

    @Option(help: "Require checkpoints of this run (see Lineage).")
    var runID: String?

    /// The directory to read, with the keys and run required.
    /// - Throws: What reading a key file throws, or an invalid run ID.
    func directory(_ path: String) throws -> CheckpointDirectory {
        let keys = try keyFiles.map { path throws(CheckpointError) in try Authentication.Key.contentsOfFile(path) }
        let authentication = keys.first.map { Authentication(signingKey: $0, alsoAccepting: Array(keys.dropFirst())) }
        let lineage = try runID.map { id throws(CheckpointError) in try Lineage(runID: id) }
        return CheckpointDirectory(path: path, authentication: authentication, lineage: lineage)
    }
}
