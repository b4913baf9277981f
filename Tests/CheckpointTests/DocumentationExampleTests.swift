import Checkpoint
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// The Swift code samples of README.md and Documentation/*.md, verbatim inside minimal surroundings, so they keep
// compiling and, where it is cheap, working. Each sample is marked with the document it comes from. Package.swift
// fragments (GettingStarted.md, MPI.md) are not Swift a test can compile and are left out.

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
}

extension Heat {
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

// Troubleshooting.md: state that tolerates checkpoints written before a change.
private struct Parameters: Codable {
    var viscosity: Double
    var tolerance = 1e-6  // added after the first checkpoints were written

    init(viscosity: Double) { self.viscosity = viscosity }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        viscosity = try container.decode(Double.self, forKey: .viscosity)
        tolerance = try container.decodeIfPresent(Double.self, forKey: .tolerance) ?? 1e-6
    }
}

private struct Field: Checkpointable {
    var values: [Double]
    var sources: [Double]  // added later

    init(values: [Double], sources: [Double]) {
        self.values = values
        self.sources = sources
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(values, as: "values")
        try writer.write(sources, as: "sources")
    }

    init(from reader: SnapshotReader) throws {
        values = try reader.read([Double].self, "values")
        sources = try reader.contains("sources") ? reader.read([Double].self, "sources") : []
    }
}

/// `Field` as it was before `sources` was added, to write the old checkpoints.
private struct OldField: Checkpointable {
    var values: [Double]
    init(values: [Double]) { self.values = values }
    func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "values") }
    init(from reader: SnapshotReader) throws { values = try reader.read([Double].self, "values") }
}

/// `Parameters` as it was before `tolerance` was added.
private struct OldParameters: Codable { var viscosity: Double }

/// MPI.md's samples, in a namespace of their own so that their `RankState` does not meet the tests' one.
private enum MPISamples {
    /// The rank-local state the samples restore and advance.
    struct RankState: Codable {
        var rank: Int
        var values = [Double](repeating: 1, count: 8)
        mutating func advance(exchangingHalosWith communicator: any Communicator) { values[0] += Double(rank) }
    }

    /// A stand-in with the signatures of `CheckpointMPI.MPICommunicator`, which this test target cannot import (it is
    /// empty without the MPI trait), so that the Checkpoint side of the samples is compiled and run here. The real
    /// type is exercised by `mpi-selftest` under `mpirun` (`Scripts/test-mpi`).
    final class MPICommunicator: Communicator {
        private let base = SingleProcessCommunicator()
        var rank: Int { base.rank }
        var size: Int { base.size }
        var transportName: String { "stand-in for MPI" }
        static func world() throws -> MPICommunicator { MPICommunicator() }
        static func finalize() throws {}
        init() {}
        convenience init(fortranHandle: Int32) throws { self.init() }
        func barrier() throws { base.barrier() }
        func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] { base.broadcast(bytes, root: root) }
        func allreduce(_ values: [Int64], _ operation: ReductionOperation) throws -> [Int64] {
            base.allreduce(values, operation)
        }
        func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? { base.gather(bytes, root: root) }
        func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
            try base.send(bytes, to: destination, tag: tag)
        }
        func receive(from source: Int, tag: Int) throws -> [UInt8] { try base.receive(from: source, tag: tag) }
        func duplicate() throws -> any Communicator { base.duplicate() }
    }

    /// "The program leaves MPI to the library" (the directory is a parameter instead of `/shared/run-42/checkpoints`).
    static func libraryOwnsMPI(directory: String) throws -> Step {
        let communicator = try MPICommunicator.world()
        let checkpointer = try Checkpointer(directory: directory, communicator: communicator)
        var (state, step) = try checkpointer.restoreLatest(or: RankState(rank: communicator.rank))
        while step < 10_000 {
            state.advance(exchangingHalosWith: communicator)
            step += 1
            try checkpointer.checkpoint(state, step: step)
        }
        return step
    }

    /// "The program leaves MPI to the library", as written (compiled, not run: it checkpoints under /shared).
    static func libraryOwnsMPIAsWritten() throws {
        let communicator = try MPICommunicator.world()
        let checkpointer = try Checkpointer(directory: "/shared/run-42/checkpoints", communicator: communicator)
        var (state, step) = try checkpointer.restoreLatest(or: RankState(rank: communicator.rank))
        while step < 10_000 {
            state.advance(exchangingHalosWith: communicator)
            step += 1
            try checkpointer.checkpoint(state, step: step)
        }
    }

    /// "The program already uses MPI".
    static func programOwnsMPI(directory: String, handle: Int32) throws -> Step? {
        let communicator = try MPICommunicator(fortranHandle: handle)
        let checkpointer = try Checkpointer(directory: directory, communicator: communicator)
        // …
        try MPICommunicator.finalize()  // completes the library's buffered sends; then the program calls MPI_Finalize
        return try checkpointer.restoreLatest()
    }
}

