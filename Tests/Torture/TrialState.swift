import Checkpoint
import Foundation
import Logging

/// One rank's application state at one step of an in-process trial. Every value follows from
/// (seed, rank, step) alone, so a restored state can be compared with the one that was saved
/// without keeping it: a wrong restore cannot go unnoticed.
struct TrialState: Checkpointable, Equatable, Sendable {
    /// A smooth field with noise (compresses somewhat: zstd frames).
    var field: [Double]
    /// Random bits (do not compress: stored raw).
    var noise: [UInt64]
    /// Mostly zeros (compresses very well).
    var sparse: [Float]
    /// A `Codable` part.
    var label: Label

    struct Label: Codable, Equatable, Sendable {
        var rank: Int
        var step: UInt64
        var name: String
    }

    /// The state of `rank` at `step`; `size` scales the arrays (elements of the field).
    init(seed: UInt64, rank: Int, step: Step, size: Int) {
        var random = SplitMix64(seed: SplitMix64.derive(seed, [UInt64(rank), step.rawValue]))
        let phase = Double.random(in: 0..<6.28, using: &random)
        field = (0..<size).map { index in
            sin(Double(index) * 0.01 + phase) * 50 + Double.random(in: -0.001...0.001, using: &random)
        }
        noise = (0..<max(1, size / 4)).map { _ in random.next() }
        sparse = (0..<max(1, size / 2)).map { index in index % 97 == 0 ? Float(index) * 0.5 : 0 }
        label = Label(rank: rank, step: step.rawValue, name: "trial state of rank \(rank)")
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(field, as: "field")
        try writer.write(noise, as: "noise")
        try writer.write(sparse, as: "sparse")
        try writer.encode(label, as: "label")
    }

    init(from reader: SnapshotReader) throws {
        field = try reader.read([Double].self, "field")
        noise = try reader.read([UInt64].self, "noise")
        sparse = try reader.read([Float].self, "sparse")
        label = try reader.decode(Label.self, "label")
    }
}

/// Collects what a checkpointer logs, so a trial can check that a skipped checkpoint was reported.
final class LogCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var messages: [String] { lock.withLock { lines } }

    /// A logger that records warnings and worse here.
    func logger(label: String) -> Logger {
        var logger = Logger(label: label) { _ in Handler(collector: self) }
        logger.logLevel = .warning
        return logger
    }

    fileprivate func append(_ line: String) { lock.withLock { lines.append(line) } }

    private struct Handler: LogHandler {
        let collector: LogCollector
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .warning

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let details = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            collector.append("\(event.level): \(event.message) \(details.joined(separator: " "))")
        }
    }
}

/// The configuration in-process trials use: small chunks (many of them), one thread per rank
/// (ranks are threads already), every older checkpoint kept.
func trialConfiguration(mode: Checkpointer.Configuration.Mode = .synchronous) -> Checkpointer.Configuration {
    Checkpointer.Configuration(
        policy: .always,
        retention: .init(keepLast: 100),
        threads: 1,
        chunkSize: 4096,
        metadata: ["run": "torture"],
        mode: mode
    )
}

/// Starts `ranks` in-process ranks on `checkpoints` and restores the newest checkpoint that verifies,
/// as an application's restart would.
func restoreTrialStates(
    _ checkpoints: String,
    ranks: Int,
    logs: LogCollector = LogCollector(),
    configuration: Checkpointer.Configuration = trialConfiguration()
) throws -> [(state: TrialState, step: Step)?] {
    try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: checkpoints,
            communicator: communicator,
            configuration: configuration,
            logger: logs.logger(label: "restore-rank-\(communicator.rank)")
        )
        return try checkpointer.restoreLatest(TrialState.self)
    }
}

/// Commits the trial states of `steps` on `ranks` in-process ranks.
func saveTrialStates(
    _ checkpoints: String,
    steps: [Step],
    ranks: Int,
    seed: UInt64,
    size: Int,
    configuration: Checkpointer.Configuration = trialConfiguration()
) throws {
    _ = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: checkpoints,
            communicator: communicator,
            configuration: configuration,
            logger: LogCollector().logger(label: "save")
        )
        for step in steps {
            try checkpointer.save(
                TrialState(seed: seed, rank: communicator.rank, step: step, size: size),
                step: step
            )
        }
    }
}

/// Reads one rank's shard of a committed checkpoint without a checkpointer (read-only, no lock);
/// `nil` when it does not read back.
func readTrialState(_ checkpoints: String, step: Step, rank: Int) -> TrialState? {
    guard let reader = try? CheckpointDirectory(path: checkpoints).openSnapshot(step: step, rank: rank, threads: 1)
    else { return nil }
    return try? TrialState(from: reader)
}
