extension Checkpointer.Configuration {
    /// Which checksum guards each chunk's stored bytes (every chunk is verified on every restore).
    ///
    /// - ``automatic`` (the default): XXH3-128 (shard format 3.0), which hashes at memory speed,
    ///   unless the checkpoint needs a cryptographic digest: SHA-256 when ``incremental`` is on
    ///   (chunks are found again by content) or ``authentication`` is set (the seal covers the
    ///   chunks only through their digests, and anyone can forge an XXH3 match).
    /// - ``sha256``: SHA-256 always (shard format 1.0, which every release reads).
    /// - ``xxh3``: XXH3-128; refused together with incremental checkpoints or authentication.
    ///
    /// Either way the index, the manifest and the aggregated files' region tables keep their
    /// SHA-256. zstd frames keep their own content checksum in 1.0 and 2.0 shards only: in 3.0 the
    /// chunk's XXH3-128 covers every stored byte, and the reader relies on the chunk checksum in
    /// every format. `Documentation/FileFormat.md` (4.3, 4.5) and `Documentation/Performance.md` say more.
    public struct ChunkChecksum: Sendable, Hashable, CustomStringConvertible {
        enum Value: Sendable, Hashable {
            case automatic
            case sha256
            case xxh3
        }

        let value: Value

        /// XXH3-128 unless incremental checkpoints or authentication need SHA-256 (the default).
        public static let automatic = ChunkChecksum(value: .automatic)
        /// SHA-256 for every chunk (shard format 1.0).
        public static let sha256 = ChunkChecksum(value: .sha256)
        /// XXH3-128 for every chunk (shard format 3.0).
        public static let xxh3 = ChunkChecksum(value: .xxh3)

        /// `"automatic"`, `"sha256"` or `"xxh3"`.
        public var description: String {
            switch value {
            case .automatic: "automatic"
            case .sha256: "sha256"
            case .xxh3: "xxh3"
            }
        }

        /// Parses a ``description``.
        public init?(_ description: String) {
            switch description {
            case "automatic": value = .automatic
            case "sha256": value = .sha256
            case "xxh3": value = .xxh3
            default: return nil
            }
        }

        init(value: Value) { self.value = value }
    }

    /// The checksum the shards get with this configuration: ``chunkChecksum`` resolved.
    var resolvedChunkChecksum: ChecksumAlgorithm {
        switch chunkChecksum.value {
        case .sha256: .sha256
        case .xxh3: .xxh3
        case .automatic: incremental.isOn || authentication != nil ? .sha256 : .xxh3
        }
    }
}
