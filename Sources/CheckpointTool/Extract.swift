import ArgumentParser
import Checkpoint

/// `ckpt extract DIR --entry NAME -o FILE`: one entry of one rank's shard, or with `--assemble` the
/// global array of a distributed entry from every rank's block, as a `.npy` or raw file.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Write one entry of a checkpoint to a NumPy .npy file or a raw file.",
        discussion: """
            Reads the entry from the newest checkpoint (or --step N) and rank 0's shard (or --rank R), checking \
            every chunk's checksum on the way, and writes it to FILE. With --format npy (the default) the file is \
            a NumPy array (numpy.load reads it) with the entry's dtype and shape; elements made of several \
            scalars, such as SIMD4<Float>, get a trailing dimension. JSON-encoded entries and plain structs have \
            no dtype: extract them with --format raw, which writes the bytes as they are (little-endian \
            elements, or the UTF-8 JSON). An existing FILE is only replaced with --force.

            With --assemble, the entry must be a distributed array (saved by each rank with \
            SnapshotWriter.write(_:as:block:)): its global array is put together from every rank's block, \
            in Swift with the library's re-partitioning reader. The blocks must share one global shape and \
            element type and tile the array exactly; a missing shard, a gap, an overlap or another type is \
            an error. Memory holds the global array that the manifest declares, checked before it is \
            allocated.
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

    @Option(help: "The rank whose shard holds the entry (default: 0).")
    var rank: Int?

    @Flag(help: "Assemble the global array of a distributed entry from every rank's block (instead of --rank).")
    var assemble = false

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
        if let rank, rank < 0 { throw ValidationError("--rank must not be negative") }
        if assemble && rank != nil {
            throw ValidationError("--assemble reads every rank's block; leave out --rank")
        }
        guard !entry.isEmpty else { throw ValidationError("--entry must name an entry") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        try file.checkWritable()
        let checkpoints = try trust.directory(directory)
        let step = try checkpoints.selectSteps(requested: step)[0]
        let manifest = try checkpoints.loadManifest(step: step)
        let reader: SnapshotReader
        let info: EntryInfo
        if assemble {
            reader = try Self.globalReader(step: step, manifest: manifest, in: checkpoints, threads: threads)
            let holder = manifest.distributedEntries.first { $0.name == entry }?.rank
            info = try Self.globalEntry(entry, reader: reader, holder: holder, step: step, in: checkpoints)
        } else {
            (reader, info) = try Self.rankEntry(
                entry,
                step: step,
                rank: rank ?? 0,
                manifest: manifest,
                in: checkpoints,
                threads: threads
            )
        }
        let header = try format == .npy ? NumpyHeader(entry: info) : nil
        let prefix = try header?.encoded() ?? []

        let progress = ProgressBar(
            "extracting \(info.name)",
            total: Formatting.sum([info.rawBytes, info.rawBytes, prefix.count])
        )
        defer { progress.finish() }
        let bytes = try assemble ? reader.readBytes(info.name, block: .whole(info.shape)) : reader.readBytes(info.name)
        progress.advance(by: info.rawBytes)
        try OutputFile.write([prefix, bytes], to: file.path, force: file.force, progress: progress)
        progress.finish()

        let summary = ExtractSummary(
            step: step.rawValue,
            rank: assemble ? nil : rank ?? 0,
            assembledFrom: assemble ? manifest.rankCount : nil,
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

    /// The reader of rank `rank`'s shard and its entry `name`.
    static func rankEntry(
        _ name: String,
        step: Step,
        rank: Int,
        manifest: Manifest,
        in checkpoints: CheckpointDirectory,
        threads: Int
    ) throws(CheckpointError) -> (SnapshotReader, EntryInfo) {
        try manifest.requireRank(rank, path: checkpoints.path(for: step))
        let reader = try checkpoints.openSnapshot(step: step, rank: rank, threads: threads)
        let entries = reader.entries
        guard let info = entries.first(where: { $0.name == name }) else {
            throw CheckpointError(
                .entryMissing,
                "checkpoint \(step) rank \(rank) has no entry '\(name)'; it has " + names(entries),
                path: checkpoints.path(for: step)
            )
        }
        return (reader, info)
    }

    /// A reader of every rank's shard (as rank 0 of as many ranks as saved), for global arrays.
    static func globalReader(
        step: Step,
        manifest: Manifest,
        in checkpoints: CheckpointDirectory,
        threads: Int
    ) throws(CheckpointError) -> SnapshotReader {
        try checkpoints.openSnapshot(step: step, rank: 0, rankCount: manifest.rankCount, threads: threads)
    }

    /// The distributed entry `name` as its global array: the element type of a rank's block, the
    /// global shape and size.
    /// - Parameters:
    ///   - reader: A ``globalReader(step:manifest:in:threads:)``.
    ///   - holder: A rank that saved a block of it (``Manifest/distributedEntries``), `nil` if none did.
    /// - Throws: Bad input when the entry is not a distributed array; what the library throws for
    ///   inconsistent blocks or a global array larger than an `Int` counts.
    static func globalEntry(
        _ name: String,
        reader: SnapshotReader,
        holder: Int?,
        step: Step,
        in checkpoints: CheckpointDirectory
    ) throws -> EntryInfo {
        let shape: [Int]
        do throws(CheckpointError) {
            shape = try reader.globalShape(of: name)
        } catch {
            throw distributedEntryProblem(error, name: name, step: step, reader: reader, in: checkpoints)
        }
        // `globalShape` succeeded, so some rank saved a block of it.
        var info = try reader.savedBy(rank: holder ?? 0).info(name)
        info.shape = shape
        // The global element count fits in an Int (a BlockLayout checks it); its size in bytes may not.
        let (bytes, overflow) = shape.reduce(1, *).multipliedReportingOverflow(by: info.elementType.size)
        guard !overflow else {
            throw CheckpointError(
                .insufficientMemory,
                "the global array of '\(name)' (shape \(shape)) holds more bytes than an Int counts",
                path: checkpoints.path(for: step)
            )
        }
        info.rawBytes = bytes
        return info
    }

    /// The error for a `--assemble` of an entry whose global shape is unknown: the tool's words for a
    /// missing entry and for one saved without a block layout, the library's error otherwise.
    private static func distributedEntryProblem(
        _ error: CheckpointError,
        name: String,
        step: Step,
        reader: SnapshotReader,
        in checkpoints: CheckpointDirectory
    ) -> any Error {
        switch error.code {
        case .layoutMissing:
            return ToolError.badInput(
                "entry '\(name)' of checkpoint \(step) has no block layout (it is not a distributed array); "
                    + "extract one rank's copy with --rank R instead of --assemble",
                path: checkpoints.path(for: step)
            )
        case .entryMissing:
            return CheckpointError(
                .entryMissing,
                "checkpoint \(step) has no entry '\(name)'; rank 0 has " + names(reader.entries),
                path: checkpoints.path(for: step)
            )
        default:
            return error
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
    /// The rank whose entry was written, `nil` for an assembled global array.
    var rank: Int?
    /// The number of ranks whose blocks were assembled, `nil` for one rank's entry.
    var assembledFrom: Int?
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

    /// `wrote field.npy (16.1 KiB): entry 'temperature' of step 6, rank 0, float64 64x32`, or
    /// `…, assembled from 4 ranks, …`.
    var line: String {
        let source = assembledFrom.map { "assembled from \($0) ranks" } ?? "rank \(rank ?? 0)"
        return "wrote \(path) (\(Formatting.bytes(bytes))): entry '\(entry)' of step \(step), \(source), "
            + "\(type) \(Formatting.shape(shape))"
    }

    private enum CodingKeys: String, CodingKey {
        case step, rank, assembledFrom, entry, format, path, bytes, type, dtype, shape
    }

    /// Encodes every key, `null` included, so that consumers see one schema.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(step, forKey: .step)
        try container.encode(rank, forKey: .rank)
        try container.encode(assembledFrom, forKey: .assembledFrom)
        try container.encode(entry, forKey: .entry)
        try container.encode(format, forKey: .format)
        try container.encode(path, forKey: .path)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(type, forKey: .type)
        try container.encode(dtype, forKey: .dtype)
        try container.encode(shape, forKey: .shape)
    }
}
