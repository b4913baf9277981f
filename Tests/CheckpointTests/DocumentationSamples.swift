import Checkpoint
import Foundation
import Logging
import Synchronization

// The Swift samples of README.md, Documentation/*.md and Docs.docc that DocumentationExampleTests.swift does not run,
// as written inside the least surroundings that give them the names they use. They are compiled, not run (most use
// relative or site paths); DocumentationSampleCoverageTests checks that every sample is here or in
// DocumentationExampleTests.swift. Each namespace holds one document's samples, so their types do not meet.

/// README.md and Docs.docc (Checkpoint.md, GettingStarted.md): the three lines, and several ranks.
enum ReadmeSamples {
    struct Simulation: Codable {
        var time = 0.0
        mutating func advance() { time += 0.1 }
    }

    static func threeLines() throws {
        let checkpointer = try Checkpointer(directory: "checkpoints")
        var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
        while step < 1_000 { sim.advance(); step += 1; try checkpointer.checkpoint(sim, step: step) }
    }

    static func severalRanks() throws -> [[Double]] {

        let totals = try LocalGroup.run(ranks: 4) { communicator in
            var logger = Logger(label: "ring")
            logger.logLevel = .notice  // .info adds every commit; a fallback is one warning per job, from rank 0
            let checkpointer = try Checkpointer(directory: "checkpoints", communicator: communicator, logger: logger)
            let (rank, size) = (communicator.rank, communicator.size)
            let (left, right) = ((rank + size - 1) % size, (rank + 1) % size)
            var (field, step) = try checkpointer.restoreLatest(or: [Double](repeating: Double(rank), count: 64))
            while step < 100 {
                // Typed messages: a [Double] travels as its raw bytes, with no conversion by hand.
                let halo = try communicator.exchange(send: [field[63]], to: right, receiveFrom: left, tag: 1) ?? []
                field = zip(halo + field.dropLast(), field).map { ($0 + $1) / 2 }
                step += 1
                try checkpointer.checkpoint(field, step: step)
            }
            return try communicator.allgather(value: field.reduce(0, +))  // every rank's sum, a [Double]
        }
        return totals
    }
}

/// Documentation/GettingStarted.md.
enum GuideSamples {
    static func firstProgram() throws {

        struct Simulation: Codable {
            var field = [Double](repeating: 0, count: 1_000)
            var time = 0.0
            mutating func advance() { time += 0.1 }
        }

        let checkpointer = try Checkpointer(directory: "checkpoints")
        var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
        while step < 1_000 { sim.advance(); step += 1; try checkpointer.checkpoint(sim, step: step) }
    }

    static func registry(checkpointer: Checkpointer) throws {
        final class Particles {
            var positions: [SIMD3<Double>] = []
            var step = 0
            var settings = Settings()
        }
        struct Settings: Codable { var dt = 0.01 }

        let particles = Particles()
        let grid = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4_096)  // memory you own
        grid.initialize(repeating: 0)
        try checkpointer.registry.register("positions", particles, \.positions)  // raw
        try checkpointer.registry.register("step", particles, \.step)  // raw scalar
        try checkpointer.registry.register("settings", particles, \.settings)  // Codable
        try checkpointer.registry.register("grid", buffer: grid, shape: [64, 64])

        if let restored = try checkpointer.restoreLatest() { print("resumed at \(restored)") }
        try checkpointer.save(step: 10)
    }

    static func configuration() throws {
        var configuration = Checkpointer.Configuration()
        configuration.policy = .any(.everySteps(1_000), .every(seconds: 3_600))
        configuration.retention = .init(keepLast: 3, keepEvery: 10_000)  // and every 10 000th step forever
        configuration.compression = .zstd(level: 1)  // or .none
        configuration.threads = 8  // default: all cores
        configuration.chunkSize = 4 << 20  // bytes per chunk
        configuration.metadata = ["run": "2026-11-24a"]
        let configured = try Checkpointer(directory: "run/checkpoints", configuration: configuration)
        _ = configured
    }
}

