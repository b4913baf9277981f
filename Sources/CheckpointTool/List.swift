import ArgumentParser
import Checkpoint

/// `ckpt list DIR`: one row per committed checkpoint, oldest first.
struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the committed checkpoints in a directory.",
        discussion: """
            Shows each checkpoint's step, creation time, rank count, raw and stored size, compression ratio and \
            status. The status is "ok" when the manifest loads and matches its SHA-256, otherwise the error code \
            (e.g. manifestInvalid). Listing does not re-read shard data, so it is fast but does not find \
            damaged chunks: run 'ckpt verify' for that.
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @OptionGroup var output: OutputOptions

    func run() throws {
        let checkpoints = CheckpointDirectory(path: directory)
        let rows = try checkpoints.committedSteps().map { ListRow(step: $0, in: checkpoints) }
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
    /// `"ok"` or the error code.
    var status: String
    /// Why the manifest did not load.
    var error: String?

    init(step: Step, in directory: CheckpointDirectory) {
        self.step = step.rawValue
        do {
            let manifest = try directory.loadManifest(step: step)
            createdAt = manifest.createdAt
            ranks = manifest.rankCount
            rawBytes = manifest.rawBytes
            storedBytes = manifest.storedBytes
            ratio = Formatting.rounded(Formatting.ratio(raw: manifest.rawBytes, stored: manifest.storedBytes))
            status = "ok"
        } catch {
            status = error.code.description
            self.error = error.oneLine
        }
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
