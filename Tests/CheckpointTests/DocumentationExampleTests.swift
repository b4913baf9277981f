import Checkpoint
import Foundation
import Testing

// The code samples of README.md and Documentation/GettingStarted.md, verbatim, so they keep compiling and working.

private struct Simulation: Codable {
    var field = [Double](repeating: 0, count: 1_000)
    var time = 0.0
    mutating func advance() { time += 0.1 }
}

private struct Heat: Checkpointable {
    var temperature: [Double]
    var time: Double
    var parameters: [String: Double]

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(temperature, as: "temperature", shape: [100, temperature.count / 100])
        try writer.write(value: time, as: "time")
        try writer.encode(parameters, as: "parameters")
    }

    init(from reader: SnapshotReader) throws {
        temperature = try reader.read([Double].self, "temperature")
        time = try reader.read(Double.self, "time")
        parameters = try reader.decode([String: Double].self, "parameters")
    }

    init() {
        temperature = Array(repeating: 1, count: 1_000)
        time = 2
        parameters = ["alpha": 0.5]
    }
}

private final class Particles {
    var positions: [SIMD3<Double>] = []
    var step = 0
    var settings = Settings()
}

private struct Settings: Codable { var dt = 0.01 }

@Suite("Documentation examples")
struct DocumentationExampleTests {
    @Test("The three-line quick start runs and resumes")
    func quickStart() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/checkpoints"
            var configuration = Checkpointer.Configuration()
            configuration.policy = .everySteps(250)
            do {
                let checkpointer = try Checkpointer(directory: path, configuration: configuration)
                var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
                while step < 1_000 { sim.advance(); step += 1; try checkpointer.checkpoint(sim, step: step) }
                #expect(step == 1_000)
            }
            let checkpointer = try Checkpointer(directory: path, configuration: configuration)
            let (sim, step) = try checkpointer.restoreLatest(or: Simulation())
            #expect(step == 1_000)
            #expect(abs(sim.time - 100) < 1e-9)
        }
    }

    @Test("Getting started: raw path, registry and configuration")
    func gettingStarted() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory + "/a")
            try checkpointer.save(Heat(), step: 1)
            #expect(try checkpointer.restoreLatest(Heat.self)?.state.parameters == ["alpha": 0.5])

            let particles = Particles()
            let grid = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4_096)  // memory you own
            defer { grid.deallocate() }
            grid.initialize(repeating: 0)
            try checkpointer.registry.register("positions", particles, \.positions)  // raw
            try checkpointer.registry.register("step", particles, \.step)  // raw scalar
            try checkpointer.registry.register("settings", particles, \.settings)  // Codable
            try checkpointer.registry.register("grid", buffer: grid, shape: [64, 64])
            #expect(throws: CheckpointError.self) { try checkpointer.restoreLatest() }  // step 1 holds Heat, not these
            try checkpointer.save(step: 10)
            #expect(try checkpointer.restoreLatest() == 10)

            var configuration = Checkpointer.Configuration()
            configuration.policy = .any(.everySteps(1_000), .every(seconds: 3_600))
            configuration.retention = .init(keepLast: 3, keepEvery: 10_000)  // and every 10 000th step forever
            configuration.compression = .zstd(level: 1)  // or .none
            configuration.threads = 8  // default: all cores
            configuration.chunkSize = 4 << 20  // bytes per chunk
            configuration.metadata = ["run": "2026-11-24a"]
            let configured = try Checkpointer(directory: directory + "/run/checkpoints", configuration: configuration)
            #expect(try configured.save(Heat(), step: 1).metadata["run"] == "2026-11-24a")
        }
    }
}
