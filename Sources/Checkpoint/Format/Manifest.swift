import Foundation

/// The description of one committed checkpoint, stored as `manifest.json` beside its shards.
///
/// The manifest is written last; its presence in a committed directory, together with a
/// matching `manifest.json.sha256` (in `sha256sum` format), is what makes the checkpoint
/// committed. It records what was saved, by whom, how it was stored, and how long it took.
public struct Manifest: Codable, Sendable, Hashable {
    /// The manifest file's name.
    public static let fileName = "manifest.json"
    /// The checksum file's name; `sha256sum -c manifest.json.sha256` checks it.
    public static let checksumFileName = "manifest.json.sha256"
    /// The newest manifest layout version this build reads: 2 when shards may be regions of
    /// aggregated files (``Shard/offset``), as it writes for aggregated checkpoints.
    public static let currentVersion = 2
    /// The manifest layout version of checkpoints with a file per rank (what older builds read).
    public static let perRankVersion = 1

    /// The manifest layout version.
    public var manifestVersion: Int
    /// The shard format version, `"major.minor"`.
    public var shardFormat: String
    /// The library that wrote it, e.g. `"swift-checkpoint 0.1.0"`.
    public var library: String
    /// The linked zstd version.
    public var zstdVersion: String
    /// The step this checkpoint captured.
    public var step: Step
    /// When the checkpoint was committed (UTC, ISO 8601).
    public var createdAt: String
    /// The number of ranks (shards).
    public var rankCount: Int
    /// The host rank 0 ran on.
    public var hostName: String
    /// Application and configuration metadata.
    public var metadata: [String: String]
    /// The settings the shards were written with.
    public var settings: Settings
    /// One record per rank, in rank order.
    public var shards: [Shard]
    /// Where the time went.
    public var timings: Timings
    /// Process dumps taken after this checkpoint committed, one per rank that dumped. They are
    /// stored beside the manifest (`dumps/rank-NNNNN.json`), since the committed manifest is
    /// never rewritten; ``CheckpointDirectory/loadManifest(step:)`` fills this in.
    public var dumps: [DumpRecord]?
    /// How this checkpoint relates to older ones; `nil` when it was written with incremental
    /// checkpoints off (then it is self-contained).
    public var incremental: Incremental?
    /// The key the manifest is sealed with (``Checkpoint/Authentication``); `nil` when it was
    /// written without a key.
    public var authentication: Authentication? = nil
    /// Where the checkpoint stands in its run (``Checkpoint/Lineage``); `nil` when it was written
    /// without lineage.
    public var lineage: Lineage? = nil

    /// The steps of the older checkpoints whose shards hold chunks this one uses, ascending: as long
    /// as this checkpoint is kept, they must be kept too. Empty for a self-contained checkpoint.
    public var references: [Step] { incremental?.references ?? [] }

    /// Uncompressed bytes over all shards.
    public var rawBytes: Int { Self.saturatingSum(shards.lazy.map(\.rawBytes)) }
    /// Bytes on disk over all shards (shard files, not counting the manifest).
    public var storedBytes: Int { Self.saturatingSum(shards.lazy.map(\.fileBytes)) }

    /// Writer settings.
    public struct Settings: Codable, Sendable, Hashable {
        /// `"zstd-1"` or `"none"`.
        public var compression: String
        /// `"automatic"`, `"none"` or `"shuffle"`.
        public var filter: String
        /// Chunk size in bytes.
        public var chunkSize: Int
        /// Encoder threads.
        public var threads: Int
    }

    /// One rank's shard file.
    public struct Shard: Codable, Sendable, Hashable {
        /// The rank that wrote it.
        public var rank: Int
        /// The file name inside the checkpoint directory: the rank's own shard file, or with
        /// aggregation its node's aggregated file (`node-00001.agg`).
        public var file: String
        /// The shard's size in bytes (the region's, inside an aggregated file).
        public var fileBytes: Int
        /// SHA-256 of the shard's index, in hex (ties the file to this manifest).
        public var indexSHA256: String
        /// Uncompressed bytes of its entries.
        public var rawBytes: Int
        /// Stored bytes of its entries' chunks.
        public var storedBytes: Int
        /// Its entries.
        public var entries: [Entry]
        /// This rank's own timings (the manifest's ``Manifest/timings`` are the maxima over ranks).
        public var timings: Timings?
        /// The steps of the checkpoints whose shard of this rank holds chunks this shard uses
        /// (incremental checkpoints only; `nil` or empty when it uses none).
        public var references: [Step]? = nil
        /// The part of ``storedBytes`` held by those checkpoints rather than by this shard file.
        public var referencedBytes: Int? = nil
        /// Where the shard's region starts inside its node's aggregated ``file``; `nil` when the
        /// shard is a file of its own (manifest version 2).
        public var offset: Int? = nil
    }

