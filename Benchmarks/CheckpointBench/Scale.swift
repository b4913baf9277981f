@_spi(Testing) import Checkpoint
import Foundation
import Synchronization

/// How the cost of one checkpoint grows with the number of ranks: 1…256 in-process ranks (threads
/// of this process, 16 to a simulated node) saving blocks of one global field, and, when this
/// program was built with the MPI trait, 1…8 MPI processes.
///
/// Per rank count it reports the wall time per checkpoint, the time rank 0 spent in collectives
/// (coordination), the manifest's size and the time rank 0 took to build it, and the files, `fsync`s
/// and metadata operations (`open` for creating, `mkdir`, `rename`, `unlink`/`rmdir`) one
/// checkpoint made. The state is strong-scaled (the same global field over more ranks), so an ideal
/// implementation's time would stay flat apart from per-rank costs; the fit over 16…256 ranks is the
/// exponent `b` of `seconds ≈ a · ranks^b`, compared with `ranks · log2(ranks)`. Each in-process
/// rank count runs twice: one file per rank, and aggregated (one file per node).
struct ScaleScenario {
    var options: Options
    var work: String

    /// What one rank count measured.
    struct Sample: Codable {
        var ranks: Int
        var nodes: Int
        var secondsPerCheckpoint: Double
        var coordinationSeconds: Double
        var manifestBytes: Int
        var manifestSeconds: Double
        var files: Int
        /// `nil` when not counted (MPI processes: the counter sees only its own process).
        var fsyncs: Double?
        /// Creating opens, `mkdir`, `rename`, and tree removals (one per removed tree, whatever it
        /// held); `nil` when not counted.
        var metadataOperations: Double?
    }

