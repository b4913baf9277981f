import Foundation
import Synchronization
import Testing

@testable import Checkpoint

#if canImport(Glibc)
import Glibc
#endif

@Suite("Asynchronous checkpoints")
struct AsynchronousTests {
    static func asyncConfiguration(
        whenBusy: Checkpointer.Configuration.BusyBehavior = .wait
    ) -> Checkpointer.Configuration {
        var configuration = testConfiguration(threads: 1)
        configuration.mode = .asynchronous(whenBusy: whenBusy)
        configuration.retention.keepLast = 100
        return configuration
    }

    @Test("Background commits across ranks restore exactly; finish() waits", arguments: [1, 4])
    func roundTrip(ranks: Int) throws {
        try withTemporaryDirectory { directory in
            _ = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: Self.asyncConfiguration()
                )
                for step in 1...5 {
                    #expect(
                        try checkpointer.checkpoint(
                            RankState(rank: communicator.rank, seed: UInt64(step)),
                            step: Step(step)
                        ) == nil
                    )
                    #expect(checkpointer.lastCheckpointStep == Step(step))
                }
                try checkpointer.finish()
            }
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [1, 2, 3, 4, 5])
            let restored = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
                try #require(
                    try Checkpointer(directory: directory, communicator: communicator).restoreLatest(RankState.self)
                )
            }
            for (rank, result) in restored.enumerated() {
                #expect(result.step == 5)
                #expect(result.state == RankState(rank: rank, seed: 5))
            }
        }
    }

    @Test("Owned memory is copied at the safe point: changing it afterwards does not change the checkpoint")
    func stagingCopiesOwnedMemory() throws {
        try withTemporaryDirectory { directory in
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 100_000)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 1)
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: Self.asyncConfiguration())
                try checkpointer.registry.register("grid", buffer: buffer)
                try checkpointer.checkpoint(step: 1)
                buffer.update(repeating: 2)  // the application moves on at once
                try checkpointer.finish()
            }
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1)
            #expect(try reader.read([Double].self, "grid").allSatisfy { $0 == 1 })
        }
    }

    @Test("Too much owned memory for the staging limit: written synchronously instead")
    func stagingLimit() throws {
        try withTemporaryDirectory { directory in
            var configuration = Self.asyncConfiguration()
            configuration.mode = .asynchronous(stagingLimit: 1024)
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 1000)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 3)
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            try checkpointer.registry.register("grid", buffer: buffer)
            let manifest = try checkpointer.checkpoint(step: 1)
            #expect(manifest?.step == 1, "a synchronous save returns its manifest")
        }
    }

    @Test("whenBusy: .skip skips a due checkpoint while the previous one is in flight")
    func skipWhenBusy() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(
                directory: directory,
                configuration: Self.asyncConfiguration(whenBusy: .skip)
            )
            let gate = Gate()
            // Occupy the pipeline with a job that waits for the gate.
            checkpointer.background!.submit { gate.wait() }
            try checkpointer.checkpoint(ArrayState([1.0]), step: 1)
            #expect(checkpointer.lastCheckpointStep == nil, "skipped while busy")
            gate.open()
            try checkpointer.finish()
            try checkpointer.checkpoint(ArrayState([2.0]), step: 2)
            try checkpointer.finish()
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [2])
        }
    }

    @Test("A background failure is thrown at the next safe point on every rank, and nothing is committed")
    func backgroundFailure() throws {
        try withTemporaryDirectory { directory in
            let codes = Survivors()
            _ = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: Self.asyncConfiguration()
                )
                try checkpointer.checkpoint(
                    FailingState(inner: RankState(rank: communicator.rank, seed: 1), failOn: 1),
                    step: 1
                )
                // The failure surfaces at the next safe point, on every rank alike.
                do {
                    try checkpointer.checkpoint(RankState(rank: communicator.rank, seed: 2), step: 2)
                    Issue.record("rank \(communicator.rank): the background failure was not reported")
                } catch let error as CheckpointError {
                    codes.record(error.code)
                } catch is SaveFailure {
                    codes.record(.peerFailed)
                }
                try checkpointer.checkpoint(RankState(rank: communicator.rank, seed: 3), step: 3)
                try checkpointer.finish()
            }
            #expect(codes.codes.count == 3)
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [3])
        }
    }
}

