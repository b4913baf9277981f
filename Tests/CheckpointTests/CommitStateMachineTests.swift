import Testing

@testable import Checkpoint

/// The commit protocol without threads, files or MPI: events in, actions out.
@Suite("Commit state machine")
struct CommitStateMachineTests {
    static let area = StagingArea(step: 5, location: "/d/.tmp")
    static let local = StagingArea(step: 5, location: "/local/rank-00001/.tmp")
    static func report(_ rank: Int, step: Step = 5) -> ShardReport {
        ShardReport(
            step: step,
            shard: Manifest.Shard(
                rank: rank,
                file: "rank-\(rank)",
                fileBytes: 1,
                indexSHA256: "",
                rawBytes: 0,
                storedBytes: 0,
                entries: []
            ),
            timings: Manifest.Timings(
                stageSeconds: 0,
                encodeSeconds: 0,
                writeSeconds: 0,
                syncSeconds: 0,
                commitSeconds: 0
            )
        )
    }
    static let failure = RankFailure(rank: 2, code: "diskFull", message: "full")

    @Test("Rank 0, everything succeeds: begin, share, write, gather, commit, share outcome, retain")
    func rootSuccess() throws {
        var machine = CommitStateMachine(rank: 0, size: 3, step: 5)
        #expect(machine.start() == .beginShared(.primary))
        #expect(machine.sharedBegun(.success(Self.area)) == .shareStaging(.success(Self.area)))
        #expect(machine.stagingShared(.success(Self.area)) == .writeShard(Self.area))
        #expect(machine.shardWritten(.success(Self.report(0))) == .gatherReport(.success(Self.report(0))))
        let reports = (0..<3).map { Shared<ShardReport>.success(Self.report($0)) }
        #expect(machine.reportsGathered(reports) == .commitShared(Self.area, (0..<3).map { Self.report($0) }, .primary))
        let manifest = try #require(Self.sampleManifest)
        #expect(machine.sharedCommitted(.success(manifest)) == .shareOutcome(.success(manifest), .primary))
        #expect(machine.outcomeShared(.success(manifest)) == .retain(manifest))
        #expect(machine.retained() == .done(.success(manifest)))
        #expect(machine.state == .finished)
    }

    @Test("Rank 0: one rank's failure aborts; the staging area is removed and everyone gets that failure")
    func rootAbort() {
        var machine = CommitStateMachine(rank: 0, size: 3, step: 5)
        _ = machine.start()
        _ = machine.sharedBegun(.success(Self.area))
        _ = machine.stagingShared(.success(Self.area))
        _ = machine.shardWritten(.success(Self.report(0)))
        let reports: [Shared<ShardReport>] = [
            .success(Self.report(0)), .success(Self.report(1)), .failure(Self.failure),
        ]
        #expect(machine.reportsGathered(reports) == .abortShared(Self.area, Self.failure))
        #expect(machine.aborted() == .shareOutcome(.failure(Self.failure), .primary))
        #expect(machine.outcomeShared(.failure(Self.failure)) == .done(.failure(Self.failure)))
    }

    @Test("Rank 0: a failed commit (say the manifest write) also aborts and removes the staging area")
    func rootCommitFails() {
        var machine = CommitStateMachine(rank: 0, size: 2, step: 5)
        _ = machine.start()
        _ = machine.sharedBegun(.success(Self.area))
        _ = machine.stagingShared(.success(Self.area))
        _ = machine.shardWritten(.success(Self.report(0)))
        _ = machine.reportsGathered([.success(Self.report(0)), .success(Self.report(1))])
        let failure = RankFailure(rank: 0, code: "ioFailure", message: "manifest")
        #expect(machine.sharedCommitted(.failure(failure)) == .abortShared(Self.area, failure))
        #expect(machine.aborted() == .shareOutcome(.failure(failure), .primary))
    }

    @Test("No staging area: every rank finishes with the failure at once, writing nothing")
    func noStagingArea() {
        var root = CommitStateMachine(rank: 0, size: 2, step: 5)
        _ = root.start()
        #expect(root.sharedBegun(.failure(Self.failure)) == .shareStaging(.failure(Self.failure)))
        #expect(root.stagingShared(.failure(Self.failure)) == .done(.failure(Self.failure)))
        var other = CommitStateMachine(rank: 1, size: 2, step: 5)
        #expect(other.start() == .shareStaging(nil))
        #expect(other.stagingShared(.failure(Self.failure)) == .done(.failure(Self.failure)))
    }

    @Test("Other ranks: write, report, then learn the outcome")
    func otherRank() throws {
        var machine = CommitStateMachine(rank: 1, size: 3, step: 5)
        #expect(machine.start() == .shareStaging(nil))
        #expect(machine.stagingShared(.success(Self.area)) == .writeShard(Self.area))
        #expect(machine.shardWritten(.success(Self.report(1))) == .gatherReport(.success(Self.report(1))))
        #expect(machine.reportSent() == .shareOutcome(nil, .primary))
        let manifest = try #require(Self.sampleManifest)
        #expect(machine.outcomeShared(.success(manifest)) == .retain(manifest))
    }