    /// The incremental-checkpoint record of a manifest.
    public struct Incremental: Codable, Sendable, Hashable {
        /// The union of the shards' ``Shard/references``, ascending.
        public var references: [Step]
        /// Checkpoints since the last full one (0: every chunk of this one is stored in its own shards,
        /// unless a rank had nothing to build on, which only makes it more self-contained).
        public var sinceFull: Int
        /// Stored bytes, over all shards, that this checkpoint uses but did not write.
        public var referencedBytes: Int
    }

    /// Per-entry statistics.
    public struct Entry: Codable, Sendable, Hashable {
        /// The entry's name.
        public var name: String
        /// The Swift type name of its elements (or of the encoded value).
        public var type: String
        /// The scalar kind, e.g. `"float64"`, or `"json"` for `Codable` entries.
        public var scalar: String
        /// Dimensions, row-major.
        public var shape: [Int]
        /// `"shuffle"` or `"none"`.
        public var filter: String
        /// Uncompressed bytes.
        public var rawBytes: Int
        /// Stored bytes.
        public var storedBytes: Int
        /// Number of chunks.
        public var chunks: Int
        /// Where this rank's block lies in the global array, for entries saved as one block of a
        /// distributed array (``SnapshotWriter/write(_:as:block:)-([Element],_,_)``); `nil` otherwise.
        public var block: BlockLayout?
        /// The named fields of its elements, for raw arrays of a plain struct that declares them
        /// (``StructuredElement``); `nil` otherwise. Checkpoints from before fields were recorded
        /// have none.
        public var fields: [ElementType.Field]? = nil
    }

    /// Seconds spent in each phase of the checkpoint (rank 0's view; maxima over ranks when several).
    public struct Timings: Codable, Sendable, Hashable {
        /// Collecting the application's state (the time the application was blocked before encoding).
        public var stageSeconds: Double
        /// Filtering, compressing and hashing chunks.
        public var encodeSeconds: Double
        /// Writing shard files.
        public var writeSeconds: Double
        /// `fsync` of shard files.
        public var syncSeconds: Double
        /// Writing the manifest, renaming and syncing the directory.
        public var commitSeconds: Double
        /// Building the manifest from every rank's report, on rank 0 (absent in older manifests and
        /// in a shard's own timings).
        public var manifestSeconds: Double?
    }

    /// The canonical bytes of the manifest (pretty, sorted keys).
    func encoded() throws(CheckpointError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { return Array(try encoder.encode(self)) + [0x0A] } catch {
            throw CheckpointError(.encodingFailed, "could not encode the manifest", underlying: error)
        }
    }

