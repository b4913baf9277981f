/// The one commit protocol of a checkpoint across ranks, as a state machine without I/O.
///
/// Every feature is a stage of the same sequence, entered or skipped by the ``Plan``:
///
/// ```
/// write shards ─→ partner copy ─→ commit ─→ flush to the shared level ─→ retention ─→ dumps
///   (level)        (redundancy)   (level)     (redundancy, every K-th)
/// ```
///
/// The first level is the shared directory, or with redundancy each rank's node-local store. A
/// shared commit is two-phase: rank 0 begins the staging area and shares it, every rank writes its
/// shard, rank 0 gathers the reports and commits (manifest, then rename or marker: the store's
/// business) and shares the outcome. A node-local commit: every rank stages in its own store,
/// exchanges partner copies, rank 0 gathers the reports and shares the manifest, every rank
/// commits locally and all agree; a rank that committed withdraws when another could not. A flush
/// is a shared commit whose shards are streamed from the node-local ones.
///
/// The ``Checkpointer``'s commit driver performs each returned ``Action`` (a file operation or a
/// collective) and feeds the result back. Every rank takes part in every collective whatever
/// happened locally, so a failure on one rank becomes the same error on all ranks, never a hang.
struct CommitStateMachine {
    /// Which stages this checkpoint passes through (the same on every rank).
    struct Plan: Equatable, Sendable {
        /// The checkpoint goes to each rank's node-local store first (redundancy).
        var local = false
        /// Each rank also stores its partner's shard (redundancy with several ranks).
        var partnerCopy = false
        /// Each rank also writes its XOR set's parity (redundancy with XOR sets).
        var xorParity = false
        /// After the node-local commit, the checkpoint is also flushed to the shared level.
        var flush = false
        /// The dump stage runs after the commit (synchronous checkpoints with process dumps).
        var dump = false
        /// The ranks of a node write their shards into one file through its aggregator (shared level).
        var aggregate = false
    }

    /// Which commit a shared-level action belongs to: the checkpoint's own, or its flush.
    enum Phase: Equatable, Sendable {
        case primary
        case flush
    }

    /// What the driver must do next.
    enum Action: Equatable {
        /// Rank 0: begin a staging area in the shared store, then ``sharedBegun(_:)``.
        case beginShared(Phase)
        /// Broadcast rank 0's staging area (others pass `nil`), then ``stagingShared(_:)``.
        case shareStaging(Shared<StagingArea>?)
        /// Begin a staging area in this rank's node-local store, then ``localBegun(_:)``.
        case beginLocal
        /// Write this rank's shard into the area, then ``shardWritten(_:)``.
        case writeShard(StagingArea)
        /// Flush: stream this rank's committed node-local shard into the area, then ``shardWritten(_:)``.
        case copyShard(StagingArea)
        /// Send this rank's encoded shard (or its failure) to its node's aggregator, which writes the
        /// node's file into the area and answers with each rank's region, then ``aggregated(_:)``.
        case aggregate(StagingArea, Shared<ShardReport>)
        /// Send this rank's staged shard to its partner and store the shard of the rank it holds
        /// (into the area, when there is one), then ``copiesExchanged(_:)``.
        case exchangeCopies(StagingArea?, Shared<ShardReport>)
        /// XOR stage: exchange parts of the staged shards within each XOR set and write this rank's
        /// parity into the area (when there is one), then ``parityEncoded(_:)``.
        case encodeParity(StagingArea?, Shared<ShardReport>)
        /// Gather this rank's report on rank 0, then ``reportsGathered(_:)`` (rank 0) or ``reportSent()``.
        case gatherReport(Shared<ShardReport>)
        /// Rank 0: write the manifest and commit the shared area, then ``sharedCommitted(_:)``.
        case commitShared(StagingArea, [ShardReport], Phase)
        /// Rank 0: remove the shared staging area (if any), then ``aborted()``.
        case abortShared(StagingArea?, RankFailure)
        /// Broadcast rank 0's outcome (others pass `nil`), then ``outcomeShared(_:)``.
        case shareOutcome(Shared<Manifest>?, Phase)
        /// Rank 0: build and check the manifest of a node-local commit, then ``manifestMade(_:)``.
        case makeManifest([ShardReport])
        /// Broadcast rank 0's manifest (others pass `nil`), then ``manifestShared(_:)``.
        case shareManifest(Shared<Manifest>?)
        /// Commit this rank's node-local area with the manifest, then ``localCommitted(_:)``.
        case commitLocal(StagingArea, Manifest)
        /// Learn whether every rank succeeded (all ranks), then ``agreed(_:)``.
        case agree(Shared<Bool>)
        /// Remove this rank's node-local area, or withdraw its committed checkpoint, then ``aborted()``.
        case abandonLocal(StagingArea?, withdraw: Bool, RankFailure)
        /// Delete what the retention rules no longer keep, on every level, then ``retained()``.
        case retain(Manifest)
        /// Dump the process after this checkpoint, then ``dumped()``.
        case dump(Manifest)
        /// Finished: the committed checkpoint's manifest, or the failure every rank throws.
        case done(Shared<Manifest>)
    }

