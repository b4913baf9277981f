import ArgumentParser
import Checkpoint
import Foundation

/// `ckpt list DIR`: one row per committed checkpoint, oldest first.
struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the committed checkpoints in a directory.",
        discussion: """
            Shows each checkpoint's step, creation time, rank count, raw and stored size, compression ratio and \
            status. Without --verify, listing reads only the manifests, so it is fast but says nothing about \
            the shards' data: the status is "manifest ok" when the checkpoint is committed and its manifest \
            loads and matches its SHA-256, otherwise the error code (e.g. manifestInvalid). A damaged chunk \
            still shows "manifest ok".

            With --verify, every listed checkpoint is verified as 'ckpt verify' does (every chunk of every \
            shard re-read and its checksum checked, and with --key-file the seal): the status is "ok", or \
            "damaged: CODE (FILE)" for damaged or incomplete data, or "unreadable: CODE (FILE)" when it could \
            not be read (permissions, I/O); the exit status is then 1 when any is damaged, 3 when any is \
            unreadable.
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Flag(help: "Verify every listed checkpoint fully (every chunk's checksum), as 'ckpt verify' does.")
    var verify = false

    @Option(help: "Threads that read and check chunks, with --verify.")
    var threads = Checkpointer.Configuration.defaultThreads

    @OptionGroup var trust: TrustOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let checkpoints = try trust.directory(directory)
        var rows = try checkpoints.committedSteps().map { ListRow(step: $0, in: checkpoints) }
        if verify {
            let progress = ProgressBar(
                "verifying",
                total: rows.reduce(0) { Formatting.sum([$0, $1.storedBytes ?? 0]) }
            )
            defer { progress.finish() }
            for index in rows.indices {
                progress.relabel("verifying step \(rows[index].step)")
                let step = Step(rawValue: rows[index].step)
                rows[index].record(VerifyResult(step: step, in: checkpoints, threads: threads, progress: progress))
            }
            progress.finish()
        }
        try show(rows)
        if rows.contains(where: { $0.status.hasPrefix(ListRow.damaged) }) { throw ExitStatus.corruption }
        if rows.contains(where: { $0.status.hasPrefix(ListRow.unreadable) }) { throw ExitStatus.failure }
    }

    private func show(_ rows: [ListRow]) throws {
        if output.json {
            if rows.isEmpty { Console.line("[]") } else { try Console.json(rows) }
            return
        }
        guard !rows.isEmpty else {
            Console.line("no checkpoints in \(directory)")
            return
        }
        var table = TextTable(">STEP", "CREATED", ">RANKS", ">RAW", ">STORED", ">RATIO", "STATUS")
        for row in rows {
            table.append([
                String(row.step), row.createdAt ?? "-", row.ranks.map(String.init) ?? "-",
                row.rawBytes.map(Formatting.bytes) ?? "-", row.storedBytes.map(Formatting.bytes) ?? "-",
                row.ratio.map(Formatting.ratioText) ?? "-", row.status,
            ])
        }
        table.lines().forEach(Console.line)
    }
}

/// One checkpoint as `ckpt list` reports it; the fields other than step and status are `nil`
/// (JSON `null`) when the manifest does not load.
struct ListRow: Encodable {
    var step: UInt64
    var createdAt: String?
    var ranks: Int?
    var rawBytes: Int?
    var storedBytes: Int?
    var ratio: Double?
    /// Without `--verify`: `"manifest ok"` (committed, its manifest loads and matches its SHA-256:
    /// no shard data was read) or the manifest's error code. With `--verify`: `"ok"`,
    /// `"damaged: CODE (FILE)"` or `"unreadable: CODE (FILE)"`.
    var status: String
    /// Why the manifest did not load, or why verification failed.
    var error: String?

    /// The status of a checkpoint whose manifest loads, when no shard data was read.
    static let manifestOK = "manifest ok"
    /// The prefix of the status of a checkpoint whose data failed verification.
    static let damaged = "damaged: "
    /// The prefix of the status of a checkpoint that could not be read to verify it.
    static let unreadable = "unreadable: "

    init(step: Step, in directory: CheckpointDirectory) {
        self.step = step.rawValue
        do {
            let manifest = try directory.loadManifest(step: step)
            createdAt = manifest.createdAt
            ranks = manifest.rankCount
            rawBytes = manifest.rawBytes
            storedBytes = manifest.storedBytes
            ratio = Formatting.rounded(Formatting.ratio(raw: manifest.rawBytes, stored: manifest.storedBytes))
            status = Self.manifestOK
        } catch {
            status = error.code.description
            self.error = error.oneLine
        }
    }

    /// Replaces the status with the outcome of a full verification.
    mutating func record(_ result: VerifyResult) {
        guard let code = result.code else {
            status = "ok"
            return
        }
        let file = result.path.map { " (\(($0 as NSString).lastPathComponent))" } ?? ""
        status = (result.status == "corrupt" ? Self.damaged : Self.unreadable) + code + file
        error = (result.message ?? code) + (result.path.map { " (\($0))" } ?? "")
    }

    private enum CodingKeys: String, CodingKey {
        case step, createdAt, ranks, rawBytes, storedBytes, ratio, status, error
    }

    /// Encodes every key, `null` included, so that consumers see one schema.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(step, forKey: .step)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(ranks, forKey: .ranks)
        try container.encode(rawBytes, forKey: .rawBytes)
        try container.encode(storedBytes, forKey: .storedBytes)
        try container.encode(ratio, forKey: .ratio)
        try container.encode(status, forKey: .status)
        try container.encode(error, forKey: .error)
    }
}
