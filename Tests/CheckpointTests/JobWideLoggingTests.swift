import Foundation
import Logging
import Testing

@testable import Checkpoint

/// Every line every rank's logger wrote, with its level.
final class LogLines: @unchecked Sendable {
    struct Line {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let lock = NSLock()
    private var recorded: [Line] = []

    /// A logger that records here, at debug level and above.
    func logger() -> Logger {
        var logger = Logger(label: "test") { _ in Handler(lines: self) }
        logger.logLevel = .debug
        return logger
    }

    func append(_ line: Line) {
        lock.lock()
        recorded.append(line)
        lock.unlock()
    }

    var lines: [Line] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    /// The lines with `message`, at `level`.
    func count(_ message: String, at level: Logger.Level) -> Int {
        lines.filter { $0.message == message && $0.level == level }.count
    }

    private struct Handler: LogHandler {
        let lines: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.append(Line(level: event.level, message: "\(event.message)", metadata: event.metadata ?? [:]))
        }
    }
}

@Suite("Job-wide logging")
struct JobWideLoggingTests {
    @Test("A restart that skips a damaged checkpoint says so once, from rank 0, with each rank's detail at debug")
    func fallbackOnce() throws {
        try withTemporaryDirectory { directory in
            let ranks = 4
            _ = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(directory: directory, communicator: communicator)
                for step in [Step(1), 2] {
                    try checkpointer.save(ArrayState([Double](repeating: Double(step.rawValue), count: 64)), step: step)
                }
            }
            let shard =
                CheckpointDirectory(path: directory).path(for: 2) + "/" + CheckpointDirectory.shardFileName(rank: 2)
            var bytes = try readFile(shard)
            bytes[bytes.count / 2] ^= 0xFF
            try writeFile(shard, bytes)

            let log = LogLines()
            let steps = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    logger: log.logger()
                )
                return try #require(try checkpointer.restoreLatest(ArrayState<Double>.self)).step
            }
            #expect(steps == Array(repeating: Step(1), count: ranks))
            #expect(log.count("skipping damaged checkpoint", at: .warning) == 1)
            #expect(log.count("restored an older checkpoint", at: .warning) == 1)
            #expect(log.count("restored checkpoint", at: .info) == 1)
            #expect(log.count("skipping damaged checkpoint", at: .debug) == ranks - 1)
            let detail = log.lines.filter { $0.message == "this rank's part of the damaged checkpoint" }
            #expect(detail.count == ranks)
            #expect(detail.filter { $0.metadata["rank"] == "2" }.allSatisfy { $0.metadata["damage"] != "none found" })
        }
    }
}