    enum State: Equatable {
        case idle
        case beginningShared(Phase)
        case sharingStaging(Phase)
        case beginningLocal
        case writing(StagingArea?, Phase)
        case aggregating(StagingArea)
        case exchanging(StagingArea?)
        case encodingParity(StagingArea?)
        case reporting(StagingArea?, Phase)
        case committingShared(StagingArea, Phase)
        case abortingShared(RankFailure)
        case sharingOutcome(Phase)
        case makingManifest(StagingArea?)
        case sharingManifest(StagingArea?)
        case committingLocal(Manifest)
        case agreeing(committed: Bool, Manifest?)
        case abandoningLocal(RankFailure)
        case retaining(Manifest)
        case dumping(Manifest)
        case finished
    }

    let rank: Int
    let size: Int
    let step: Step
    let plan: Plan
    /// Set when staging the state already failed on this rank: it writes nothing and reports this.
    let stagingFailure: RankFailure?
    private(set) var state = State.idle

    init(rank: Int, size: Int, step: Step, plan: Plan = Plan(), stagingFailure: RankFailure? = nil) {
        self.rank = rank
        self.size = size
        self.step = step
        self.plan = plan
        self.stagingFailure = stagingFailure
    }

    private var isRoot: Bool { rank == 0 }

    mutating func start() -> Action {
        precondition(state == .idle)
        guard plan.local else { return beginShared(.primary) }
        if let stagingFailure { return afterWriting(nil, .failure(stagingFailure)) }
        state = .beginningLocal
        return .beginLocal
    }

    private mutating func beginShared(_ phase: Phase) -> Action {
        if isRoot {
            state = .beginningShared(phase)
            return .beginShared(phase)
        }
        state = .sharingStaging(phase)
        return .shareStaging(nil)
    }

    mutating func sharedBegun(_ result: Shared<StagingArea>) -> Action {
        guard case .beginningShared(let phase) = state, isRoot else { preconditionFailure("sharedBegun in \(state)") }
        state = .sharingStaging(phase)
        return .shareStaging(result)
    }

    mutating func stagingShared(_ area: Shared<StagingArea>) -> Action {
        guard case .sharingStaging(let phase) = state else { preconditionFailure("stagingShared in \(state)") }
        switch area {
        case .failure(let failure):
            // Nothing was created; every rank learns the same error without another round.
            state = .finished
            return .done(.failure(failure))
        case .success(let area):
            if phase == .primary, plan.aggregate, let stagingFailure {
                // The node's aggregator waits for every rank of its node, this one included.
                state = .aggregating(area)
                return .aggregate(area, .failure(stagingFailure))
            }
            if phase == .primary, let stagingFailure {
                state = .reporting(area, phase)
                return .gatherReport(.failure(stagingFailure))
            }
            state = .writing(area, phase)
            return phase == .primary ? .writeShard(area) : .copyShard(area)
        }
    }

