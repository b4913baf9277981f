import Foundation
import Testing

@testable import Checkpoint

/// An existing simulation class, registered without changing it.
final class LegacySimulation: @unchecked Sendable {
    struct Config: Codable, Equatable {
        var name: String
        var dt: Double
    }

    var positions: [SIMD3<Double>] = []
    var time = 0.0
    var step = 0
    var config = Config(name: "run", dt: 0.1)
}

@Suite("Registry")
struct RegistryTests {
    @Test("Key paths, owned buffers and closures round-trip in place")
    func registry() throws {
        try withTemporaryDirectory { directory in
            let grid = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1000)
            defer { grid.deallocate() }
            for index in grid.indices { grid[index] = Float(index) }
            let sim = LegacySimulation()
            sim.positions = (0..<700).map { SIMD3(Double($0), 1, 2) }
            sim.time = 3.5
            sim.step = 12
            sim.config.dt = 0.25
            let counter = Counter()
            counter.value = 99

            func register(_ checkpointer: Checkpointer) throws {
                try checkpointer.registry.register("positions", sim, \.positions)
                try checkpointer.registry.register("time", sim, \.time)
                try checkpointer.registry.register("step", sim, \.step)
                try checkpointer.registry.register("config", sim, \.config)
                try checkpointer.registry.register("grid", buffer: grid, shape: [10, 100])
                try checkpointer.registry.register("counter", get: { counter.value }, set: { counter.value = $0 })
            }
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
                try register(checkpointer)
                #expect(checkpointer.registry.names == ["positions", "time", "step", "config", "grid", "counter"])
                try checkpointer.save(step: 12)
            }
            let expected = (sim.positions, sim.time, sim.step, sim.config, Array(grid), counter.value)
            sim.positions = []
            sim.time = 0
            sim.step = 0
            sim.config = .init(name: "other", dt: 1)
            grid.update(repeating: -1)
            counter.value = 0

            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            try register(checkpointer)
            #expect(try checkpointer.restoreLatest() == 12)
            #expect(sim.positions == expected.0)
            #expect(sim.time == expected.1)
            #expect(sim.step == expected.2)
            #expect(sim.config == expected.3)
            #expect(Array(grid) == expected.4)
            #expect(counter.value == expected.5)

            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 12)
            #expect(try reader.info("grid").shape == [10, 100])
            #expect(try reader.info("config").isEncoded)
            #expect(try reader.info("time").isEncoded == false)
        }
    }

    @Test("A failed restore leaves every registered value untouched")
    func failedRestoreTouchesNothing() throws {
        try withTemporaryDirectory { directory in
            let sim = LegacySimulation()
            sim.positions = [SIMD3(1, 2, 3)]
            sim.time = 1
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
                try checkpointer.registry.register("positions", sim, \.positions)
                try checkpointer.registry.register("time", sim, \.time)
                try checkpointer.save(step: 1)
            }
            sim.positions = [SIMD3(9, 9, 9)]
            sim.time = 9
            let small = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2)
            defer { small.deallocate() }
            small.initialize(repeating: 7)

            // "positions" restores fine, but "extra" is missing: nothing may change.
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            try checkpointer.registry.register("positions", sim, \.positions)
            try checkpointer.registry.register("time", sim, \.time)
            try checkpointer.registry.register("extra", buffer: small)
            let error = try #require(throws: CheckpointError.self) { try checkpointer.restoreLatest() }
            #expect(error.code == .entryMissing)
            #expect(sim.positions == [SIMD3(9, 9, 9)])
            #expect(sim.time == 9)
            #expect(Array(small) == [7, 7])
        }
    }

    @Test("Names are validated and must be unique")
    func names() throws {
        let registry = StateRegistry()
        let sim = LegacySimulation()
        try registry.register("a/b", sim, \.time)
        for bad in [
            "", "../etc", "a//b", "/abs", "a/", ".", "a/../b", "sp ace", "tab\t", "ü",
            String(repeating: "x", count: 256),
        ] {
            let error = try #require(throws: CheckpointError.self, "\(bad)") { try registry.register(bad, sim, \.step) }
            #expect(error.code == .invalidName)
        }
        #expect(throws: CheckpointError.self) { try registry.register("a/b", sim, \.step) }
        #expect(throws: CheckpointError.self) { try registry.register("a", sim, \.step) }
        #expect(throws: CheckpointError.self) { try registry.register("a/b/c", sim, \.step) }
        try registry.register(String(repeating: "x", count: 255), sim, \.step)
        #expect(registry.unregister("a/b"))
        #expect(!registry.unregister("a/b"))

        var writer = SnapshotWriter()
        try writer.write([1.0], as: "x")
        let duplicate = try #require(throws: CheckpointError.self) { try writer.write([Float(1)], as: "x") }
        #expect(duplicate.code == .duplicateName)
        let shape = try #require(throws: CheckpointError.self) {
            try writer.write([1.0, 2.0, 3.0], as: "y", shape: [2, 2])
        }
        #expect(shape.code == .shapeMismatch)
    }
}

