import ArgumentParser
import Checkpoint

/// `ckpt inspect DIR`: a checkpoint's manifest and the entries of one shard.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a checkpoint's manifest and the entries of one rank's shard.",
        discussion: """
            Prints the step, creation time, ranks, host, library, writer settings, timings and metadata, then \
            each entry of the shard: name, element type, shape, raw and stored size, ratio, filter and chunks, \
            and the named fields of plain structs that declare them. \
            The manifest's checksum and the shard's index are checked; chunk data is not (use 'ckpt verify').
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Option(help: "Inspect the checkpoint of this step instead of the newest.")
    var step: UInt64?

    @Option(help: "The rank whose shard to list.")
    var rank = 0

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard rank >= 0 else { throw ValidationError("--rank must not be negative") }
    }

    func run() throws {
        let checkpoints = CheckpointDirectory(path: directory)
        let step = try checkpoints.selectSteps(requested: step)[0]
        let manifest = try checkpoints.loadManifest(step: step)
        try manifest.requireRank(rank, path: checkpoints.path(for: step))
        let entries = try checkpoints.openSnapshot(step: step, rank: rank, threads: 1).entries
        let report = InspectReport(manifest: manifest, rank: rank, entries: entries)
        if output.json {
            try Console.json(report)
        } else {
            report.lines(path: checkpoints.path(for: step)).forEach(Console.line)
        }
    }
}

/// What `ckpt inspect` shows, shaped for JSON.
struct InspectReport: Encodable {
    var step: UInt64
    /// Process dumps taken after the checkpoint (one record per rank), or empty.
    var dumps: [DumpRecord]
    var createdAt: String
    var rankCount: Int
    var hostName: String
    var library: String
    var shardFormat: String
    var zstdVersion: String
    var metadata: [String: String]
    var settings: Manifest.Settings
    var timings: Manifest.Timings
    var rawBytes: Int
    var storedBytes: Int
    var rank: Int
    var shard: Shard
    var entries: [Entry]

    /// The inspected rank's shard file.
    struct Shard: Encodable {
        var file: String
        var fileBytes: Int
        var rawBytes: Int
        var storedBytes: Int
        /// Where the shard's region starts in its node's aggregated file (`nil`: a file of its own).
        var offset: Int?
    }

    /// One entry of the shard.
    struct Entry: Encodable {
        var name: String
        /// The Swift type name of the elements (or of the encoded value).
        var type: String
        /// The scalar kind, e.g. `float64`; `json` for encoded `Codable` values.
        var scalar: String
        var elementBytes: Int
        var shape: [Int]
        var filter: String
        var rawBytes: Int
        var storedBytes: Int
        var ratio: Double
        var chunks: Int
        /// The named fields of plain-struct elements that declare them (`StructuredElement`).
        var fields: [ElementType.Field]?

        init(_ info: EntryInfo) {
            name = info.name
            type = info.elementType.typeName
            scalar = info.isEncoded ? "json" : info.elementType.scalar.description
            elementBytes = info.elementType.size
            shape = info.shape
            filter = info.filter.description
            rawBytes = info.rawBytes
            storedBytes = info.storedBytes
            ratio = Formatting.rounded(info.compressionRatio)
            chunks = info.chunkCount
            fields = info.elementType.fields
        }

        /// `float64`, `json Sim.Parameters`, `float32 x4` (a SIMD4<Float>), `Sim.Particle (24 B)`.
        var typeText: String {
            if scalar == "json" { return "json " + type }
            if scalar == "opaque" { return "\(type) (\(elementBytes) B)" }
            let scalarBytes = ElementType.Scalar.allCases.first { $0.description == scalar }?.size ?? elementBytes
            return scalarBytes == elementBytes || scalarBytes == 0 ? scalar : "\(scalar) x\(elementBytes / scalarBytes)"
        }
    }

    init(manifest: Manifest, rank: Int, entries: [EntryInfo]) {
        step = manifest.step.rawValue
        dumps = manifest.dumps ?? []
        createdAt = manifest.createdAt
        rankCount = manifest.rankCount
        hostName = manifest.hostName
        library = manifest.library
        shardFormat = manifest.shardFormat
        zstdVersion = manifest.zstdVersion
        metadata = manifest.metadata
        settings = manifest.settings
        timings = manifest.timings
        rawBytes = manifest.rawBytes
        storedBytes = manifest.storedBytes
        self.rank = rank
        let record = manifest.shards[rank]
        shard = Shard(
            file: record.file,
            fileBytes: record.fileBytes,
            rawBytes: record.rawBytes,
            storedBytes: record.storedBytes,
            offset: record.offset
        )
        self.entries = entries.map(Entry.init)
    }

    /// The human-readable report.
    func lines(path: String) -> [String] {
        let ratio = Formatting.ratioText(Formatting.ratio(raw: rawBytes, stored: storedBytes))
        var lines = [
            "checkpoint \(step)  \(path)",
            "  created    \(createdAt) on \(hostName)",
            "  ranks      \(rankCount)",
            "  size       \(Formatting.bytes(rawBytes)) raw, \(Formatting.bytes(storedBytes)) stored (\(ratio))",
            "  library    \(library), shard format \(shardFormat), zstd \(zstdVersion)",
            "  settings   compression \(settings.compression), filter \(settings.filter), "
                + "chunks of \(Formatting.bytes(settings.chunkSize)), \(settings.threads) thread(s)",
            "  timings    stage \(Formatting.seconds(timings.stageSeconds)), "
                + "encode \(Formatting.seconds(timings.encodeSeconds)), "
                + "write \(Formatting.seconds(timings.writeSeconds)), sync \(Formatting.seconds(timings.syncSeconds)), "
                + "commit \(Formatting.seconds(timings.commitSeconds))",
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            lines.append("  metadata   \(key) = \(value)")
        }
        for dump in dumps {
            let version = dump.version.map { " \($0)" } ?? ""
            var line =
                "  dump       rank \(dump.rank): \(dump.dumper)\(version) \(dump.status) in "
                + "\(Formatting.seconds(dump.seconds)), images \(dump.imagesDirectory)"
            if let status = dump.exitStatus { line += ", exit \(status)" }
            if let message = dump.message { line += " — \(message)" }
            lines.append(line)
        }
        lines.append("")
        lines.append(
            "rank \(rank): \(shard.file)\(shard.offset.map { " at byte \($0)" } ?? ""), \(Formatting.bytes(shard.fileBytes)), \(entries.count) entr"
                + (entries.count == 1 ? "y" : "ies")
        )
        var table = TextTable("NAME", "TYPE", "SHAPE", ">RAW", ">STORED", ">RATIO", "FILTER", ">CHUNKS")
        for entry in entries {
            table.append([
                entry.name, entry.typeText, Formatting.shape(entry.shape), Formatting.bytes(entry.rawBytes),
                Formatting.bytes(entry.storedBytes), Formatting.ratioText(entry.ratio), entry.filter,
                String(entry.chunks),
            ])
        }
        lines += table.lines()
        let structured = entries.compactMap { entry in entry.fields.map { (entry.name, $0) } }
        if !structured.isEmpty { lines.append("") }
        for (name, fields) in structured {
            lines.append("fields of \(name): " + fields.map(\.description).joined(separator: ", "))
        }
        return lines
    }
}
