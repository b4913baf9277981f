extension Checkpointer.Configuration {
    /// How a store makes a finished checkpoint committed, atomically, for restarts and readers.
    ///
    /// Both methods write every shard and sync it before anything marks the checkpoint committed,
    /// and both keep the newest committed checkpoint intact through a crash at any instant.
    /// They differ in what the storage must offer:
    /// - ``rename``: shards and manifest go into a temporary directory that is renamed into place
    ///   (`ckpt-STEP`). Needs an atomic rename: every POSIX file system (local disks, NFS, Lustre,
    ///   GPFS). Replacing a checkpoint of the same step swaps the two atomically.
    /// - ``marker``: shards and manifest are written in place (`ckpt-STEP`) and the manifest's
    ///   checksum file is written last, as the commit marker, the way object stores commit
    ///   (Orbax's commit file, PyTorch DCP's metadata-last writers). Needs no rename; an unmarked
    ///   checkpoint is ignored by restarts and removed at the next start. A checkpoint of a step
    ///   that is already committed is not replaced (that would need a rename); it is refused and the
    ///   existing one kept.
    public struct CommitMethod: Sendable, Hashable, CustomStringConvertible {
        enum Value: Sendable, Hashable {
            case rename
            case marker
        }

        let value: Value

        /// Write into a temporary directory, then rename it into place (the default).
        public static let rename = CommitMethod(value: .rename)
        /// Write in place, then write the commit marker last (for storage without rename).
        public static let marker = CommitMethod(value: .marker)

        /// `"rename"` or `"marker"`.
        public var description: String {
            switch value {
            case .rename: "rename"
            case .marker: "marker"
            }
        }

        /// Parses a ``description`` (`"rename"` or `"marker"`).
        public init?(_ description: String) {
            switch description {
            case "rename": value = .rename
            case "marker": value = .marker
            default: return nil
            }
        }

        init(value: Value) { self.value = value }
    }
}
