import ArgumentParser
import Checkpoint

/// `ckpt export DIR --format zarr -o OUT.zarr`: a whole checkpoint as a Zarr v3 store, for notebooks.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint as a Zarr v3 store that zarr-python and xarray open.",
        discussion: """
            Reads the newest checkpoint (or --step N), checking every chunk's checksum, and writes a Zarr v3 \
            store (a directory) with one array per entry:

              OUT.zarr/zarr.json       the root group; attributes: step, ranks, createdAt, metadata
              OUT.zarr/NAME            a distributed entry (saved with a block layout): its global array,
                                       assembled from every rank's block
              OUT.zarr/rank-R/NAME     any other entry, as rank R saved it (replicated values appear
                                       once per rank); the group's attributes hold rank R's Codable
                                       entries as JSON, under "json"

            A name with '/' (nested state) becomes nested groups. Arrays have the entry's dtype and \
            shape; elements made of several scalars (SIMD4<Float>) get a trailing dimension, and plain \
            structs without a scalar kind become uint8 arrays of shape (…, stride) with attribute \
            elementBytes. Every array's attributes give the step, the Swift type (swiftType) and the rank \
            (or assembledFrom, the number of ranks). Codable entries larger than 1 MiB or that are not \
            JSON are left out and named under "skipped". Chunks hold at most --chunk-size bytes and are \
            encoded with the bytes codec (little-endian) and zstd.

            The store is written into a temporary directory beside OUT and renamed into place at the end: \
            a failure leaves nothing behind. An existing OUT is only replaced with --force, and only when \
            it is a file or a Zarr store (a directory with a zarr.json).
            """
    )

    /// The export formats.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case zarr
    }

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Option(help: "Export the checkpoint of this step instead of the newest.")
    var step: UInt64?

    @Option(help: "zarr: a Zarr v3 store (a directory).")
    var format = Format.zarr

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: ArgumentHelp("The store to write, e.g. run.zarr.", valueName: "path")
    )
    var path: String

    @Flag(help: "Replace the output if it exists and is a file or a Zarr store.")
    var force = false

    @Option(help: "The largest uncompressed chunk, in bytes.")
    var chunkSize = 4 << 20

    @Option(help: "Threads that read and check chunks.")
    var threads = Checkpointer.Configuration.defaultThreads

    @OptionGroup var trust: TrustOptions

    @OptionGroup var output: OutputOptions

    /// The largest `Codable` entry copied into attributes.
    static let maximumJSONBytes = 1 << 20

    func validate() throws {
        guard !path.isEmpty else { throw ValidationError("-o needs a path") }
        guard (1...(1 << 30)).contains(chunkSize) else {
            throw ValidationError("--chunk-size must be between 1 and 1073741824 bytes")
        }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        try ZarrStore.checkDestination(path, force: force)
        let checkpoints = try trust.directory(directory)
        let step = try checkpoints.selectSteps(requested: step)[0]
        let manifest = try checkpoints.loadManifest(step: step)
        let store = try ZarrStore(destination: path, force: force)
        let progress = ProgressBar("exporting step \(step)", total: manifest.rawBytes)
        defer { progress.finish() }
        var summary = ExportSummary(step: step.rawValue, path: path, ranks: manifest.rankCount)

        let distributed = manifest.distributedEntries
        let distributedNames = Set(distributed.map(\.name))
        let stepAttribute = JSONValue.integer(Int64(clamping: step.rawValue))
        let global = try Extract.globalReader(step: step, manifest: manifest, in: checkpoints, threads: threads)
        for (name, holder) in distributed {
            let info = try Extract.globalEntry(name, reader: global, holder: holder, step: step, in: checkpoints)
            let bytes = try global.readBytes(name, block: .whole(info.shape))
            let array = ZarrArray(
                name: Self.lastComponent(name),
                type: info.elementType,
                shape: info.shape,
                chunkBytes: chunkSize,
                attributes: ["step": stepAttribute, "assembledFrom": .int(manifest.rankCount)]
            )
            try store.array(name, array, data: bytes, progress: progress)
            summary.arrays.append(.init(path: name, array: array))
        }

        for rank in 0..<manifest.rankCount {
            let reader = try checkpoints.openSnapshot(step: step, rank: rank, threads: threads)
            let group = "rank-\(rank)"
            var json: [String: JSONValue] = [:]
            var skipped: [String: JSONValue] = [:]
            for info in reader.entries where !distributedNames.contains(info.name) {
                if info.isEncoded {
                    guard info.rawBytes <= Self.maximumJSONBytes else {
                        skipped[info.name] = .string("a Codable value of \(info.rawBytes) bytes, over the 1 MiB limit")
                        continue
                    }
                    guard let value = JSONValue(parsing: try reader.readBytes(info.name)) else {
                        skipped[info.name] = .string("a Codable value that is not JSON this tool can parse")
                        continue
                    }
                    json[info.name] = value
                    progress.advance(by: info.rawBytes)
                    continue
                }
                let array = ZarrArray(
                    name: Self.lastComponent(info.name),
                    type: info.elementType,
                    shape: info.shape,
                    chunkBytes: chunkSize,
                    attributes: ["step": stepAttribute, "rank": .int(rank)]
                )
                try store.array(
                    group + "/" + info.name,
                    array,
                    data: try reader.readBytes(info.name),
                    progress: progress
                )
                summary.arrays.append(.init(path: group + "/" + info.name, array: array))
            }
            var attributes: [String: JSONValue] = ["step": stepAttribute, "rank": .int(rank), "json": .object(json)]
            if !skipped.isEmpty { attributes["skipped"] = .object(skipped) }
            try store.group(group, attributes: attributes)
            summary.jsonEntries += json.count
            summary.skipped += skipped.keys.sorted().map { "\(group)/\($0)" }
        }

        try store.group(
            "",
            attributes: [
                "step": stepAttribute,
                "ranks": .int(manifest.rankCount),
                "createdAt": .string(manifest.createdAt),
                "metadata": .object(manifest.metadata.mapValues(JSONValue.string)),
                "producer": .string("ckpt export (swift-checkpoint \(LibraryVersion.string))"),
            ]
        )
        try store.commit()
        progress.finish()
        if output.json {
            try Console.json(summary)
        } else {
            Console.line(summary.line)
            for name in summary.skipped { Console.line("  skipped \(name) (see the group's 'skipped' attribute)") }
        }
    }
}

extension Export {
    /// `pressure` for `fields/pressure`.
    static func lastComponent(_ name: String) -> String {
        name.split(separator: "/").last.map(String.init) ?? name
    }
}

/// What `ckpt export` wrote.
struct ExportSummary: Encodable {
    /// One array of the store.
    struct Array: Encodable {
        var path: String
        var dataType: String
        var shape: [Int]
        var chunks: [Int]

        init(path: String, array: ZarrArray) {
            self.path = path
            dataType = array.dataType
            shape = array.shape
            chunks = array.chunkShape
        }
    }

    var step: UInt64
    var path: String
    var ranks: Int
    var arrays: [Array] = []
    /// Codable entries copied into the rank groups' attributes.
    var jsonEntries = 0
    /// Codable entries left out (too large, or not JSON), as `rank-R/NAME`.
    var skipped: [String] = []

    /// `wrote run.zarr: step 6 of 4 ranks, 9 arrays, 1 JSON value`.
    var line: String {
        "wrote \(path): step \(step) of \(ranks) rank(s), \(arrays.count) array(s), \(jsonEntries) JSON value(s)"
            + (skipped.isEmpty ? "" : ", \(skipped.count) skipped")
    }
}
