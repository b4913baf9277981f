import ArgumentParser
import Checkpoint

/// `ckpt verify DIR`: re-reads every chunk of a checkpoint and checks every checksum.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-check every checksum of a checkpoint.",
        discussion: """
            Reads the manifest and every chunk of every shard, checking each checksum (XXH3-128 or SHA-256), of the newest \
            checkpoint (or --step N, or every one with --all). An incremental checkpoint's chunks stored in \
            older checkpoints are read from there, so a missing, replaced or damaged checkpoint it depends \
            on makes it fail too. A damaged checkpoint is reported with the file and entry at fault, and \
            the exit status is 1. With --key-file, a checkpoint must also be sealed by one of the keys             (its manifest's HMAC-SHA256): a forged, unsealed or differently keyed one fails with             authenticationFailed (exit status 1).
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Option(help: "Verify the checkpoint of this step instead of the newest.")
    var step: UInt64?

    @Flag(help: "Verify every committed checkpoint.")
    var all = false

    @Option(help: "Threads that read and check chunks.")
    var threads = Checkpointer.Configuration.defaultThreads

    @OptionGroup var trust: TrustOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if all && step != nil { throw ValidationError("--step and --all cannot be used together") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let checkpoints = try trust.directory(directory)
        var results: [VerifyResult] = []
        let steps = try checkpoints.selectSteps(requested: step, all: all)
        // The total is known once the manifests are read; only the bar needs it.
        let total =
            ProgressBar.isShown
            ? steps.reduce(0) { total, step in
                guard let manifest = try? checkpoints.loadManifest(step: step) else { return total }
                return Formatting.sum([total, manifest.storedBytes, manifest.incremental?.referencedBytes ?? 0])
            } : 0
        let progress = ProgressBar("verifying", total: total)
        defer { progress.finish() }
        for step in steps {
            progress.relabel("verifying step \(step)")
            let result = VerifyResult(step: step, in: checkpoints, threads: threads, progress: progress)
            progress.finish()
            if !output.json { Console.line(result.line) }
            results.append(result)
        }
        if output.json { try Console.json(results) }
        let failed = results.filter { $0.status != "ok" }
        guard !failed.isEmpty else { return }
        if !output.json {
            Console.error("error: \(failed.count) of \(results.count) checkpoint(s) failed verification")
        }
        throw failed.contains { $0.status == "corrupt" } ? ExitStatus.corruption : ExitStatus.failure
    }
}

/// The outcome of verifying one checkpoint.
struct VerifyResult: Encodable {
    var step: UInt64
    /// `"ok"`, `"corrupt"` (damaged or incomplete data), or `"error"` (could not be read, e.g. permissions).
    var status: String
    /// The error code, `nil` when ok.
    var code: String?
    /// What is wrong, `nil` when ok.
    var message: String?
    /// The file at fault, `nil` when ok.
    var path: String?
    /// Bytes on disk that were checked (shard files, and the chunks used from older checkpoints),
    /// `nil` unless ok.
    var storedBytes: Int?
    /// The older checkpoints whose chunks this one uses (and that were read too), `nil` unless ok.
    var references: [UInt64]?
    /// The identifier of the key that authenticated it, `nil` unless ok and a key was given.
    var authenticatedBy: String?

    /// Verifies the checkpoint with the library (`CheckpointDirectory.verification(of:threads:progress:)`,
    /// the checks of `CheckpointDirectory.verify(step:threads:)`), moving `progress` as it goes.
    init(step: Step, in directory: CheckpointDirectory, threads: Int, progress: ProgressBar) {
        self.step = step.rawValue
        let verification = directory.verification(of: step, threads: threads) { progress.advance(by: $0) }
        if let error = verification.problem {
            status = error.isCorruption ? "corrupt" : "error"
            code = error.code.description
            message = error.message
            path = error.path
        } else {
            // A verification without a problem has a manifest.
            let manifest = verification.manifest
            status = "ok"
            storedBytes = manifest.map { Formatting.sum([$0.storedBytes, $0.incremental?.referencedBytes ?? 0]) }
            references = manifest?.incremental.map { $0.references.map(\.rawValue) }
            authenticatedBy = directory.authentication == nil ? nil : manifest?.authentication?.keyID
        }
    }

    /// `step 1200: ok (1.2 GiB checked)` or `step 1200: corrupt: corruptData: … (file)`.
    var line: String {
        guard let code else {
            let uses =
                references.map {
                    $0.isEmpty ? "" : ", with chunks of steps " + $0.map(String.init).joined(separator: ", ")
                }
                ?? ""
            let sealed = authenticatedBy.map { ", authenticated by key \($0)" } ?? ""
            return "step \(step): ok (\(Formatting.bytes(storedBytes ?? 0)) checked\(uses)\(sealed))"
        }
        var text = "step \(step): \(status): \(code): \(message ?? "")"
        if let path { text += " (\(path))" }
        return text
    }

    private enum CodingKeys: String, CodingKey {
        case step, status, code, message, path, storedBytes, references, authenticatedBy
    }

    /// Encodes every key, `null` included, so that consumers see one schema.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(step, forKey: .step)
        try container.encode(status, forKey: .status)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encode(path, forKey: .path)
        try container.encode(storedBytes, forKey: .storedBytes)
        try container.encode(references, forKey: .references)
        try container.encode(authenticatedBy, forKey: .authenticatedBy)
    }
}