/// Docs.docc/SeveralRanks.md: a block of a ring of ranks, whose halo exchange goes through the communicator.
private struct Block: Codable {
    var rank: Int
    var values = [Double](repeating: 0, count: 16)

    init(rank: Int) {
        self.rank = rank
        values[0] = Double(rank)
    }

    mutating func advance(exchangingHalosWith communicator: any Communicator) throws {
        let right = (rank + 1) % communicator.size
        let left = (rank + communicator.size - 1) % communicator.size
        let outgoing = withUnsafeBytes(of: values[values.count - 1]) { Array($0) }
        let incoming = try communicator.exchange(send: outgoing, to: right, receiveFrom: left, tag: 7) ?? outgoing
        let halo = incoming.withUnsafeBytes { $0.loadUnaligned(as: Double.self) }
        var next = values
        for index in values.indices {
            let previous: Double = index == 0 ? halo : values[index - 1]
            next[index] = 0.5 * (values[index] + previous)
        }
        values = next
    }

    var sum: Double { values.reduce(0, +) }
}

/// Docs.docc/ProcessDumping.md: a connection to quiesce around dumps.
private final class Telemetry: Sendable {
    let connected = Mutex(true)
    func connect() { connected.withLock { $0 = true } }
    func disconnect() { connected.withLock { $0 = false } }
}

/// Docs.docc/AsynchronousCheckpoints.md and ProcessDumping.md: samples that are compiled, not run (they would install
/// signal handlers in the test process, or need CRIU).
private enum CompiledOnly {
    static func stopping() throws {
        var configuration = Checkpointer.Configuration()
        configuration.policy = .everySteps(100)  // steps 100, 200, … also after a restart
        configuration.policy = .every(seconds: 600)  // wall-clock interval
        configuration.policy = CheckpointPolicy.any(.youngDaly(mtbf: 86_400), .every(seconds: 3_600))
            .limitingOverhead(toPercent: 5)  // never more than 5 % of the run time

        configuration.mode = .asynchronous(stagingLimit: 1 << 30, whenBusy: .wait)

        configuration.stopSignals = StopSignals(signals: [SIGTERM, SIGUSR1], gracePeriod: 110)
        configuration.deadline = .after(seconds: 3.5 * 3_600)

        let checkpointer = try Checkpointer(directory: "checkpoints", configuration: configuration)
        var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
        while step < 100_000 && !checkpointer.shouldStop {
            sim.advance()
            step += 1
            try checkpointer.checkpoint(sim, step: step)
        }
        try checkpointer.finish()
    }

    // Documentation/Redundancy.md
    func makeCheckpointer(communicator: any Communicator) throws -> Checkpointer {
        var configuration = Checkpointer.Configuration(policy: .youngDaly(mtbf: 6 * 3_600))
        configuration.redundancy = .init(
            localDirectory: ProcessInfo.processInfo.environment["SLURM_TMPDIR"] ?? "/tmp/ckpt-local-\(NSUserName())",
            partnerCopy: true,  // the default
            flushEvery: 10  // every 10th checkpoint also goes to the shared directory (the default)
        )
        return try Checkpointer(
            directory: "/lustre/project/run-42/checkpoints",  // the shared directory
            communicator: communicator,  // e.g. try MPICommunicator.world()
            configuration: configuration
        )
    }

    static func dumps() throws {
        var configuration = Checkpointer.Configuration()
        configuration.processDumps = ProcessDumps(dumper: CRIUDumper(), everyNthCheckpoint: 10)
        let checkpointer = try Checkpointer(directory: "checkpoints", configuration: configuration)
        _ = checkpointer
    }
}

/// Troubleshooting.md: carrying on after a failed checkpoint (at file scope, so the sample keeps its line length).
private func carryOn(_ checkpointer: Checkpointer, _ sim: Simulation, step: Step) throws {
    do {
        try checkpointer.checkpoint(sim, step: step)
    } catch let error as CheckpointError {
        switch error.code {
        case .diskFull, .permissionDenied, .ioFailure:
            print("checkpoint of step \(step) failed, continuing: \(error)")  // older checkpoints are intact
        default:
            throw error
        }
    }
}

// Documentation/ProcessDumpers.md
private final class TelemetryLink: Sendable {
    private let socket = Mutex<Int32?>(nil)

    func connect() { /* open the socket, store it */  }
    func flushAndClose() throws { /* flush, close; throw if a send is still in flight */  }
}