final class Counter: @unchecked Sendable {
    var value = 0
}

@Suite("Schema errors")
struct SchemaErrorTests {
    struct FloatState: Checkpointable {
        var values: [Float]
        func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "values") }
        init(values: [Float]) { self.values = values }
        init(from reader: SnapshotReader) throws { values = try reader.read([Float].self, "values") }
    }

    @Test("Saved Float restored into Double, wrong count, missing entry, raw vs Codable")
    func mismatches() throws {
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(
                FloatState(values: [1, 2, 3]),
                step: 1
            )
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1)

            let type = try #require(throws: CheckpointError.self) { try reader.read([Double].self, "values") }
            #expect(type.code == .typeMismatch)
            #expect(type.message.contains("Float") && type.message.contains("Double"))

            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 0)
            let shape = try #require(throws: CheckpointError.self) { try reader.read(into: buffer, "values") }
            #expect(shape.code == .shapeMismatch)
            #expect(Array(buffer) == [0, 0, 0, 0])

            let missing = try #require(throws: CheckpointError.self) { try reader.read([Float].self, "absent") }
            #expect(missing.code == .entryMissing)
            #expect(missing.message.contains("values"))

            let codable = try #require(throws: CheckpointError.self) { try reader.decode([Float].self, "values") }
            #expect(codable.code == .typeMismatch)

            // The schema error is not corruption: restore reports it instead of falling back.
            let restore = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory).restoreLatest(ArrayState<Double>.self)
            }
            #expect(restore.code == .typeMismatch)

            #expect(try reader.read([Float].self, "values") == [1, 2, 3])
            // Int and Int64 share a representation and interchange.
            #expect(ElementType.of(Int.self).isCompatible(with: .of(Int64.self)))
            #expect(!ElementType.of(Int32.self).isCompatible(with: .of(UInt32.self)))
        }
    }

    @Test("A Codable entry that does not decode as the requested type")
    func decodingFailure() throws {
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(["a": 1], step: 1)
            let error = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory).restoreLatest([Double].self)
            }
            #expect(error.code == .decodingFailed)
        }
    }
}

@Suite("Policy")
struct PolicyTests {
    @Test("Step, time and combined rules")
    func rules() {
        #expect(CheckpointPolicy.everySteps(10).isDue(step: 20, secondsSinceLast: 0))
        #expect(!CheckpointPolicy.everySteps(10).isDue(step: 21, secondsSinceLast: 1e9))
        #expect(CheckpointPolicy.every(seconds: 5).isDue(step: 1, secondsSinceLast: 5))
        #expect(!CheckpointPolicy.every(seconds: 5).isDue(step: 1, secondsSinceLast: 4.9))
        let combined = CheckpointPolicy.any(.everySteps(100), .every(seconds: 60))
        #expect(combined.isDue(step: 100, secondsSinceLast: 0))
        #expect(combined.isDue(step: 7, secondsSinceLast: 61))
        #expect(!combined.isDue(step: 7, secondsSinceLast: 1))
        #expect(!CheckpointPolicy.never.isDue(step: 100, secondsSinceLast: 1e9))
        #expect(combined.description == "any(everySteps(100), every(60.0s))")
    }

    @Test("checkpoint(_:step:) saves only when due")
    func safePoints() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.policy = .everySteps(3)
            configuration.retention.keepLast = 10
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            var taken: [Step] = []
            for step in 1...10 where try checkpointer.checkpoint(ArrayState([Double(step)]), step: Step(step)) != nil {
                taken.append(Step(step))
            }
            #expect(taken == [3, 6, 9])
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [3, 6, 9])
        }
    }
}
