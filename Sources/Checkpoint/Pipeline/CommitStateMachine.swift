/// The two-phase commit of one checkpoint across ranks, as a state machine without I/O.
///
/// The ``Checkpointer`` drives it: it performs each returned ``Action`` (a file operation or a
/// collective) and feeds the result back as the next event. Every rank takes part in every
/// collective whatever happened locally, so a failure on one rank becomes the same error on all
/// ranks instead of a hang.
///
/// ```
/// rank 0:  createTemporary → shareTemporary → writeShard → gatherReports → commit | abort → shareOutcome → done
/// others:                    shareTemporary → writeShard → gatherReports →                  shareOutcome → done
/// ```
struct CommitStateMachine {
    /// What the driver must do next.
    enum Action: Equatable {
        /// Rank 0: create the temporary directory, then call ``temporaryCreated(_:)``.
        case createTemporary
        /// Broadcast rank 0's temporary directory (or its failure), then call ``temporaryShared(_:)``.
        case shareTemporary(Shared<TemporaryTicket>?)
        /// Write this rank's shard into the directory (or report the staging failure), then call ``shardWritten(_:)``.
        case writeShard(directory: String)
        /// Gather this rank's report on rank 0, then call ``reportsGathered(_:)`` (rank 0) or ``reportSent()``.
        case gatherReport(Shared<ShardReport>)
        /// Rank 0: write the manifest and rename, then call ``commitFinished(_:)``.
        case commit(directory: String, reports: [ShardReport])
        /// Rank 0: remove the temporary directory (if any), then call ``aborted()``.
        case abort(directory: String?, failure: RankFailure)
        /// Broadcast rank 0's outcome (others pass `nil`), then call ``outcomeShared(_:)``.
        case shareOutcome(Shared<Manifest>?)
        /// Finished: success, or the failure every rank throws.
        case done(Shared<Manifest>)
    }

    /// What rank 0 tells the others about the temporary directory.
    struct TemporaryTicket: Codable, Sendable, Hashable {
        var path: String
        var step: Step
    }

    enum State: Equatable {
        case idle
        case creatingTemporary
        case sharingTemporary
        case writing(directory: String)
        case reporting(directory: String)
        case committing(directory: String)
        case aborting(RankFailure)
        case sharingOutcome
        case finished
    }

    let rank: Int
    let size: Int
    let step: Step
    /// Set when staging the state already failed on this rank: it writes nothing and reports this.
    let stagingFailure: RankFailure?
    private(set) var state = State.idle

    init(rank: Int, size: Int, step: Step, stagingFailure: RankFailure? = nil) {
        self.rank = rank
        self.size = size
        self.step = step
        self.stagingFailure = stagingFailure
    }

    private var isRoot: Bool { rank == 0 }

    mutating func start() -> Action {
        precondition(state == .idle)
        if isRoot {
            state = .creatingTemporary
            return .createTemporary
        }
        state = .sharingTemporary
        return .shareTemporary(nil)
    }

    mutating func temporaryCreated(_ result: Shared<String>) -> Action {
        precondition(state == .creatingTemporary && isRoot)
        state = .sharingTemporary
        switch result {
        case .success(let path): return .shareTemporary(.success(TemporaryTicket(path: path, step: step)))
        case .failure(let failure): return .shareTemporary(.failure(failure))
        }
    }

    mutating func temporaryShared(_ ticket: Shared<TemporaryTicket>) -> Action {
        precondition(state == .sharingTemporary)
        switch ticket {
        case .failure(let failure):
            // Nothing was created; every rank learns the same error without another round.
            state = .finished
            return .done(.failure(failure))
        case .success(let ticket):
            if ticket.step != step {
                let failure = RankFailure(
                    rank: rank,
                    code: CheckpointError.Code.invalidConfiguration.description,
                    message:
                        "rank \(rank) saved step \(step) while rank 0 saved step \(ticket.step); all ranks must save the same step"
                )
                state = .reporting(directory: ticket.path)
                return .gatherReport(.failure(failure))
            }
            if let stagingFailure {
                state = .reporting(directory: ticket.path)
                return .gatherReport(.failure(stagingFailure))
            }
            state = .writing(directory: ticket.path)
            return .writeShard(directory: ticket.path)
        }
    }

    mutating func shardWritten(_ report: Shared<ShardReport>) -> Action {
        guard case .writing(let directory) = state else { preconditionFailure("shardWritten in \(state)") }
        state = .reporting(directory: directory)
        return .gatherReport(report)
    }

    /// Rank 0, with every rank's report in rank order.
    mutating func reportsGathered(_ reports: [Shared<ShardReport>]) -> Action {
        guard case .reporting(let directory) = state, isRoot else { preconditionFailure("reportsGathered in \(state)") }
        precondition(reports.count == size)
        var successes: [ShardReport] = []
        for report in reports {
            switch report {
            case .success(let shard): successes.append(shard)
            case .failure(let failure):
                state = .aborting(failure)
                return .abort(directory: directory, failure: failure)
            }
        }
        state = .committing(directory: directory)
        return .commit(directory: directory, reports: successes)
    }

    /// Ranks other than 0, after their report went out.
    mutating func reportSent() -> Action {
        guard case .reporting = state, !isRoot else { preconditionFailure("reportSent in \(state)") }
        state = .sharingOutcome
        return .shareOutcome(nil)
    }

    mutating func commitFinished(_ result: Shared<Manifest>) -> Action {
        guard case .committing(let directory) = state else { preconditionFailure("commitFinished in \(state)") }
        switch result {
        case .failure(let failure):
            state = .aborting(failure)
            return .abort(directory: directory, failure: failure)
        case .success(let manifest):
            state = .sharingOutcome
            return .shareOutcome(.success(manifest))
        }
    }

    mutating func aborted() -> Action {
        guard case .aborting(let failure) = state else { preconditionFailure("aborted in \(state)") }
        state = .sharingOutcome
        return .shareOutcome(.failure(failure))
    }

    mutating func outcomeShared(_ outcome: Shared<Manifest>) -> Action {
        precondition(state == .sharingOutcome)
        state = .finished
        return .done(outcome)
    }
}

/// What one rank wrote: the manifest's record of its shard, and its timings.
struct ShardReport: Codable, Sendable, Hashable {
    var shard: Manifest.Shard
    var timings: Manifest.Timings
}