    static let ranksPerNode = 16
    /// The global field, split across the ranks.
    static let globalBytes = 2 << 20

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let counts = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        let checkpoints = options.quick ? 3 : 6
        var samples: [Sample] = []
        var aggregated: [Sample] = []
        for ranks in counts {
            progress("scale: \(ranks) in-process ranks, \(checkpoints) checkpoints")
            let sample = try inProcess(ranks: ranks, checkpoints: checkpoints, aggregation: .off)
            samples.append(sample)
            rows.append(row(sample, launcher: "in-process"))
            let node = try inProcess(ranks: ranks, checkpoints: checkpoints, aggregation: .perNode)
            aggregated.append(node)
            rows.append(row(node, launcher: "in-process, aggregated"))
        }
        results["scale_in_process"] = samples.map(\.dictionary)
        results["scale_in_process_aggregated"] = aggregated.map(\.dictionary)
        results["seconds_per_checkpoint"] = Dictionary(
            uniqueKeysWithValues: samples.map { (String($0.ranks), $0.secondsPerCheckpoint) }
        )
        results["seconds_per_checkpoint_aggregated"] = Dictionary(
            uniqueKeysWithValues: aggregated.map { (String($0.ranks), $0.secondsPerCheckpoint) }
        )
        let fit = Self.fit(samples.filter { $0.ranks >= 16 })
        results["scale_fit"] = fit
        rows.append(
            Row(
                name: "growth 16 → 256 in-process ranks",
                value: fit["growth"] ?? 0,
                unit: "×",
                note: String(
                    format: "exponent %.2f; ranks·log2(ranks) grows %.0f×, linear 16×",
                    fit["exponent"] ?? 0,
                    fit["n_log_n_growth"] ?? 0
                )
            )
        )
        let mpi = try MPIScale(options: options, work: work, checkpoints: checkpoints).run()
        if let mpi {
            results["scale_mpi"] = mpi.map(\.dictionary)
            for sample in mpi { rows.append(row(sample, launcher: "MPI processes")) }
        } else {
            results["scale_mpi"] = "not built with the MPI trait (swift build -c release --traits MPI)"
        }
    }

    private func row(_ sample: Sample, launcher: String) -> Row {
        var note = String(
            format: "coordination %.1f ms, manifest %d B built in %.2f ms, %d files",
            sample.coordinationSeconds * 1e3,
            sample.manifestBytes,
            sample.manifestSeconds * 1e3,
            sample.files
        )
        if let fsyncs = sample.fsyncs, let metadata = sample.metadataOperations {
            note += String(format: ", %.0f fsyncs, %.0f metadata ops", fsyncs, metadata)
        }
        return Row(
            name: "checkpoint, \(sample.ranks) \(launcher)",
            value: sample.secondsPerCheckpoint * 1e3,
            unit: "ms",
            note: note
        )
    }

    /// One rank count, in this process.
    private func inProcess(
        ranks: Int,
        checkpoints: Int,
        aggregation: Checkpointer.Configuration.Aggregation
    ) throws -> Sample {
        let directory = work + "/scale-\(ranks)" + (aggregation == .off ? "" : "-aggregated")
        let nodes = (0..<ranks).map { "n\($0 / Self.ranksPerNode)" }
        let measured = try LocalGroup.run(ranks: ranks, timeout: 900, nodes: nodes) { communicator in
            try Self.measure(
                communicator: communicator,
                directory: directory,
                checkpoints: checkpoints,
                countsOperations: true,
                aggregation: aggregation
            )
        }
        return try Self.sample(measured[0], ranks: ranks, nodes: Set(nodes).count, directory: directory)
    }

    /// What rank 0 measured, and the operations counted while it did.
    struct Measured: Sendable, Codable {
        var seconds: Double
        var coordination: Double
        var fsyncs: Double?
        var metadataOperations: Double?
    }

    /// Saves `checkpoints` checkpoints of this rank's block (after one untimed) and returns the
    /// wall time per checkpoint, rank 0's time in collectives, and (in-process) the storage calls.
    static func measure(
        communicator base: any Communicator,
        directory: String,
        checkpoints: Int,
        countsOperations: Bool,
        aggregation: Checkpointer.Configuration.Aggregation = .off
    ) throws -> Measured {
        let communicator = TimedCommunicator(base)
        var configuration = Checkpointer.Configuration(policy: .never, threads: 1)
        configuration.aggregation = aggregation
        configuration.retention.keepLast = 2
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: configuration,
            logger: quietLogger
        )
        let count = max(1, globalBytes / 8 / communicator.size)
        let state = Field(values: smoothField(count).map { $0 + Double(communicator.rank) })
        _ = try checkpointer.save(state, step: 0)
        try communicator.barrier()
        if countsOperations && communicator.rank == 0 {
            StorageFaults.install(
                [.sync, .syncDirectory, .makeDirectory, .rename, .remove, .open].map { StorageFault($0, errno: 0) }
            )
        }
        try communicator.barrier()
        communicator.reset()
        let start = DispatchTime.now().uptimeNanoseconds
        for step in 1...checkpoints { _ = try checkpointer.save(state, step: Step(step)) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(checkpoints)
        let coordination = communicator.seconds / Double(checkpoints)
        try communicator.barrier()
        var fsyncs: Double?
        var metadata: Double?
        if countsOperations && communicator.rank == 0 {
            let calls = StorageFaults.matchedCalls.map { Double($0) / Double(checkpoints) }
            StorageFaults.removeAll()
            fsyncs = calls[0] + calls[1]
            metadata = calls[2] + calls[3] + calls[4] + calls[5]
        }
        try checkpointer.finish()
        return Measured(seconds: seconds, coordination: coordination, fsyncs: fsyncs, metadataOperations: metadata)
    }

    /// The sample of a finished run: rank 0's figures and what the newest checkpoint holds.
    static func sample(_ measured: Measured, ranks: Int, nodes: Int, directory: String) throws -> Sample {
        let newest = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("ckpt-") }.sorted().last
        guard let newest else { throw Failure("scale: no checkpoint in \(directory)") }
        let folder = directory + "/" + newest
        let manifestData = try Data(contentsOf: URL(fileURLWithPath: folder + "/manifest.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: manifestData)
        var files = 0
        if let walker = FileManager.default.enumerator(atPath: folder) {
            while let name = walker.nextObject() as? String {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                {
                    files += 1
                }
            }
        }
        return Sample(
            ranks: ranks,
            nodes: nodes,
            secondsPerCheckpoint: measured.seconds,
            coordinationSeconds: measured.coordination,
            manifestBytes: manifestData.count,
            manifestSeconds: manifest.timings.manifestSeconds ?? 0,
            files: files,
            fsyncs: measured.fsyncs,
            metadataOperations: measured.metadataOperations
        )
    }

    /// The least-squares exponent of `seconds ≈ a · ranks^b` and the growth over the samples'
    /// range, beside what `ranks · log2(ranks)` and a linear cost would grow by.
    static func fit(_ samples: [Sample]) -> [String: Double] {
        guard let first = samples.first, let last = samples.last, samples.count >= 2 else { return [:] }
        let xs = samples.map { log(Double($0.ranks)) }
        let ys = samples.map { log($0.secondsPerCheckpoint) }
        let meanX = xs.reduce(0, +) / Double(xs.count)
        let meanY = ys.reduce(0, +) / Double(ys.count)
        let covariance = zip(xs, ys).reduce(0) { $0 + ($1.0 - meanX) * ($1.1 - meanY) }
        let variance = xs.reduce(0) { $0 + ($1 - meanX) * ($1 - meanX) }
        func nLogN(_ ranks: Int) -> Double { Double(ranks) * log2(Double(ranks)) }
        let growth = last.secondsPerCheckpoint / first.secondsPerCheckpoint
        let bound = nLogN(last.ranks) / nLogN(first.ranks)
        return [
            "from_ranks": Double(first.ranks), "to_ranks": Double(last.ranks),
            "exponent": covariance / variance, "growth": growth, "n_log_n_growth": bound,
            "linear_growth": Double(last.ranks) / Double(first.ranks),
            "within_n_log_n": growth <= bound ? 1 : 0,
        ]
    }
}

