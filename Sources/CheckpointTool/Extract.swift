import ArgumentParser
import Checkpoint

/// `ckpt extract DIR --entry NAME -o FILE`: one entry of one rank's shard as a `.npy` or raw file.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Write one entry of a checkpoint to a NumPy .npy file or a raw file.",
        discussion: """
            Reads the entry from the newest checkpoint (or --step N) and rank 0's shard (or --rank R), checking \
            every chunk's SHA-256 on the way, and writes it to FILE. With --format npy (the default) the file is \
            a NumPy array (numpy.load reads it) with the entry's dtype and shape; elements made of several \
            scalars, such as SIMD4<Float>, get a trailing dimension. JSON-encoded entries and plain structs have \
            no dtype: extract them with --format raw, which writes the bytes as they are (little-endian \
            elements, or the UTF-8 JSON). An existing FILE is only replaced with --force.
            """
    )

    /// The output formats.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case npy
        case raw
    }

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Option(help: "Extract from the checkpoint of this step instead of the newest.")
    var step: UInt64?

    @Option(help: "The rank whose shard holds the entry.")
    var rank = 0

    @Option(help: "The entry's name, as 'ckpt inspect' lists it.")
    var entry: String

    @Option(help: "npy: a NumPy array file; raw: the entry's bytes as they are.")
    var format = Format.npy

    @OptionGroup var file: OutputFileOptions

    @Option(help: "Threads that read and check chunks.")
    var threads = Checkpointer.Configuration.defaultThreads

    @OptionGroup var trust: TrustOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard rank >= 0 else { throw ValidationError("--rank must not be negative") }
        guard !entry.isEmpty else { throw ValidationError("--entry must name an entry") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        try file.checkWritable()
        let checkpoints = try trust.directory(directory)
        let step = try checkpoints.selectSteps(requested: step)[0]
        let manifest = try checkpoints.loadManifest(step: step)
        try manifest.requireRank(rank, path: checkpoints.path(for: step))
        let reader = try checkpoints.openSnapshot(step: step, rank: rank, threads: threads)
        let entries = reader.entries
        guard let info = entries.first(where: { $0.name == entry }) else {
            throw CheckpointError(
                .entryMissing,
                "checkpoint \(step) rank \(rank) has no entry '\(entry)'; it has " + Self.names(entries),
                path: checkpoints.path(for: step)
            )
        }
        let header = try format == .npy ? NumpyHeader(entry: info) : nil
        let prefix = try header?.encoded() ?? []

        let progress = ProgressBar("extracting \(info.name)", total: 2 * info.rawBytes + prefix.count)
        defer { progress.finish() }
        let bytes = try reader.readBytes(info.name)
        progress.advance(by: info.rawBytes)
        try OutputFile.write([prefix, bytes], to: file.path, force: file.force, progress: progress)
        progress.finish()

        let summary = ExtractSummary(
            step: step.rawValue,
            rank: rank,
            entry: info.name,
            format: format.rawValue,
            path: file.path,
            bytes: prefix.count + bytes.count,
            type: InspectReport.Entry(info).typeText,
            dtype: header?.descriptor,
            shape: header?.shape ?? info.shape
        )
        if output.json {
            try Console.json(summary)
        } else {
            Console.line(summary.line)
        }
    }

    /// `a, b, c` or `a, b, … (40 entries)`.
    static func names(_ entries: [EntryInfo]) -> String {
        if entries.isEmpty { return "no entries" }
        let shown = entries.prefix(8).map { "'\($0.name)'" }.joined(separator: ", ")
        return entries.count <= 8 ? shown : shown + ", … (\(entries.count) entries)"
    }
}

/// What `ckpt extract` wrote.
struct ExtractSummary: Encodable {
    var step: UInt64
    var rank: Int
    var entry: String
    /// `npy` or `raw`.
    var format: String
    var path: String
    /// The file's size.
    var bytes: Int
    /// The element type as `ckpt inspect` shows it.
    var type: String
    /// The NumPy dtype, `nil` for raw files.
    var dtype: String?
    /// The array's shape (with the trailing dimension of vector elements for npy).
    var shape: [Int]

    /// `wrote field.npy (16.1 KiB): entry 'temperature' of step 6, rank 0, float64 64x32`.
    var line: String {
        "wrote \(path) (\(Formatting.bytes(bytes))): entry '\(entry)' of step \(step), rank \(rank), "
            + "\(type) \(Formatting.shape(shape))"
    }

    private enum CodingKeys: String, CodingKey {
        case step, rank, entry, format, path, bytes, type, dtype, shape
    }

    /// Encodes every key, `null` included, so that consumers see one schema.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(step, forKey: .step)
        try container.encode(rank, forKey: .rank)
        try container.encode(entry, forKey: .entry)
        try container.encode(format, forKey: .format)
        try container.encode(path, forKey: .path)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(type, forKey: .type)
        try container.encode(dtype, forKey: .dtype)
        try container.encode(shape, forKey: .shape)
    }
}