    @Test("A rank whose staging failed reports instead of writing; rank 0 names a rank that saved another step")
    func stagingFailureAndStepMismatch() {
        var failed = CommitStateMachine(rank: 1, size: 2, step: 5, stagingFailure: Self.failure)
        _ = failed.start()
        #expect(failed.stagingShared(.success(Self.area)) == .gatherReport(.failure(Self.failure)))
        var root = CommitStateMachine(rank: 0, size: 2, step: 5)
        _ = root.start()
        _ = root.sharedBegun(.success(Self.area))
        _ = root.stagingShared(.success(Self.area))
        _ = root.shardWritten(.success(Self.report(0)))
        guard
            case .abortShared(_, let failure) = root.reportsGathered([
                .success(Self.report(0)), .success(Self.report(1, step: 6)),
            ])
        else {
            Issue.record("a rank that saved another step must abort the checkpoint")
            return
        }
        #expect(failure.rank == 1)
        #expect(failure.message.contains("rank 1 saved step 6 while rank 0 saved step 5"))
    }

    static let redundant = CommitStateMachine.Plan(local: true, partnerCopy: true, flush: true, dump: true)

    @Test("Redundancy: local write, partner copy, manifest shared, local commit, agreement, flush, retention, dump")
    func everyStage() throws {
        let manifest = try #require(Self.sampleManifest)
        var root = CommitStateMachine(rank: 0, size: 2, step: 5, plan: Self.redundant)
        #expect(root.start() == .beginLocal)
        #expect(root.localBegun(.success(Self.local)) == .writeShard(Self.local))
        #expect(root.shardWritten(.success(Self.report(0))) == .exchangeCopies(Self.local, .success(Self.report(0))))
        #expect(root.copiesExchanged(.success(Self.report(0))) == .gatherReport(.success(Self.report(0))))
        let reports = [Shared.success(Self.report(0)), .success(Self.report(1))]
        #expect(root.reportsGathered(reports) == .makeManifest([Self.report(0), Self.report(1)]))
        #expect(root.manifestMade(.success(manifest)) == .shareManifest(.success(manifest)))
        #expect(root.manifestShared(.success(manifest)) == .commitLocal(Self.local, manifest))
        #expect(root.localCommitted(.success(true)) == .agree(.success(true)))
        // The flush is a shared commit whose shards are copied from the node-local ones.
        #expect(root.agreed(.success(true)) == .beginShared(.flush))
        #expect(root.sharedBegun(.success(Self.area)) == .shareStaging(.success(Self.area)))
        #expect(root.stagingShared(.success(Self.area)) == .copyShard(Self.area))
        #expect(root.shardWritten(.success(Self.report(0))) == .gatherReport(.success(Self.report(0))))
        #expect(root.reportsGathered(reports) == .commitShared(Self.area, [Self.report(0), Self.report(1)], .flush))
        #expect(root.sharedCommitted(.success(manifest)) == .shareOutcome(.success(manifest), .flush))
        #expect(root.outcomeShared(.success(manifest)) == .retain(manifest))
        #expect(root.retained() == .dump(manifest))
        #expect(root.dumped() == .done(.success(manifest)))

        var other = CommitStateMachine(rank: 1, size: 2, step: 5, plan: Self.redundant)
        _ = other.start()
        _ = other.localBegun(.success(Self.local))
        _ = other.shardWritten(.success(Self.report(1)))
        _ = other.copiesExchanged(.success(Self.report(1)))
        #expect(other.reportSent() == .shareManifest(nil))
        #expect(other.manifestShared(.success(manifest)) == .commitLocal(Self.local, manifest))
        _ = other.localCommitted(.success(true))
        #expect(other.agreed(.success(true)) == .shareStaging(nil))
        #expect(other.stagingShared(.success(Self.area)) == .copyShard(Self.area))
        _ = other.shardWritten(.success(Self.report(1)))
        #expect(other.reportSent() == .shareOutcome(nil, .flush))
    }

    @Test("Redundancy: a rank that committed locally withdraws when another rank could not")
    func localWithdraw() throws {
        let manifest = try #require(Self.sampleManifest)
        var machine = CommitStateMachine(rank: 1, size: 2, step: 5, plan: Self.redundant)
        _ = machine.start()
        _ = machine.localBegun(.success(Self.local))
        _ = machine.shardWritten(.success(Self.report(1)))
        _ = machine.copiesExchanged(.success(Self.report(1)))
        _ = machine.reportSent()
        _ = machine.manifestShared(.success(manifest))
        _ = machine.localCommitted(.success(true))
        #expect(machine.agreed(.failure(Self.failure)) == .abandonLocal(nil, withdraw: true, Self.failure))
        #expect(machine.aborted() == .done(.failure(Self.failure)))
    }

    @Test("Redundancy: a rank that could not stage still takes part in the partner exchange, then abandons")
    func localStagingFailure() {
        var machine = CommitStateMachine(rank: 1, size: 2, step: 5, plan: Self.redundant, stagingFailure: Self.failure)
        #expect(machine.start() == .exchangeCopies(nil, .failure(Self.failure)))
        #expect(machine.copiesExchanged(.failure(Self.failure)) == .gatherReport(.failure(Self.failure)))
        #expect(machine.reportSent() == .shareManifest(nil))
        #expect(machine.manifestShared(.failure(Self.failure)) == .abandonLocal(nil, withdraw: false, Self.failure))
        #expect(machine.aborted() == .done(.failure(Self.failure)))
    }

    static var sampleManifest: Manifest? {
        Manifest(
            manifestVersion: 1,
            shardFormat: "1.0",
            library: "x",
            zstdVersion: "1",
            step: 5,
            createdAt: "",
            rankCount: 1,
            hostName: "h",
            metadata: [:],
            settings: .init(compression: "zstd-1", filter: "automatic", chunkSize: 1, threads: 1),
            shards: [report(0).shard],
            timings: report(0).timings
        )
    }
}
