import CoreMetrics
import Foundation
import MetricsTestKit
import Testing

@testable import Checkpoint

/// The metrics a checkpointer reports through swift-metrics, checked with `TestMetrics` (injected
/// through `configuration.metrics.factory`, so no process-wide bootstrap is needed).
@Suite("Metrics")
struct MetricsTests {
    private func configuration(_ metrics: TestMetrics, prefix: String = "checkpoint") -> Checkpointer.Configuration {
        var configuration = testConfiguration()
        configuration.metrics = .init(factory: metrics, labelPrefix: prefix, dimensions: [("job", "test")])
        return configuration
    }

    private let rank0 = [("job", "test"), ("rank", "0")]

    @Test("A commit reports its duration, blocked time, bytes and ratio")
    func commit() throws {
        let metrics = TestMetrics()
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration(metrics))
            let first = try checkpointer.save(ArrayState(smoothField(50_000)), step: 1)
            let second = try checkpointer.save(ArrayState(smoothField(50_000, seed: 2)), step: 2)
            #expect(try metrics.expectCounter("checkpoint_commits_total", rank0).totalValue == 2)
            let raw = first.shards[0].rawBytes + second.shards[0].rawBytes
            let stored = first.shards[0].fileBytes + second.shards[0].fileBytes
            #expect(try metrics.expectCounter("checkpoint_raw_bytes_total", rank0).totalValue == Int64(raw))
            #expect(try metrics.expectCounter("checkpoint_stored_bytes_total", rank0).totalValue == Int64(stored))
            let ratio = try metrics.expectGauge("checkpoint_compression_ratio", rank0).lastValue
            #expect(ratio == Double(second.shards[0].fileBytes) / Double(second.shards[0].rawBytes))
            #expect(ratio.map { $0 > 0 && $0 < 1 } == true, "a smooth field compresses")
            let durations = try metrics.expectTimer("checkpoint_duration_seconds", rank0).values
            let blocked = try metrics.expectTimer("checkpoint_blocked_seconds", rank0).values
            #expect(durations.count == 2 && durations.allSatisfy { $0 > 0 })
            #expect(blocked == durations, "a synchronous save blocks for the whole commit")
            #expect(metrics.counters(label: "checkpoint_failures_total").isEmpty)
        }
    }

    @Test("A failed save is counted by its error code")
    func failure() throws {
        struct Duplicate: Checkpointable {
            func save(to writer: inout SnapshotWriter) throws {
                try writer.write([1.0], as: "x")
                try writer.write([2.0], as: "x")
            }
            init() {}
            init(from reader: SnapshotReader) throws {}
        }
        let metrics = TestMetrics()
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration(metrics))
            #expect(throws: CheckpointError.self) { try checkpointer.save(Duplicate(), step: 1) }
            let failures = try metrics.expectCounter("checkpoint_failures_total", rank0 + [("code", "duplicateName")])
            #expect(failures.totalValue == 1)
            #expect(metrics.counters(label: "checkpoint_commits_total").allSatisfy { $0.totalValue == 0 })
        }
    }

    @Test("A restore reports its time and the damaged checkpoints it skipped")
    func restoreFallback() throws {
        let metrics = TestMetrics()
        try withTemporaryDirectory { directory in
            _ = try CorruptionTests.makeTwoCheckpoints(directory)
            let path = shardPath(directory, step: 2)
            var bytes = try readFile(path)
            bytes[bytes.count / 2] ^= 0xFF
            try writeFile(path, bytes)
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration(metrics))
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.step == 1)
            #expect(try metrics.expectCounter("checkpoint_restore_fallbacks_total", rank0).totalValue == 1)
            #expect(try metrics.expectTimer("checkpoint_restore_duration_seconds", rank0).values.count == 1)
        }
    }

    @Test("Asynchronous checkpoints report the staging time as blocked, the commit when it lands")
    func asynchronous() throws {
        let metrics = TestMetrics()
        try withTemporaryDirectory { directory in
            var configuration = configuration(metrics)
            configuration.mode = .asynchronous()
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            for step in 1...3 {
                _ = try checkpointer.checkpoint(ArrayState(smoothField(20_000, seed: UInt64(step))), step: Step(step))
            }
            try checkpointer.finish()
            let commits = try metrics.expectCounter("checkpoint_commits_total", rank0).totalValue
            let skipped = metrics.counters(label: "checkpoint_skipped_total").reduce(0) { $0 + $1.totalValue }
            #expect(commits + skipped == 3, "every safe point either committed or was skipped (busy)")
            #expect(try metrics.expectTimer("checkpoint_blocked_seconds", rank0).values.count == Int(commits))
            #expect(try metrics.expectTimer("checkpoint_duration_seconds", rank0).values.count == Int(commits))
        }
    }

    @Test("Each rank reports its own shard under its rank dimension")
    func ranks() throws {
        let metrics = TestMetrics()
        try withTemporaryDirectory { directory in
            let configuration = configuration(metrics, prefix: "sim")
            let manifests = try LocalGroup.run(ranks: 3) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                return try checkpointer.save(ArrayState(smoothField(1_000 * (communicator.rank + 1))), step: 1)
            }
            for rank in 0..<3 {
                let dimensions = [("job", "test"), ("rank", "\(rank)")]
                #expect(try metrics.expectCounter("sim_commits_total", dimensions).totalValue == 1)
                let raw = try metrics.expectCounter("sim_raw_bytes_total", dimensions).totalValue
                #expect(raw == Int64(manifests[0].shards[rank].rawBytes))
            }
        }
    }

    @Test("Metric options are validated")
    func validation() {
        for prefix in ["", "1checkpoint", "check-point", "ché", String(repeating: "a", count: 65)] {
            var configuration = Checkpointer.Configuration()
            configuration.metrics.labelPrefix = prefix
            #expect(throws: CheckpointError.self, "\(prefix)") { try configuration.validate() }
        }
        var configuration = Checkpointer.Configuration()
        configuration.metrics.dimensions = [("rank", "7")]
        #expect(throws: CheckpointError.self) { try configuration.validate() }
        configuration.metrics = .init(labelPrefix: "job_2", dimensions: [("job", "a")])
        #expect(throws: Never.self) { try configuration.validate() }
    }
}