@Suite("Policies, signals and deadlines")
struct PolicyExtensionTests {
    @Test("Young/Daly: the first safe point measures, then sqrt(2 C MTBF)")
    func youngDaly() {
        let policy = CheckpointPolicy.youngDaly(mtbf: 3_600)
        #expect(policy.isDue(PolicyContext(step: 1, secondsSinceLast: 0)))
        let interval = CheckpointPolicy.youngDalyInterval(cost: 2, mtbf: 3_600)
        #expect(abs(interval - 120) < 1e-9)
        #expect(!policy.isDue(PolicyContext(step: 9, secondsSinceLast: 119, checkpointCost: 2)))
        #expect(policy.isDue(PolicyContext(step: 9, secondsSinceLast: 120, checkpointCost: 2)))
        // "Young/Daly, but at least every hour"
        let combined = CheckpointPolicy.any(.youngDaly(mtbf: 1e9), .every(seconds: 3_600))
        #expect(combined.isDue(PolicyContext(step: 1, secondsSinceLast: 3_600, checkpointCost: 10)))
        #expect(!combined.isDue(PolicyContext(step: 1, secondsSinceLast: 3_599, checkpointCost: 10)))
    }

    @Test("An overhead cap skips checkpoints that would cost more than the given share of run time")
    func overheadCap() {
        let policy = CheckpointPolicy.always.limitingOverhead(toPercent: 5)
        #expect(
            policy.isDue(
                PolicyContext(step: 1, secondsSinceLast: 0, checkpointCost: 1, runSeconds: 100, checkpointSeconds: 3)
            )
        )
        #expect(
            !policy.isDue(
                PolicyContext(step: 1, secondsSinceLast: 0, checkpointCost: 1, runSeconds: 100, checkpointSeconds: 4.5)
            )
        )
        #expect(policy.description == "always.limitingOverhead(toPercent: 5.0)")
    }

    @Test("The checkpointer measures the cost it feeds to Young/Daly")
    func measuredCost() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.policy = .youngDaly(mtbf: 1e12)
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            #expect(checkpointer.measuredCheckpointCost == nil)
            #expect(try checkpointer.checkpoint(ArrayState([1.0]), step: 1) != nil, "the first safe point measures")
            #expect((checkpointer.measuredCheckpointCost ?? 0) > 0)
            #expect(try checkpointer.checkpoint(ArrayState([1.0]), step: 2) == nil, "then the interval is far away")
        }
    }

    /// More safe points than the longest the ranks go without deciding together, twice.
    static let stepBound: Step = 2_000_100

    @Test("A stop signal makes the next safe point checkpoint on every rank, then asks the application to stop")
    func stopSignal() throws {
        try withStopSignalTurn {
            try withTemporaryDirectory { directory in
                let stoppedAt = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                    var configuration = testConfiguration(threads: 1)
                    configuration.policy = .never
                    configuration.stopSignals = StopSignals(signals: [SIGUSR2], gracePeriod: 86_400)
                    let checkpointer = try Checkpointer(
                        directory: directory,
                        communicator: communicator,
                        configuration: configuration
                    )
                    var step: Step = 0
                    // Ranks decide together only every ~50 ms (at most every 10⁶ safe points, however
                    // fast the loop runs): bound the loop past that, not by a step count a fast
                    // machine finishes before the next decision.
                    while !checkpointer.shouldStop && step < Self.stepBound {
                        step += 1
                        if step == 10 && communicator.rank == 1 {
                            try raiseAndAwait(SIGUSR2)
                            try #require(checkpointer.scheduler.stopSignal?.isPending == true)
                        }
                        // Only rank 1 has certainly seen the signal at step 10; the others follow it.
                        try communicator.barrier()
                        try checkpointer.checkpoint(RankState(rank: communicator.rank, seed: 1), step: step)
                    }
                    return step
                }
                #expect(stoppedAt.allSatisfy { $0 == stoppedAt[0] })
                #expect(stoppedAt[0] >= 10 && stoppedAt[0] < Self.stepBound)
                #expect(try CheckpointDirectory(path: directory).committedSteps() == [stoppedAt[0]])
            }
        }
    }

    @Test("A deadline makes a safe point checkpoint and stop before it passes")
    func deadline() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.policy = .never
            configuration.deadline = .after(seconds: 0)
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            #expect(try checkpointer.checkpoint(ArrayState([1.0]), step: 1) != nil)
            #expect(checkpointer.shouldStop)
            #expect(
                try checkpointer.checkpoint(ArrayState([1.0]), step: 2) == nil,
                "one stop checkpoint, not one per step"
            )
            let far = Deadline.at(Date(timeIntervalSinceNow: 3_600))
            #expect(far.remaining(now: Date(), start: Date()) > 3_500)
        }
    }
}

/// A one-shot gate a background job waits on.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    func wait() {
        condition.lock()
        while !isOpen { condition.wait() }
        condition.unlock()
    }
    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }
}
