/// The one error type of swift-checkpoint.
///
/// Every failure carries a ``Code`` to switch on, a message that says what went wrong and what
/// to do about it, the file it concerns when there is one, and the underlying error (an
/// `Errno`-like system error, a `DecodingError`, …) when one caused it.
///
/// ```swift
/// do {
///     try checkpointer.save(state, step: step)
/// } catch let error as CheckpointError where error.code == .diskFull {
///     logger.warning("skipping checkpoint: \(error)")
/// }
/// ```
public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; compare with the static members such as ``Code/corruptData``.
    public var code: Code
    /// A human-readable explanation that says what to do.
    public var message: String
    /// The file or directory the error concerns, if any.
    public var path: String?
    /// The error that caused this one, if any.
    public var underlying: (any Error & Sendable)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong and what to do.
    ///   - path: The file or directory concerned.
    ///   - underlying: The error that caused this one.
    public init(_ code: Code, _ message: String, path: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.underlying = underlying
    }

    /// `code: message (path) [underlying]`, on one line.
    public var description: String {
        var text = "\(code): \(message)"
        if let path { text += " (\(path))" }
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    /// Whether this error means stored data is damaged, incomplete, or not what this job wrote (not
    /// authenticated by the configured key, or from another lineage), so that restore should fall
    /// back to an older checkpoint rather than give up.
    public var isCorruption: Bool {
        switch code.value {
        case .corruptData, .truncated, .badMagic, .manifestInvalid, .incompleteCheckpoint, .authenticationFailed,
            .lineageMismatch:
            true
        default: false
        }
    }
}

