import CoreMetrics

/// The metrics one checkpointer reports (see the Metrics article of the DocC catalog): made once,
/// with the configured factory, prefix and dimensions plus the rank.
///
/// Every rank reports its own part: its shard's bytes, its own commit and blocked time, its own
/// failures. Restore fallbacks are job-wide facts and only rank 0 counts them.
struct CheckpointMetrics: Sendable {
    /// Wall time of a commit, from the start of staging to the committed manifest.
    let duration: Timer
    /// How long the application was blocked by a checkpoint (the whole commit when synchronous,
    /// staging when asynchronous).
    let blocked: Timer
    /// Committed checkpoints.
    let commits: Counter
    /// Bytes of state this rank saved, before compression.
    let rawBytes: Counter
    /// Bytes this rank's shard occupies on storage.
    let storedBytes: Counter
    /// The last commit's stored bytes over its raw bytes, for this rank's shard.
    let compressionRatio: Gauge
    /// Checkpoints that failed (every rank counts a failure it learns of), by error code.
    let failureLabel: String
    /// Asynchronous checkpoints written synchronously because they exceeded the staging limit.
    let synchronousFallbacks: Counter
    /// Checkpoints skipped because the previous one was still being written.
    let skipped: Counter
    /// Restores, and how long each took.
    let restoreDuration: Timer
    /// Damaged or refused checkpoints a restore skipped before one verified (rank 0).
    let restoreFallbacks: Counter
    /// Node-local shards this rank recovered from its partner's copy.
    let partnerRecoveries: Counter

    private let factory: any MetricsFactory
    private let dimensions: [(String, String)]

    init(_ options: Checkpointer.Configuration.MetricsOptions, rank: Int) {
        let factory = options.factory ?? MetricsSystem.factory
        let dimensions = options.dimensions + [("rank", String(rank))]
        let prefix = options.labelPrefix
        func timer(_ name: String) -> Timer {
            Timer(label: "\(prefix)_\(name)", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        }
        func counter(_ name: String) -> Counter {
            Counter(label: "\(prefix)_\(name)", dimensions: dimensions, factory: factory)
        }
        duration = timer("duration_seconds")
        blocked = timer("blocked_seconds")
        commits = counter("commits_total")
        rawBytes = counter("raw_bytes_total")
        storedBytes = counter("stored_bytes_total")
        compressionRatio = Gauge(label: "\(prefix)_compression_ratio", dimensions: dimensions, factory: factory)
        failureLabel = "\(prefix)_failures_total"
        synchronousFallbacks = counter("synchronous_fallbacks_total")
        skipped = counter("skipped_total")
        restoreDuration = timer("restore_duration_seconds")
        restoreFallbacks = counter("restore_fallbacks_total")
        partnerRecoveries = counter("partner_recoveries_total")
        self.factory = factory
        self.dimensions = dimensions
    }

    /// A committed checkpoint: `seconds` from staging to commit, `blockedSeconds` of it the
    /// application waited, and this rank's shard of `manifest`.
    func committed(_ manifest: Manifest, rank: Int, seconds: Double, blockedSeconds: Double?) {
        commits.increment()
        duration.recordNanoseconds(Self.nanoseconds(seconds))
        if let blockedSeconds { blocked.recordNanoseconds(Self.nanoseconds(blockedSeconds)) }
        guard let shard = manifest.shards.first(where: { $0.rank == rank }) else { return }
        rawBytes.increment(by: max(0, shard.rawBytes))
        storedBytes.increment(by: max(0, shard.fileBytes))
        if shard.rawBytes > 0 { compressionRatio.record(Double(shard.fileBytes) / Double(shard.rawBytes)) }
    }

    /// A checkpoint that failed, counted by its error's code (`other` for errors not the library's).
    func failed(_ error: any Error) {
        let code = (error as? CheckpointError).map { "\($0.code)" } ?? "other"
        Counter(label: failureLabel, dimensions: dimensions + [("code", code)], factory: factory).increment()
    }

    /// A restore that took `seconds` after skipping `fallbacks` newer checkpoints.
    func restored(seconds: Double, fallbacks: Int, countsFallbacks: Bool) {
        restoreDuration.recordNanoseconds(Self.nanoseconds(seconds))
        if countsFallbacks && fallbacks > 0 { restoreFallbacks.increment(by: fallbacks) }
    }

    static func nanoseconds(_ seconds: Double) -> Int64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return Int64(min(seconds * 1e9, Double(Int64.max / 2)))
    }
}

extension Timer {
    /// Records a duration given in seconds (negative and non-finite values as 0).
    func record(seconds: Double) { recordNanoseconds(CheckpointMetrics.nanoseconds(seconds)) }
}