    /// Parses and checks a manifest against its checksum line and, with `authentication`, its seal
    /// (read only then), both before it is parsed.
    static func decode(
        _ bytes: [UInt8],
        checksumLine: [UInt8],
        authentication: Checkpoint.Authentication? = nil,
        seal: () throws(CheckpointError) -> [UInt8]? = { nil },
        path: String
    ) throws(CheckpointError) -> Manifest {
        let expected = String(decoding: checksumLine.prefix(64), as: UTF8.self)
        guard checksumLine.count >= 64, hexString(sha256(bytes)) == expected else {
            throw CheckpointError(
                .manifestInvalid,
                "manifest fails its SHA-256 checksum; it was modified or damaged",
                path: path
            )
        }
        let sealer = try authentication.map { keys throws(CheckpointError) in
            try keys.authenticate(bytes, seal: try seal(), path: path)
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(bytes)) } catch {
            throw CheckpointError(
                .manifestInvalid,
                "manifest is not valid JSON of the expected shape",
                path: path,
                underlying: error
            )
        }
        guard manifest.manifestVersion >= 1 else {
            throw CheckpointError(
                .manifestInvalid,
                "manifest version \(manifest.manifestVersion) is not valid",
                path: path
            )
        }
        guard manifest.manifestVersion <= currentVersion else {
            throw CheckpointError(
                .unsupportedFormatVersion,
                "manifest version \(manifest.manifestVersion) is newer than this build reads (\(currentVersion)); upgrade swift-checkpoint",
                path: path
            )
        }
        guard manifest.rankCount >= 1, manifest.shards.count == manifest.rankCount,
            manifest.shards.enumerated().allSatisfy({ $0.offset == $0.element.rank })
        else {
            throw CheckpointError(
                .manifestInvalid,
                "manifest lists \(manifest.shards.count) shards for \(manifest.rankCount) ranks",
                path: path
            )
        }
        for shard in manifest.shards
        where shard.offset == nil
            ? shard.file != CheckpointLayout.shardFileName(rank: shard.rank)
            : (!AggregateFile.isFileName(shard.file) || shard.offset! < AggregateFile.headerSize
                || manifest.manifestVersion < 2)
        {
            throw CheckpointError(
                .manifestInvalid,
                "manifest names an unexpected shard file '\(shard.file)'",
                path: path
            )
        }
        try manifest.checkFields(path: path)
        try manifest.checkReferences(path: path)
        try manifest.checkNumbers(path: path)
        if let authentication, let sealer { try authentication.checkRecord(manifest, sealedBy: sealer, path: path) }
        return manifest
    }

    /// The sum of `values`, `Int.max` (or `Int.min`) where it would overflow: for totals that are
    /// only shown. A decoded manifest's totals never overflow (``checkNumbers(path:)``).
    static func saturatingSum(_ values: some Sequence<Int>) -> Int {
        var total = 0
        for value in values {
            let (sum, overflow) = total.addingReportingOverflow(value)
            if overflow { return value > 0 ? Int.max : Int.min }
            total = sum
        }
        return total
    }

    /// Rejects sizes and counts no writer records: negative ones, totals that overflow, timings
    /// that are negative, NaN or infinite. Tools add and convert these numbers freely, so a
    /// manifest is refused here rather than trapping there.
    private func checkNumbers(path: String) throws(CheckpointError) {
        func fail(_ what: String) -> CheckpointError {
            CheckpointError(
                .manifestInvalid,
                "manifest records \(what); no writer records that, so it was edited or damaged",
                path: path
            )
        }
        func total(_ values: [Int], _ what: String) throws(CheckpointError) {
            var sum = 0
            for value in values {
                guard value >= 0 else { throw fail("a negative \(what) \(value)") }
                let (next, overflow) = sum.addingReportingOverflow(value)
                guard !overflow else { throw fail("\(what)s whose total overflows") }
                sum = next
            }
        }
        func check(_ timings: Timings) throws(CheckpointError) {
            let values = [
                timings.stageSeconds, timings.encodeSeconds, timings.writeSeconds, timings.syncSeconds,
                timings.commitSeconds,
            ]
            guard values.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw fail("a negative or non-finite timing") }
        }
        guard settings.chunkSize >= 0, settings.threads >= 0 else {
            throw fail("a negative chunk size or thread count")
        }
        try check(timings)
        try total(shards.map(\.fileBytes) + [incremental?.referencedBytes ?? 0], "file size")
        try total(shards.map(\.rawBytes), "raw size")
        try total(shards.map(\.storedBytes), "stored size")
        try total(shards.map { $0.referencedBytes ?? 0 }, "referenced size")
        for shard in shards {
            if let timings = shard.timings { try check(timings) }
            try total(shard.entries.map(\.rawBytes), "raw size")
            try total(shard.entries.map(\.storedBytes), "stored size")
            try total(shard.entries.map(\.chunks), "chunk count")
            for entry in shard.entries {
                var elements = 1
                for dimension in entry.shape {
                    guard dimension >= 0 else { throw fail("a negative dimension \(dimension)") }
                    let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                    guard !overflow else { throw fail("a shape whose element count overflows") }
                    elements = product
                }
            }
        }
    }

    /// Fields are bounded and well formed (rule M19); that they fit the element size is checked
    /// against the shard's index when the shard is opened (M20).
    private func checkFields(path: String) throws(CheckpointError) {
        for shard in shards {
            for entry in shard.entries {
                guard let fields = entry.fields, let problem = ElementType.fieldsProblem(fields, size: nil) else {
                    continue
                }
                throw CheckpointError(
                    .manifestInvalid,
                    "manifest's entry '\(PrintableText.escaped(entry.name))' of rank \(shard.rank) \(problem)",
                    path: path
                )
            }
        }
    }

    /// References point to strictly older checkpoints, ascending, and the manifest's list is the
    /// union of the shards' (retention relies on it).
    private func checkReferences(path: String) throws(CheckpointError) {
        let shardReferences = shards.map { $0.references ?? [] }
        guard let incremental else {
            guard shardReferences.allSatisfy(\.isEmpty) else {
                throw CheckpointError(
                    .manifestInvalid,
                    "manifest's shards list references but it has no incremental record",
                    path: path
                )
            }
            return
        }
        for list in shardReferences + [incremental.references] {
            guard zip(list, list.dropFirst()).allSatisfy({ $0 < $1 }), list.allSatisfy({ $0 < step }) else {
                throw CheckpointError(
                    .manifestInvalid,
                    "manifest's references \(list) are not ascending steps older than \(step)",
                    path: path
                )
            }
        }
        guard Set(shardReferences.joined()) == Set(incremental.references), incremental.sinceFull >= 0 else {
            throw CheckpointError(
                .manifestInvalid,
                "manifest's references \(incremental.references) disagree with its shards' references",
                path: path
            )
        }
    }
}

/// The library's version, recorded in manifests.
public enum LibraryVersion {
    /// The semantic version of this build.
    public static let string = "0.1.0"
}
