import Foundation
import Testing

@testable import Checkpoint

@Suite("Swift concurrency")
struct ConcurrencyTests {
    @Test("The async counterparts restore, checkpoint, save and finish from an async context")
    func singleRank() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = testConfiguration()
        configuration.mode = .asynchronous()
        do {
            let checkpointer = try await Checkpointer.open(directory: directory, configuration: configuration)
            var (state, step) = try await checkpointer.restoreLatest(or: ArrayState([Double](repeating: 0, count: 8)))
            #expect(step == 0)
            while step < 5 {
                state.values[0] += 1
                step += 1
                try await checkpointer.checkpoint(state, step: step)
            }
            try await checkpointer.finish()
            try await checkpointer.save(["note": "codable"], step: 6)
        }
        let checkpointer = try await Checkpointer.open(directory: directory, configuration: testConfiguration())
        #expect(try await checkpointer.restoreLatest([String: String].self)?.state == ["note": "codable"])
        let values = Values()
        try checkpointer.registry.register("values", values, \.numbers)
        try await checkpointer.save(step: 7)
        values.numbers = []
        #expect(try await checkpointer.restoreLatest() == 7)
        #expect(values.numbers == [1, 2, 3])
        #expect(try await checkpointer.checkpoint(step: 8) != nil)  // the policy is `.always`
    }

    /// More ranks than the cooperative pool has threads: a single call that blocked a pool thread in
    /// a collective would leave some rank without a thread, and the group would time out.
    @Test("Ranks as tasks of one task group never block the cooperative pool")
    func ranksAsTasks() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ranks = ProcessInfo.processInfo.activeProcessorCount + 2
        let group = LocalGroup(size: ranks, timeout: 60)
        let configuration = testConfiguration()
        let steps = try await withThrowingTaskGroup(of: Step.self) { tasks in
            for rank in 0..<ranks {
                tasks.addTask {
                    let checkpointer = try await Checkpointer.open(
                        directory: directory,
                        communicator: group.communicator(rank: rank),
                        configuration: configuration
                    )
                    var (state, step) = try await checkpointer.restoreLatest(
                        or: ArrayState([Int](repeating: rank, count: 4))
                    )
                    while step < 3 {
                        state.values[0] += 1
                        step += 1
                        try await checkpointer.checkpoint(state, step: step)
                    }
                    try await checkpointer.finish()
                    return try #require(try await checkpointer.restoreLatest(ArrayState<Int>.self)).step
                }
            }
            return try await tasks.reduce(into: []) { $0.append($1) }
        }
        #expect(steps == Array(repeating: 3, count: ranks))
    }
}

private final class Values: @unchecked Sendable {
    var numbers: [Double] = [1, 2, 3]
}