    mutating func localBegun(_ result: Shared<StagingArea>) -> Action {
        precondition(state == .beginningLocal)
        switch result {
        case .failure(let failure): return afterWriting(nil, .failure(failure))
        case .success(let area):
            state = .writing(area, .primary)
            return .writeShard(area)
        }
    }

    mutating func shardWritten(_ report: Shared<ShardReport>) -> Action {
        guard case .writing(let area, let phase) = state else { preconditionFailure("shardWritten in \(state)") }
        if phase == .flush {
            state = .reporting(area, phase)
            return .gatherReport(report)
        }
        if plan.aggregate, let area {
            state = .aggregating(area)
            return .aggregate(area, report)
        }
        return afterWriting(area, report)
    }

    mutating func aggregated(_ report: Shared<ShardReport>) -> Action {
        guard case .aggregating(let area) = state else { preconditionFailure("aggregated in \(state)") }
        return afterWriting(area, report)
    }

    private mutating func afterWriting(_ area: StagingArea?, _ report: Shared<ShardReport>) -> Action {
        if plan.local && plan.partnerCopy {
            state = .exchanging(area)
            return .exchangeCopies(area, report)
        }
        return afterCopies(area, report)
    }

    mutating func copiesExchanged(_ report: Shared<ShardReport>) -> Action {
        guard case .exchanging(let area) = state else { preconditionFailure("copiesExchanged in \(state)") }
        return afterCopies(area, report)
    }

    private mutating func afterCopies(_ area: StagingArea?, _ report: Shared<ShardReport>) -> Action {
        if plan.local && plan.xorParity {
            state = .encodingParity(area)
            return .encodeParity(area, report)
        }
        state = .reporting(area, .primary)
        return .gatherReport(report)
    }

    mutating func parityEncoded(_ report: Shared<ShardReport>) -> Action {
        guard case .encodingParity(let area) = state else { preconditionFailure("parityEncoded in \(state)") }
        state = .reporting(area, .primary)
        return .gatherReport(report)
    }

    /// Rank 0, with every rank's report in rank order.
    mutating func reportsGathered(_ reports: [Shared<ShardReport>]) -> Action {
        guard case .reporting(let area, let phase) = state, isRoot else {
            preconditionFailure("reportsGathered in \(state)")
        }
        precondition(reports.count == size)
        var successes: [ShardReport] = []
        var failure: RankFailure?
        for (sender, report) in reports.enumerated() {
            switch report {
            case .success(let shard) where shard.step != step:
                failure = RankFailure(
                    rank: sender,
                    code: CheckpointError.Code.invalidConfiguration.description,
                    message:
                        "rank \(sender) saved step \(shard.step) while rank 0 saved step \(step); all ranks must save the same step"
                )
            case .success(let shard): successes.append(shard)
            case .failure(let reported): failure = reported
            }
            if failure != nil { break }
        }
        let local = plan.local && phase == .primary
        if let failure {
            if local {
                state = .sharingManifest(area)
                return .shareManifest(.failure(failure))
            }
            state = .abortingShared(failure)
            return .abortShared(area, failure)
        }
        if local {
            state = .makingManifest(area)
            return .makeManifest(successes)
        }
        guard let area else { preconditionFailure("a shared commit without a staging area") }
        state = .committingShared(area, phase)
        return .commitShared(area, successes, phase)
    }

    /// Ranks other than 0, after their report went out.
    mutating func reportSent() -> Action {
        guard case .reporting(let area, let phase) = state, !isRoot else {
            preconditionFailure("reportSent in \(state)")
        }
        if plan.local && phase == .primary {
            state = .sharingManifest(area)
            return .shareManifest(nil)
        }
        state = .sharingOutcome(phase)
        return .shareOutcome(nil, phase)
    }