extension CheckpointError {
    /// The kind of a ``CheckpointError``. New codes may be added in minor releases, so `switch`
    /// statements over codes need a `default` case.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Value: String, Hashable, Sendable, CaseIterable {
            case notFound
            case permissionDenied
            case diskFull
            case ioFailure
            case corruptData
            case truncated
            case badMagic
            case unsupportedFormatVersion
            case manifestInvalid
            case incompleteCheckpoint
            case entryMissing
            case typeMismatch
            case shapeMismatch
            case invalidName
            case duplicateName
            case encodingFailed
            case decodingFailed
            case compressionFailed
            case invalidConfiguration
            case noCheckpoint
            case peerFailed
            case timedOut
            case rankCountMismatch
            case invalidLayout
            case layoutMissing
            case layoutMismatch
            case authenticationFailed
            case lineageMismatch
            case insufficientMemory
            case invalidFields
        }

        let value: Value

        /// The stable name of the code, e.g. `"corruptData"`, as shown in messages and `--json`.
        public var description: String { value.rawValue }

        /// All codes, for documentation and tooling.
        public static var all: [Code] { Value.allCases.map(Code.init(value:)) }

        /// A file or directory does not exist. Check the path you passed.
        public static let notFound = Code(value: .notFound)
        /// The process may not read or write a file or directory. Fix ownership or permissions.
        public static let permissionDenied = Code(value: .permissionDenied)
        /// The file system is full (`ENOSPC`/`EDQUOT`). Free space or point the checkpointer elsewhere.
        public static let diskFull = Code(value: .diskFull)
        /// Any other system call failure while reading, writing or syncing.
        public static let ioFailure = Code(value: .ioFailure)
        /// A checksum did not match or compressed data did not decode: the bytes on disk changed.
        public static let corruptData = Code(value: .corruptData)
        /// A file ends before its declared contents do.
        public static let truncated = Code(value: .truncated)
        /// A file is not a swift-checkpoint shard (its magic bytes are wrong).
        public static let badMagic = Code(value: .badMagic)
        /// A file was written by a newer format version than this build reads. Upgrade the library.
        public static let unsupportedFormatVersion = Code(value: .unsupportedFormatVersion)
        /// A checkpoint's manifest is missing, unreadable, fails its checksum or is inconsistent.
        public static let manifestInvalid = Code(value: .manifestInvalid)
        /// A checkpoint lacks a shard or a shard does not match its manifest.
        public static let incompleteCheckpoint = Code(value: .incompleteCheckpoint)
        /// A requested entry is not in the snapshot.
        public static let entryMissing = Code(value: .entryMissing)
        /// An entry was saved with a different element type than the one it is restored into.
        public static let typeMismatch = Code(value: .typeMismatch)
        /// An entry was saved with a different shape or element count than the destination has.
        public static let shapeMismatch = Code(value: .shapeMismatch)
        /// An entry name is empty, too long, or contains characters that are not allowed.
        public static let invalidName = Code(value: .invalidName)
        /// Two entries were registered or written under the same name.
        public static let duplicateName = Code(value: .duplicateName)
        /// A `Codable` value failed to encode.
        public static let encodingFailed = Code(value: .encodingFailed)
        /// A `Codable` entry failed to decode into the requested type.
        public static let decodingFailed = Code(value: .decodingFailed)
        /// zstd failed to compress (an internal error; please report it).
        public static let compressionFailed = Code(value: .compressionFailed)
        /// A configuration value is out of range.
        public static let invalidConfiguration = Code(value: .invalidConfiguration)
        /// No committed checkpoint was found (or none that could be verified).
        public static let noCheckpoint = Code(value: .noCheckpoint)
        /// Another rank failed (threw, exited, or reported an error) during a collective operation.
        public static let peerFailed = Code(value: .peerFailed)
        /// A collective or message did not complete within the communicator's timeout: a peer is
        /// stuck or dead. Raise the timeout if peers legitimately take longer between safe points.
        public static let timedOut = Code(value: .timedOut)
        /// The checkpoint was written by a different number of ranks than are restoring it and records
        /// no block layout to re-partition its state by. Restart with the number of ranks that wrote it,
        /// or save distributed arrays with ``SnapshotWriter/write(_:as:block:)-([Element],_,_)``.
        public static let rankCountMismatch = Code(value: .rankCountMismatch)
        /// A ``BlockLayout`` is invalid: other than 1 to 3 dimensions, negative sizes, or a block that
        /// reaches outside the global shape.
        public static let invalidLayout = Code(value: .invalidLayout)
        /// An entry must be re-partitioned (the rank count or the element count changed) but was saved
        /// without a block layout. Restart with the decomposition it was saved with.
        public static let layoutMissing = Code(value: .layoutMissing)
        /// Blocks of a distributed array disagree: different global shapes, blocks that overlap or leave
        /// gaps (when saved, or when the new ranks' blocks are restored), or a distributed entry read
        /// without a block while re-partitioning.
        public static let layoutMismatch = Code(value: .layoutMismatch)
        /// A key is configured and the checkpoint is not authenticated by it: it carries no MAC, a MAC
        /// under a key that is not configured, or one that does not match its manifest (it was changed
        /// after it was written). Restore skips it; configure the key it was written with, or treat it
        /// as forged.
        public static let authenticationFailed = Code(value: .authenticationFailed)
        /// Lineage is configured and the checkpoint belongs to another run, or does not follow the
        /// checkpoint before it: it was placed in the directory rather than written by this run.
        /// Restore skips it.
        public static let lineageMismatch = Code(value: .lineageMismatch)
        /// Reading would need a single buffer larger than this machine's memory: the checkpoint claims
        /// more state than can be restored here (or its sizes were edited). Restore it on a machine
        /// with more memory, or from another checkpoint.
        public static let insufficientMemory = Code(value: .insufficientMemory)
        /// A ``StructuredElement`` type declares fields that do not describe its memory: none, too
        /// many, a name that is empty, too long, not printable ASCII or given twice, a key path without
        /// a stored offset, a field that is not numeric, reaches past the type's stride or overlaps
        /// another. Nothing was written; fix the type's ``StructuredElement/fields``.
        public static let invalidFields = Code(value: .invalidFields)
    }
}