@Suite("Documentation examples")
struct DocumentationExampleTests {
    @Test("ProcessDumpers.md: configuration, participant hooks, command dumpers")
    func processDumpersGuide() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.policy = .everySteps(100)
            configuration.processDumps = ProcessDumps(dumper: CRIUDumper(), everyNthCheckpoint: 10)
            let checkpointer = try Checkpointer(directory: directory + "/run/checkpoints", configuration: configuration)

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
            #expect(checkpointer.dumpParticipants.names == ["telemetry"])

            // A site's snapshot tool:
            let site = CommandDumper(arguments: ["/opt/site/bin/snapshot", "--pid", "{pid}", "--to", "{dir}"])
            // A core file of the running process, for post-mortem debugging (gdb's gcore; not restartable):
            let core = CommandDumper(arguments: ["gcore", "-o", "{dir}/core", "{pid}"])
            // DMTCP, asked once for the whole computation (the script exits 0 at once unless $1 is 0):
            let once = CommandDumper(arguments: ["/opt/site/bin/dmtcp-once", "{rank}"])
            #expect([site, core, once].allSatisfy { $0.name == "command" })
        }
    }

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

    @Test("Concepts.md: a safe point, retention and asynchronous mode")
    func concepts() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.policy = .everySteps(25)
            configuration.retention = .init(keepLast: 3, keepEvery: 10_000)
            configuration.mode = .asynchronous()
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
            let steps: Step = 100
            while step < steps {
                sim.advance()
                step += 1
                try checkpointer.checkpoint(sim, step: step)  // a safe point
            }
            try checkpointer.finish()
            #expect(try checkpointer.checkpoints().map(\.step) == [50, 75, 100])
        }
    }

    @Test("Scheduling.md: policies, modes, stop signals, the stopping loop and deadlines")
    func scheduling() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            // Young/Daly for a 24-hour MTBF, but at least hourly, and never more than 5 % of the run:
            configuration.policy = CheckpointPolicy.any(.youngDaly(mtbf: 86_400), .every(seconds: 3_600))
                .limitingOverhead(toPercent: 5)

            configuration.mode = .synchronous  // default
            configuration.mode = .asynchronous(stagingLimit: 2 << 30, whenBusy: .wait)

            configuration.stopSignals = StopSignals(signals: [SIGTERM, SIGUSR1], gracePeriod: 110)

            let endOfReservation = Date().addingTimeInterval(3_600)
            configuration.deadline = .at(endOfReservation)  // or .after(seconds: 3.5 * 3_600)
            try configuration.validate()

            // A checkpointer with stopSignals would install signal handlers in the test process; run the loop without.
            configuration.stopSignals = nil
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
            let steps: Step = 20
            while step < steps && !checkpointer.shouldStop {
                sim.advance(); step += 1
                try checkpointer.checkpoint(sim, step: step)
            }
            try checkpointer.finish()
            #expect(step == 20)
            // Young/Daly takes the first safe point to measure the cost.
            #expect(checkpointer.lastCheckpointStep != nil)

            // What the policy decides after that depends on time only: given as values here, so
            // that the outcome does not depend on how fast the machine runs the loop above. With
            // a measured cost of 0.5 s, Young/Daly's interval is √(2 · 0.5 · 86,400) ≈ 294 s.
            let policy = configuration.policy
            func context(sinceLast: Double, run: Double, blocked: Double) -> PolicyContext {
                PolicyContext(
                    step: 2,
                    secondsSinceLast: sinceLast,
                    checkpointCost: 0.5,
                    runSeconds: run,
                    checkpointSeconds: blocked
                )
            }
            #expect(!policy.isDue(context(sinceLast: 60, run: 600, blocked: 1)), "within the interval")
            #expect(policy.isDue(context(sinceLast: 300, run: 600, blocked: 1)), "past Young/Daly's interval")
            #expect(
                !policy.isDue(context(sinceLast: 3_600, run: 3_700, blocked: 190)),
                "even the hourly rule waits while checkpoints took more than 5 % of the run"
            )
        }
    }

    @Test("FileFormat.md: the walkthrough's entries")
    func fileFormatWalkthrough() throws {
        var writer = SnapshotWriter()
        try writer.write([Int16(1), 2, 3, 4], as: "v")  // [Int16], shuffled with width 2
        try writer.write(value: Int32(258), as: "n/x")  // a single value, shape []
        try writer.encode(["a": 1], as: "cfg")  // Codable -> JSON
        #expect(writer.entryNames == ["v", "n/x", "cfg"])
    }

    @Test("MPI.md: the Checkpoint side of the MPI samples, on a stand-in communicator")
    func mpi() throws {
        try withTemporaryDirectory { directory in
            let reached = try MPISamples.libraryOwnsMPI(directory: directory + "/world")
            #expect(reached == 10_000)
            #expect(try MPISamples.programOwnsMPI(directory: directory + "/handle", handle: 0) == nil)
        }
    }

    @Test("Troubleshooting.md: carrying on after a failed checkpoint")
    func troubleshootingCarryOn() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.policy = .always
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            let sim = Simulation()
            let step: Step = 3
            // Make the next commit fail with permissionDenied: the checkpoint directory becomes read-only.
            chmod(directory, 0o500)
            defer { chmod(directory, 0o700) }
            let writable = access(directory + "/.", W_OK) == 0  // root ignores mode bits
            try carryOn(checkpointer, sim, step: step)
            chmod(directory, 0o700)
            #expect(try checkpointer.checkpoints().map(\.step) == (writable ? [3] : []))
        }
    }

    @Test("Troubleshooting.md: state that tolerates older checkpoints, and a longer LocalGroup timeout")
    func troubleshootingEvolution() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory + "/field")
            try checkpointer.save(OldField(values: [1, 2]), step: 1)
            let field = try #require(try checkpointer.restoreLatest(Field.self)).state
            #expect(field.values == [1, 2] && field.sources.isEmpty)
            try checkpointer.save(Field(values: [3], sources: [4]), step: 2)
            #expect(try checkpointer.restoreLatest(Field.self)?.state.sources == [4])

            let old = try JSONEncoder().encode(OldParameters(viscosity: 0.25))
            let parameters = try JSONDecoder().decode(Parameters.self, from: old)
            #expect(parameters.viscosity == 0.25 && parameters.tolerance == 1e-6)
            #expect(
                try JSONDecoder().decode(Parameters.self, from: JSONEncoder().encode(Parameters(viscosity: 2)))
                    .viscosity == 2
            )

            let results = try LocalGroup.run(ranks: 4, timeout: 1_800) { communicator in
                let checkpointer = try Checkpointer(directory: directory, communicator: communicator)
                return try checkpointer.restoreLatest()?.rawValue ?? 0
            }
            #expect(results == [0, 0, 0, 0])
        }
    }

    @Test("Migration.md: restoreLatest(or:) takes an initial state whose init throws, and rethrows its error")
    func migrationThrowingInitialState() throws {
        try withTemporaryDirectory { directory in
            let steps = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let (rank, size) = (communicator.rank, communicator.size)
                for _ in 0..<2 {
                    let checkpointer = try Checkpointer(directory: directory, communicator: communicator)
                    var (block, step) = try checkpointer.restoreLatest(
                        or: MigrationSamples.Block(shape: [9, 4], rank: rank, of: size)
                    )
                    #expect(block.cells.count == 12)
                    while step < 5 {
                        try block.advance(communicator); step += 1; try checkpointer.save(block, step: step)
                    }
                }
                return try Checkpointer(directory: directory, communicator: communicator).restoreLatest(
                    MigrationSamples.Block.self
                )?.step
            }
            #expect(steps == [5, 5, 5])
            let empty = try Checkpointer(directory: directory + "/empty")
            let error = try #require(throws: CheckpointError.self) {
                try empty.restoreLatest(or: MigrationSamples.Block(shape: [4], rank: 2, of: 2))
            }
            #expect(error.code == .invalidLayout, "\(error)")
        }
    }

    @Test("Docs.docc/SeveralRanks.md: ranks as threads")
    func doccRanks() throws {
        try withTemporaryDirectory { directory in
            let sums = try LocalGroup.run(ranks: 4, timeout: 120) { communicator in
                let checkpointer = try Checkpointer(directory: directory, communicator: communicator)
                var (block, step) = try checkpointer.restoreLatest(or: Block(rank: communicator.rank))
                while step < 1_000 {
                    try block.advance(exchangingHalosWith: communicator)
                    step += 1
                    try checkpointer.checkpoint(block, step: step)
                }
                try checkpointer.finish()
                return block.sum
            }
            #expect(sums.count == 4)
            #expect(abs(sums.reduce(0, +) - 6) < 1e-9, "averaging along the ring keeps the total: \(sums)")
        }
    }

    @Test("Docs.docc/ProcessDumping.md: a command dumper and participant hooks")
    func doccProcessDumps() throws {
        try withTemporaryDirectory { directory in
            let dumper = CommandDumper(arguments: ["/opt/site/bin/snapshot", "--pid", "{pid}", "--to", "{dir}"])
            #expect(dumper.probe().isUsable == FileManager.default.isExecutableFile(atPath: "/opt/site/bin/snapshot"))

            let checkpointer = try Checkpointer(directory: directory)
            let telemetry = Telemetry()
            checkpointer.dumpParticipants.register(
                "telemetry",
                DumpParticipants.Hooks(
                    willDump: { telemetry.disconnect() },  // throw to cancel this dump
                    didContinue: { telemetry.connect() },  // this process went on running
                    didRestore: { telemetry.connect() }  // this process is a restored copy
                )
            )
            #expect(checkpointer.dumpParticipants.names == ["telemetry"])
        }
    }
}
