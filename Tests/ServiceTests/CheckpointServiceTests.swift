import Checkpoint
import CheckpointService
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// A counter that services change: the state a `CheckpointService` snapshots.
actor Counter {
    struct State: Codable, Sendable, Equatable {
        var values: [Int] = []
        var step: Step { Step(values.count) }
    }

    private(set) var state = State()

    init(_ state: State = State()) { self.state = state }

    func append(_ value: Int) { state.values.append(value) }

    func snapshot() -> (state: State, step: Step) { (state, state.step) }
}

/// A service that keeps writing to the counter until graceful shutdown, and then writes a few more
/// values while it "finishes the requests it accepted" (as an HTTP server does).
struct Writer: Service {
    let counter: Counter
    let valuesAfterShutdown: Int

    func run() async throws {
        var next = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await counter.append(next)
            next += 1
            try? await Task.sleep(for: .milliseconds(2))
        }
        guard Task.isShuttingDownGracefully else { return }
        for _ in 0..<valuesAfterShutdown {
            await counter.append(next)
            next += 1
        }
    }
}

@Suite struct CheckpointServiceTests {
    private let logger = Logger(label: "service-test")

    private func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-service-\(UUID().uuidString)").path
    }

    private func checkpointer(_ path: String, policy: CheckpointPolicy) async throws -> Checkpointer {
        var configuration = Checkpointer.Configuration()
        configuration.policy = policy
        configuration.retention = .init(keepLast: 100)
        return try await Checkpointer.open(directory: path, configuration: configuration, logger: logger)
    }

    /// Graceful shutdown: the writer (listed after the snapshot service) stops first, including the
    /// writes it makes while shutting down; the final snapshot then holds every one of them.
    @Test func finalSnapshotHoldsEveryWrite() async throws {
        let path = directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let counter = Counter()
        let (final, steps) = try await runUntilShutdown(path, counter: counter)
        #expect(final.values.count > 50)
        #expect(steps.count >= 3, "the policy took snapshots while the writer ran, then the final one: \(steps)")
        #expect(steps.last == final.step)

        let reopened = try await self.checkpointer(path, policy: .every(seconds: 3_600))
        let restored = try await reopened.restoreLatest(Counter.State.self)
        #expect(restored?.state == final)
        #expect(restored?.step == final.step)
    }

    /// Runs the snapshot service and a writer until two periodic snapshots are taken, then shuts
    /// down gracefully; returns the final state and the steps of every snapshot.
    private func runUntilShutdown(_ path: String, counter: Counter) async throws -> (Counter.State, [Step]) {
        let checkpointer = try await checkpointer(path, policy: .every(seconds: 0.05))
        let snapshots = CheckpointService(checkpointer: checkpointer, checkInterval: .milliseconds(10), logger: logger)
        {
            await counter.snapshot()
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: snapshots), .init(service: Writer(counter: counter, valuesAfterShutdown: 50)),
                ],
                logger: logger
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitUntil { try checkpointer.checkpoints().count >= 2 }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        return (await counter.state, try checkpointer.checkpoints().map(\.step))
    }

    /// An unchanged state is not saved again, and the initial state (step 0) is never saved.
    @Test func unchangedStateIsNotSavedAgain() async throws {
        let path = directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let counter = Counter()
        let checkpointer = try await checkpointer(path, policy: .everySteps(1))
        let snapshots = CheckpointService(checkpointer: checkpointer, checkInterval: .milliseconds(5), logger: logger) {
            await counter.snapshot()
        }
        let group = ServiceGroup(configuration: .init(services: [snapshots], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            #expect(try checkpointer.checkpoints().isEmpty, "step 0 is the initial state")
            await counter.append(7)
            try await waitUntil { try checkpointer.checkpoints().count == 1 }
            try await Task.sleep(for: .milliseconds(50))  // ten more checks of an unchanged state
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try checkpointer.checkpoints().map(\.step) == [1])
    }

    /// Cancellation (the group gives up) returns at once, without a final snapshot.
    @Test func cancellationTakesNoFinalSnapshot() async throws {
        let path = directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let counter = Counter()
        let checkpointer = try await checkpointer(path, policy: .every(seconds: 3_600))
        // No periodic check within the test: the first would be due at once (nothing saved yet).
        let snapshots = CheckpointService(checkpointer: checkpointer, checkInterval: .seconds(3_600), logger: logger) {
            await counter.snapshot()
        }
        let task = Task { try await snapshots.run() }
        await counter.append(1)
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        try await task.value
        #expect(try checkpointer.checkpoints().isEmpty)
    }

    /// A periodic snapshot that fails (capture throws) is logged; the service goes on, and the
    /// final snapshot's failure is thrown.
    @Test func failuresAreReportedNotFatal() async throws {
        struct CaptureFailed: Error {}
        let path = directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let counter = Counter()
        let checkpointer = try await checkpointer(path, policy: .everySteps(1))
        let failing = Locked(true)
        let snapshots = CheckpointService(checkpointer: checkpointer, checkInterval: .milliseconds(5), logger: logger) {
            if failing.value { throw CaptureFailed() }
            return await counter.snapshot()
        }
        let group = ServiceGroup(configuration: .init(services: [snapshots], logger: logger))
        await counter.append(1)
        await #expect(throws: CaptureFailed.self) {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await Task.sleep(for: .milliseconds(60))
                failing.value = false
                try await waitUntil { try checkpointer.checkpoints().count == 1 }
                #expect(try checkpointer.checkpoints().map(\.step) == [1], "the service survived the failures")
                await counter.append(2)
                failing.value = true
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        #expect(try checkpointer.checkpoints().map(\.step) == [1])
    }
}

/// Polls `condition` every 10 ms until it holds; fails after 5 minutes (a guard against a hang
/// only: in the whole suite, these tasks wait behind other suites' tests for the cooperative pool).
func waitUntil(_ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(300)
    while try !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("the condition did not hold within 5 minutes")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A value several tasks read and write.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    /// Runs `body` on the value with the lock held. (An `NSLock`, not `Synchronization.Mutex`: the
    /// thread sanitizer does not see the futex a `Mutex` uses and reports its accesses as races.)
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try lock.withLock { try body(&stored) }
    }
}
