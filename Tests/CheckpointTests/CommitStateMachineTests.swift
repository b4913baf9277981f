import Testing

@testable import Checkpoint

/// The commit protocol without threads, files or MPI: events in, actions out.
@Suite("Commit state machine")
struct CommitStateMachineTests {
    static let ticket = CommitStateMachine.TemporaryTicket(path: "/d/.tmp", step: 5)
    static func report(_ rank: Int) -> ShardReport {
        ShardReport(
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

    @Test("Rank 0, everything succeeds: create, share, write, gather, commit, share outcome")
    func rootSuccess() throws {
        var machine = CommitStateMachine(rank: 0, size: 3, step: 5)
        #expect(machine.start() == .createTemporary)
        #expect(machine.temporaryCreated(.success("/d/.tmp")) == .shareTemporary(.success(Self.ticket)))
        #expect(machine.temporaryShared(.success(Self.ticket)) == .writeShard(directory: "/d/.tmp"))
        #expect(machine.shardWritten(.success(Self.report(0))) == .gatherReport(.success(Self.report(0))))
        let reports = (0..<3).map { Shared<ShardReport>.success(Self.report($0)) }
        #expect(machine.reportsGathered(reports) == .commit(directory: "/d/.tmp", reports: (0..<3).map(Self.report)))
        let manifest = try #require(Self.sampleManifest)
        #expect(machine.commitFinished(.success(manifest)) == .shareOutcome(.success(manifest)))
        #expect(machine.outcomeShared(.success(manifest)) == .done(.success(manifest)))
        #expect(machine.state == .finished)
    }

    @Test("Rank 0: one rank's failure aborts; the temporary directory is removed and everyone gets that failure")
    func rootAbort() {
        var machine = CommitStateMachine(rank: 0, size: 3, step: 5)
        _ = machine.start()
        _ = machine.temporaryCreated(.success("/d/.tmp"))
        _ = machine.temporaryShared(.success(Self.ticket))
        _ = machine.shardWritten(.success(Self.report(0)))
        let reports: [Shared<ShardReport>] = [
            .success(Self.report(0)), .success(Self.report(1)), .failure(Self.failure),
        ]
        #expect(machine.reportsGathered(reports) == .abort(directory: "/d/.tmp", failure: Self.failure))
        #expect(machine.aborted() == .shareOutcome(.failure(Self.failure)))
        #expect(machine.outcomeShared(.failure(Self.failure)) == .done(.failure(Self.failure)))
    }

    @Test("Rank 0: a failed commit (say the manifest write) also aborts")
    func commitFails() {
        var machine = CommitStateMachine(rank: 0, size: 1, step: 5)
        _ = machine.start()
        _ = machine.temporaryCreated(.success("/d/.tmp"))
        _ = machine.temporaryShared(.success(Self.ticket))
        _ = machine.shardWritten(.success(Self.report(0)))
        _ = machine.reportsGathered([.success(Self.report(0))])
        let failure = RankFailure(rank: 0, code: "ioFailure", message: "rename")
        #expect(machine.commitFinished(.failure(failure)) == .abort(directory: "/d/.tmp", failure: failure))
    }

    @Test("No temporary directory: every rank finishes with the failure at once, writing nothing")
    func temporaryFails() {
        let failure = RankFailure(rank: 0, code: "permissionDenied", message: "mkdir")
        var root = CommitStateMachine(rank: 0, size: 2, step: 5)
        _ = root.start()
        #expect(root.temporaryCreated(.failure(failure)) == .shareTemporary(.failure(failure)))
        #expect(root.temporaryShared(.failure(failure)) == .done(.failure(failure)))
        var other = CommitStateMachine(rank: 1, size: 2, step: 5)
        #expect(other.start() == .shareTemporary(nil))
        #expect(other.temporaryShared(.failure(failure)) == .done(.failure(failure)))
    }

    @Test("Other ranks: write, report, then learn the outcome")
    func otherRank() {
        var machine = CommitStateMachine(rank: 1, size: 2, step: 5)
        _ = machine.start()
        #expect(machine.temporaryShared(.success(Self.ticket)) == .writeShard(directory: "/d/.tmp"))
        #expect(machine.shardWritten(.failure(Self.failure)) == .gatherReport(.failure(Self.failure)))
        #expect(machine.reportSent() == .shareOutcome(nil))
        #expect(machine.outcomeShared(.failure(Self.failure)) == .done(.failure(Self.failure)))
    }

    @Test("A rank whose staging failed, or that saves another step, reports instead of writing")
    func stagingFailureAndStepMismatch() {
        var failed = CommitStateMachine(rank: 1, size: 2, step: 5, stagingFailure: Self.failure)
        _ = failed.start()
        #expect(failed.temporaryShared(.success(Self.ticket)) == .gatherReport(.failure(Self.failure)))

        var other = CommitStateMachine(rank: 1, size: 2, step: 6)
        _ = other.start()
        guard case .gatherReport(.failure(let mismatch)) = other.temporaryShared(.success(Self.ticket)) else {
            Issue.record("a step mismatch must be reported as a failure")
            return
        }
        #expect(mismatch.message.contains("step 6") && mismatch.message.contains("step 5"))
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