/// Documentation/Incremental.md.
enum IncrementalSamples {
    static func configuration() throws {
        var configuration = Checkpointer.Configuration()
        configuration.incremental = .on(fullEvery: 10)  // default: .off
        let checkpointer = try Checkpointer(directory: "run/checkpoints", configuration: configuration)
        _ = checkpointer
    }
}

/// Documentation/Security.md.
enum SecuritySamples {
    static func groupDirectory() throws {
        var configuration = Checkpointer.Configuration()
        configuration.directorySharing = .group  // the directory's group may write it; every member is trusted
        configuration.directoryPermissions = 0o770  // and the folders the checkpointer creates are group-writable
        let checkpointer = try Checkpointer(directory: "/project/run-42/checkpoints", configuration: configuration)
        _ = checkpointer
    }

    static func authentication() throws {
        var configuration = Checkpointer.Configuration()
        configuration.authentication = Authentication(signingKey: try .contentsOfFile("/home/me/.config/ckpt.key"))
        let checkpointer = try Checkpointer(directory: "/scratch/me/run-42", configuration: configuration)
        _ = checkpointer
    }

    static func lineage() throws {
        var configuration = Checkpointer.Configuration()
        configuration.lineage = try Lineage(runID: ProcessInfo.processInfo.environment["SLURM_JOB_ID"] ?? "local")
        _ = configuration
    }
}

/// Documentation/Migration.md: a block of a distributed array whose initial state throws.
enum MigrationSamples {
    struct Block: Checkpointable {
        var layout: BlockLayout
        var cells: [Double]
        var time: Double

        init(shape: [Int], rank: Int, of ranks: Int) throws {
            layout = try BlockLayout.partition(shape, part: rank, of: ranks)  // rows, near-equal
            cells = [Double](repeating: 0, count: layout.elementCount)
            time = 0
        }

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write(cells, as: "temperature", block: layout)  // distributed
            try writer.write(value: time, as: "time")  // replicated
        }

        init(from reader: SnapshotReader) throws {
            let shape = try reader.globalShape(of: "temperature")
            layout = try BlockLayout.partition(shape, part: reader.rank, of: reader.rankCount)
            cells = try reader.read([Double].self, "temperature", block: layout)
            time = try reader.read(Double.self, "time")
        }
    }

    final class Simulation {
        var counts: [Int32] = []
        var time = 0.0
    }

    static func registered(
        checkpointer: Checkpointer,
        grid: UnsafeMutableBufferPointer<Double>,
        sim: Simulation,
        ny: Int,
        nx: Int,
        rank: Int,
        ranks: Int
    ) throws {
        let layout = try BlockLayout.partition([ny, nx], part: rank, of: ranks)
        try checkpointer.registry.register("temperature", buffer: grid, block: layout)  // memory you own
        try checkpointer.registry.register("particles-per-cell", sim, \.counts, block: layout)  // an array property
        try checkpointer.registry.register("time", sim, \.time)  // replicated
        try checkpointer.restoreLatest()
    }

    static func ownedByAnotherRank(reader: SnapshotReader) throws -> Int64 {
        var offset: Int64 = 0
        offset = try reader.savedBy(rank: 3).read(Int64.self, "output-offset")
        return offset
    }

    static func wholeArray() throws -> [Double] {
        let reader = try CheckpointDirectory(path: "run").openSnapshot(step: 500, rank: 0, rankCount: 1)
        let shape = try reader.globalShape(of: "temperature")
        let field = try reader.read([Double].self, "temperature", block: .whole(shape))
        return field
    }
}

/// Migration.md's loop (at file scope, so that its one-line loop keeps within the line length).
private func migrationLoop(communicator: any Communicator, rank: Int, size: Int) throws {
    typealias Block = MigrationSamples.Block
    let checkpointer = try Checkpointer(directory: "run", communicator: communicator)
    var (block, step) = try checkpointer.restoreLatest(or: Block(shape: [4096, 4096], rank: rank, of: size))
    while step < 1_000 { try block.advance(communicator); step += 1; try checkpointer.checkpoint(block, step: step) }
}

extension MigrationSamples.Block {
    /// One step of the sample's loop.
    mutating func advance(_ communicator: any Communicator) throws { time += 1 }
}