extension ScaleScenario.Sample {
    var dictionary: [String: Any] {
        var dictionary: [String: Any] = [
            "ranks": ranks, "nodes": nodes, "seconds_per_checkpoint": secondsPerCheckpoint,
            "coordination_seconds": coordinationSeconds, "manifest_bytes": manifestBytes,
            "manifest_seconds": manifestSeconds, "files": files,
        ]
        if let fsyncs { dictionary["fsyncs"] = fsyncs }
        if let metadataOperations { dictionary["metadata_operations"] = metadataOperations }
        return dictionary
    }
}

/// A communicator that adds up the time spent in its calls (collectives and point to point).
final class TimedCommunicator: Communicator {
    private let base: any Communicator
    private let total = Mutex<UInt64>(0)

    init(_ base: any Communicator) { self.base = base }

    /// Seconds spent in calls since the last ``reset()``.
    var seconds: Double { Double(total.withLock { $0 }) / 1e9 }

    func reset() { total.withLock { $0 = 0 } }

    private func timed<Value>(_ body: () throws -> Value) rethrows -> Value {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { total.withLock { $0 += DispatchTime.now().uptimeNanoseconds - start } }
        return try body()
    }

    var rank: Int { base.rank }
    var size: Int { base.size }
    var transportName: String { base.transportName }
    var ranksShareProcess: Bool { base.ranksShareProcess }
    var nodeName: String { base.nodeName }
    func barrier() throws { try timed { try base.barrier() } }
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try timed { try base.broadcast(bytes, root: root) }
    }
    func broadcastValue<Value: Codable & Sendable>(_ value: Value?, root: Int) throws -> Value {
        try timed { try base.broadcastValue(value, root: root) }
    }
    func allreduce(_ values: [Int64], _ operation: ReductionOperation) throws -> [Int64] {
        try timed { try base.allreduce(values, operation) }
    }
    func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? { try timed { try base.gather(bytes, root: root) } }
    func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
        try timed { try base.send(bytes, to: destination, tag: tag) }
    }
    func receive(from source: Int, tag: Int) throws -> [UInt8] {
        try timed { try base.receive(from: source, tag: tag) }
    }
    func duplicate() throws -> any Communicator { TimedCommunicator(try base.duplicate()) }
}