    mutating func sharedCommitted(_ result: Shared<Manifest>) -> Action {
        guard case .committingShared(let area, let phase) = state else {
            preconditionFailure("sharedCommitted in \(state)")
        }
        if case .failure(let failure) = result {
            state = .abortingShared(failure)
            return .abortShared(area, failure)
        }
        state = .sharingOutcome(phase)
        return .shareOutcome(result, phase)
    }

    mutating func outcomeShared(_ outcome: Shared<Manifest>) -> Action {
        guard case .sharingOutcome = state else { preconditionFailure("outcomeShared in \(state)") }
        switch outcome {
        case .failure: return finish(outcome)
        case .success(let manifest): return retain(manifest)
        }
    }

    mutating func manifestMade(_ manifest: Shared<Manifest>) -> Action {
        guard case .makingManifest(let area) = state, isRoot else { preconditionFailure("manifestMade in \(state)") }
        state = .sharingManifest(area)
        return .shareManifest(manifest)
    }

    mutating func manifestShared(_ manifest: Shared<Manifest>) -> Action {
        guard case .sharingManifest(let area) = state else { preconditionFailure("manifestShared in \(state)") }
        switch manifest {
        case .failure(let failure):
            state = .abandoningLocal(failure)
            return .abandonLocal(area, withdraw: false, failure)
        case .success(let manifest):
            guard let area else {
                // This rank could not stage; it reported that, so the manifest cannot exist.
                state = .agreeing(committed: false, manifest)
                return .agree(.failure(RankFailure(rank: rank, code: "peerFailed", message: "no staging area")))
            }
            state = .committingLocal(manifest)
            return .commitLocal(area, manifest)
        }
    }

    mutating func localCommitted(_ result: Shared<Bool>) -> Action {
        guard case .committingLocal(let manifest) = state else { preconditionFailure("localCommitted in \(state)") }
        state = .agreeing(committed: (try? result.get()) == true, manifest)
        return .agree(result)
    }

    mutating func agreed(_ result: Shared<Bool>) -> Action {
        guard case .agreeing(let committed, let manifest) = state else { preconditionFailure("agreed in \(state)") }
        if case .failure(let failure) = result {
            // Another rank could not commit: withdraw this step here too, so that no rank keeps a
            // checkpoint the others lack.
            state = .abandoningLocal(failure)
            return .abandonLocal(nil, withdraw: committed, failure)
        }
        guard let manifest else { preconditionFailure("agreement without a manifest") }
        if plan.flush { return beginShared(.flush) }
        return retain(manifest)
    }

    mutating func aborted() -> Action {
        switch state {
        case .abortingShared(let failure):
            state = .sharingOutcome(.primary)
            return .shareOutcome(.failure(failure), .primary)
        case .abandoningLocal(let failure):
            return finish(.failure(failure))
        default:
            preconditionFailure("aborted in \(state)")
        }
    }

    private mutating func retain(_ manifest: Manifest) -> Action {
        state = .retaining(manifest)
        return .retain(manifest)
    }

    mutating func retained() -> Action {
        guard case .retaining(let manifest) = state else { preconditionFailure("retained in \(state)") }
        if plan.dump {
            state = .dumping(manifest)
            return .dump(manifest)
        }
        return finish(.success(manifest))
    }

    mutating func dumped() -> Action {
        guard case .dumping(let manifest) = state else { preconditionFailure("dumped in \(state)") }
        return finish(.success(manifest))
    }

    private mutating func finish(_ outcome: Shared<Manifest>) -> Action {
        state = .finished
        return .done(outcome)
    }
}

/// What one rank wrote: the manifest's record of its shard, and its timings.
struct ShardReport: Codable, Sendable, Hashable {
    var step: Step
    var shard: Manifest.Shard
    var timings: Manifest.Timings
}