/// Documentation/ProcessDumpers.md.
enum ProcessDumperSamples {
    static func configuration() throws {
        var configuration = Checkpointer.Configuration()
        configuration.policy = .everySteps(100)
        configuration.processDumps = ProcessDumps(dumper: CRIUDumper(), everyNthCheckpoint: 10)
        let checkpointer = try Checkpointer(directory: "run/checkpoints", configuration: configuration)
        _ = checkpointer
    }

    static func hooks(checkpointer: Checkpointer) {
        /// A connection to a telemetry collector, closed around process dumps.
        final class TelemetryLink: Sendable {
            private let socket = Mutex<Int32?>(nil)

            func connect() { /* open the socket, store it */  }
            func flushAndClose() throws { /* flush, close; throw if a send is still in flight */  }
        }

        let telemetry = TelemetryLink()
        telemetry.connect()
        checkpointer.dumpParticipants.register(
            "telemetry",
            DumpParticipants.Hooks(
                willDump: { try telemetry.flushAndClose() },  // throw to cancel this dump
                didContinue: { telemetry.connect() },  // the dump is done; this process goes on
                didRestore: { telemetry.connect() }  // this process is a copy restored from a dump
            )
        )
    }
}

/// Docs.docc/Redundancy.md.
enum RedundancySamples {
    static func configuration() -> Checkpointer.Configuration {
        var configuration = Checkpointer.Configuration()
        configuration.redundancy = .init(localDirectory: "/local/scratch/run-42", flushEvery: 10)
        return configuration
    }

    static func xorConfiguration() -> Checkpointer.Configuration {
        var configuration = Checkpointer.Configuration()
        configuration.redundancy = .init(localDirectory: "/local/scratch/run-42", xorSetSize: 8, flushEvery: 10)
        return configuration
    }
}

/// Documentation/Aggregation.md and Docs.docc/Aggregation.md.
enum AggregationSamples {
    static func configuration() -> Checkpointer.Configuration {
        var configuration = Checkpointer.Configuration()
        configuration.aggregation = .perNode
        return configuration
    }
}

/// Docs.docc/Repartitioning.md.
enum RepartitioningSamples {
    struct Block: Checkpointable {
        var layout: BlockLayout
        var cells: [Double]
        var time: Double

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write(cells, as: "temperature", block: layout)  // distributed
            try writer.write(value: time, as: "time")  // replicated
        }

        init(from reader: SnapshotReader) throws {
            let shape = try reader.globalShape(of: "temperature")
            layout = try BlockLayout.partition(shape, part: reader.rank, of: reader.rankCount)
            cells = try reader.read([Double].self, "temperature", block: layout)
            time = try reader.read(Double.self, "time")
        }
    }

    static func registered(
        checkpointer: Checkpointer,
        grid: UnsafeMutableBufferPointer<Double>,
        sim: MigrationSamples.Simulation,
        ny: Int,
        nx: Int,
        rank: Int,
        ranks: Int
    ) throws {
        let layout = try BlockLayout.partition([ny, nx], part: rank, of: ranks)
        try checkpointer.registry.register("temperature", buffer: grid, block: layout)
        try checkpointer.registry.register("time", sim, \.time)
    }
}

/// Docs.docc/Metrics.md.
enum MetricsSamples {
    static func labelled() -> Checkpointer.Configuration {
        var configuration = Checkpointer.Configuration()
        configuration.metrics = .init(labelPrefix: "sim", dimensions: [("job", "heat-2d")])
        return configuration
    }
}

/// Docs.docc/StructuredElements.md.
enum StructuredElementSamples {
    struct Particle: StructuredElement {
        var position: SIMD3<Float>
        var mass: Double
        var charge: Int32
        var corners: (Float, Float, Float, Float)

        static let fields: [ElementType.Field] = [
            .field("position", \Particle.position),
            .field("mass", \Particle.mass),
            .field("charge", \Particle.charge),
            .field("corners", \Particle.corners, of: Float.self),
        ]
    }

    struct Swarm: Checkpointable {
        var particles: [Particle]

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write(particles, as: "particles")
        }

        init(from reader: SnapshotReader) throws {
            particles = try reader.read([Particle].self, "particles")
        }
    }
}
