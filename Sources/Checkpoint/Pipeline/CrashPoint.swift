/// A named instant of the commit pipeline at which tests and `Scripts/torture` stop a commit as if
/// the process died there (Documentation/Architecture.md lists them by stage).
///
/// Not API: set through ``Checkpointer/crashPoint`` by tests, and by `heat --crash-at POINT`.
@_spi(Testing) public enum CrashPoint: Hashable, Sendable, CaseIterable, LosslessStringConvertible {
    /// Write stage: this rank's shard is written and synced (staged, not reported).
    case shardWritten
    /// Aggregation stage: this node's aggregator wrote and synced the node's file (not reported).
    case aggregateWritten
    /// Partner stage: this rank stored its partner's copy (redundancy, several ranks).
    case partnerCopied
    /// XOR stage: this rank wrote and synced its XOR set's parity (staged, not reported).
    case parityWritten
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

    /// Every point, in the order a commit with every stage reaches them.
    public static var allCases: [CrashPoint] {
        [.shardWritten, .aggregateWritten, .partnerCopied, .parityWritten]
            + StoreCommitPoint.allCases.map(CrashPoint.committing) + [
                .flushCopied
            ]
            + StoreCommitPoint.allCases.map(CrashPoint.flushing) + [.retentionApplied, .dumped]
    }

    /// Whether a crash here leaves the checkpoint committed (at the level it commits to first):
    /// from the store's publication on.
    public var leavesCheckpointCommitted: Bool {
        switch self {
        case .shardWritten, .aggregateWritten, .partnerCopied, .parityWritten: false
        case .committing(let point): point == .published || point == .parentSynced
        case .flushCopied, .flushing, .retentionApplied, .dumped: true
        }
    }

    /// `shard-written`, `commit.renamed`, `flush.manifest-written`, …
    public var description: String {
        switch self {
        case .shardWritten: "shard-written"
        case .aggregateWritten: "aggregate-written"
        case .partnerCopied: "partner-copied"
        case .parityWritten: "parity-written"
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

/// What an injected crash does.
@_spi(Testing) public enum CrashAction: Sendable, Hashable {
    /// The commit stops where it is with an error and cleans nothing up (in-process tests).
    case throwError
    /// The process kills itself with `SIGKILL` (whole-program tests: `heat --crash-at`).
    case killProcess
}

/// The test seam behind ``CrashPoint``: armed with a point, it fires when the pipeline reaches that
/// point for the `occurrence`-th time.
final class CrashInjector: Sendable {
    private struct Armed {
        var point: CrashPoint
        var remaining: Int
        var action: CrashAction
    }

    private let armed = Locked<Armed?>(nil)

    func arm(_ point: CrashPoint?, occurrence: Int, action: CrashAction) {
        armed.withLock { $0 = point.map { Armed(point: $0, remaining: max(1, occurrence), action: action) } }
    }

    /// Called by the pipeline at each named point.
    /// - Throws: ``SimulatedCrash/error`` when armed for this point with ``CrashAction/throwError``.
    func reached(_ point: CrashPoint) throws(CheckpointError) {
        let fire = armed.withLock { armed -> CrashAction? in
            guard var current = armed, current.point == point else { return nil }
            current.remaining -= 1
            armed = current.remaining == 0 ? nil : current
            return current.remaining == 0 ? current.action : nil
        }
        switch fire {
        case nil: return
        case .throwError: throw SimulatedCrash.error
        case .killProcess: Syscalls.killThisProcess()
        }
    }
}

/// The error an injected crash throws: the commit stops where it is, without cleaning up.
enum SimulatedCrash {
    static let error = CheckpointError(.ioFailure, "simulated crash (test seam)")
}
