/// A named instant of the commit pipeline at which tests and `Scripts/torture` stop a commit as if
/// the process died there (Documentation/Architecture.md lists them by stage).
///
/// Not API: set through ``Checkpointer/crashPoint`` by tests, and by `heat --crash-at POINT`.
@_spi(Testing) public enum CrashPoint: Hashable, Sendable, CaseIterable, LosslessStringConvertible {
    /// Write stage: this rank's shard is written and synced (staged, not reported).
    case shardWritten
    /// Partner stage: this rank stored its partner's copy (redundancy, several ranks).
    case partnerCopied
    /// Commit stage: a point of the store's commit of the checkpoint (the node-local level with redundancy).
    case committing(StoreCommitPoint)
    /// Flush stage: this rank's shard was copied into the shared level's staging area.
    case flushCopied
    /// Flush stage: a point of the shared store's commit of the flushed copy.
    case flushing(StoreCommitPoint)
    /// Retention stage: old checkpoints were deleted after the commit.
    case retentionApplied
    /// Dump stage: the process dump ran and its record was written.
    case dumped

    public static var allCases: [CrashPoint] {
        [.shardWritten, .partnerCopied] + StoreCommitPoint.allCases.map(CrashPoint.committing) + [.flushCopied]
            + StoreCommitPoint.allCases.map(CrashPoint.flushing) + [.retentionApplied, .dumped]
    }

    /// `shard-written`, `commit.renamed`, `flush.manifest-written`, …
    public var description: String {
        switch self {
        case .shardWritten: "shard-written"
        case .partnerCopied: "partner-copied"
        case .committing(let point): "commit." + point.rawValue
        case .flushCopied: "flush-copied"
        case .flushing(let point): "flush." + point.rawValue
        case .retentionApplied: "retention-applied"
        case .dumped: "dumped"
        }
    }

    /// Parses a ``description``.
    public init?(_ description: String) {
        guard let point = Self.allCases.first(where: { $0.description == description }) else { return nil }
        self = point
    }
}

/// The points of one store's commit, in order. A store fires those that apply to how it commits:
/// a renaming store all but none; a marker store has no rename, so it fires `manifestWritten`,
/// `synced`, `published` (the marker written) and `parentSynced`.
@_spi(Testing) public enum StoreCommitPoint: String, Hashable, Sendable, CaseIterable {
    /// The manifest is written into the staging area.
    case manifestWritten = "manifest-written"
    /// The manifest's checksum file is written (renaming store; for a marker store it is the marker).
    case checksumWritten = "checksum-written"
    /// The staging area's files and directory are synced.
    case synced
    /// The checkpoint became visible: renamed into place, or its marker written.
    case published
    /// The parent directory is synced: the commit is durable.
    case parentSynced = "parent-synced"
}
