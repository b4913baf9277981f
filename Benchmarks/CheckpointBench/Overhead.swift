import Checkpoint
import Foundation
import HeatKernel

/// What an asynchronous checkpoint costs the application, and what coordination costs.
struct OverheadScenario {
    var options: Options
    var work: String

    /// Time the application is blocked at a safe point in asynchronous mode, against memcpy of the same bytes.
    func blocking(rows: inout [Row], results: inout [String: Any]) throws {
        let count = (options.sizeMiB << 20) / 8
        let bytes = count * 8
        progress("blocking time of asynchronous checkpoints, \(options.sizeMiB) MiB")
        let source = UnsafeMutableBufferPointer<Double>.allocate(capacity: count)
        defer { source.deallocate() }
        _ = source.initialize(from: smoothField(count))
        let target = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { target.deallocate() }
        target.initializeMemory(as: UInt8.self, repeating: 0)
        let memcpySeconds = measure(5) { target.copyMemory(from: UnsafeRawBufferPointer(source)) }

        var configuration = Checkpointer.Configuration(policy: .always, mode: .asynchronous())
        configuration.retention.keepLast = 1
        let checkpointer = try Checkpointer(
            directory: work + "/blocking",
            configuration: configuration,
            logger: quietLogger
        )
        try checkpointer.registry.register("grid", buffer: source)
        var step = 0
        // The safe point alone; waiting for the previous background write happens outside the timing.
        var best = Double.infinity
        for _ in 0..<(options.quick ? 3 : 5) {
            try checkpointer.finish()
            step += 1
            let start = DispatchTime.now().uptimeNanoseconds
            try checkpointer.checkpoint(step: Step(step))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        try checkpointer.finish()
        _ = checkpointer.registry.unregister("grid")

        // Copy-on-write arrays: retained, not copied, at the safe point.
        let array = Field(values: smoothField(count))
        var cowBest = Double.infinity
        for _ in 0..<(options.quick ? 3 : 5) {
            try checkpointer.finish()
            step += 1
            let start = DispatchTime.now().uptimeNanoseconds
            try checkpointer.checkpoint(array, step: Step(step))
            cowBest = min(cowBest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        try checkpointer.finish()
        results["blocking_vs_memcpy"] = best / memcpySeconds
        results["blocking_vs_memcpy_cow_array"] = cowBest / memcpySeconds
        rows.append(
            Row(
                name: "async safe point, owned buffer (copied)",
                value: best * 1e3,
                unit: "ms",
                note: "memcpy \(String(format: "%.1f", memcpySeconds * 1e3)) ms"
            )
        )
        rows.append(
            Row(name: "async safe point, CoW array (retained)", value: cowBest * 1e3, unit: "ms", note: "no copy")
        )
    }

    /// The heat example, 4 in-process ranks, checkpointing asynchronously every second vs never.
    func heat(rows: inout [Row], results: inout [String: Any]) throws {
        let grid = 2048  // 2048 x 2048 doubles = 32 MiB of state
        let target = options.quick ? 4.0 : 10.0
        progress("heat overhead: 4 ranks, \(grid) x \(grid) (32 MiB), about \(Int(target)) s per run")
        func run(_ steps: Int, checkpoints: Bool, directory: String) throws -> Double {
            var configuration = Checkpointer.Configuration(policy: .every(seconds: 1), mode: .asynchronous())
            configuration.retention.keepLast = 2
            let settings = HeatSettings(
                grid: grid,
                steps: steps,
                directory: directory,
                checkpoints: checkpoints,
                configuration: configuration,
                logger: quietLogger,
                output: { _ in }
            )
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try LocalGroup.run(ranks: 4, timeout: 600) { try runHeatRank($0, settings) }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let probe = try run(40, checkpoints: false, directory: work + "/heat-probe") / 40
        let steps = max(40, Int(target / probe))
        // Alternate the two runs so slow drifts of the machine hit both alike, and report the
        // median of the paired overheads (this virtual machine's speed wanders by ±10 %).
        var pairs: [(reference: Double, checkpointed: Double)] = []
        for round in 0..<(options.quick ? 3 : 5) {
            let reference = try run(steps, checkpoints: false, directory: work + "/heat-ref-\(round)")
            let checkpointed = try run(steps, checkpoints: true, directory: work + "/heat-ckpt-\(round)")
            pairs.append((reference, checkpointed))
        }
        let overheads = pairs.map { ($0.checkpointed - $0.reference) / $0.reference * 100 }.sorted()
        let overhead = overheads[overheads.count / 2]
        let reference = pairs.map(\.reference).sorted()[pairs.count / 2]
        let checkpointed = pairs.map(\.checkpointed).sorted()[pairs.count / 2]
        results["heat_overhead_pct_rounds"] = overheads
        // The spread of the pairs, so that one figure (a negative one, say) cannot mislead.
        let spread = (overheads.first ?? 0, overheads.last ?? 0)
        results["heat_overhead_pct_min"] = spread.0
        results["heat_overhead_pct_max"] = spread.1
        // C: the mean checkpoint duration recorded in the run's manifests.
        let directory = CheckpointDirectory(path: work + "/heat-ckpt-0")
        let costs = try directory.committedSteps().map { step -> Double in
            let timings = try directory.loadManifest(step: step).timings
            return timings.stageSeconds + timings.encodeSeconds + timings.writeSeconds + timings.syncSeconds
        }
        let cost = costs.isEmpty ? 0 : costs.reduce(0, +) / Double(costs.count)
        let interval = CheckpointPolicy.youngDalyInterval(cost: cost, mtbf: 3_600)
        results["heat_overhead_pct"] = overhead
        results["heat_checkpoint_cost_s"] = cost
        results["young_daly_interval_s_mtbf_1h"] = interval
        rows.append(Row(name: "heat, no checkpoints (\(steps) steps)", value: reference, unit: "s", note: "reference"))
        rows.append(
            Row(
                name: "heat, async checkpoint every 1 s",
                value: checkpointed,
                unit: "s",
                note: String(
                    format: "overhead %.1f %% (median of %d alternating pairs, from %.1f to %.1f %%)",
                    overhead,
                    overheads.count,
                    spread.0,
                    spread.1
                )
            )
        )
        rows.append(
            Row(
                name: "Young/Daly interval for MTBF 1 h",
                value: interval,
                unit: "s",
                note: String(format: "C = %.3f s", cost)
            )
        )
    }

    /// An empty coordinated checkpoint with 8 in-process ranks: the commit protocol alone.
    func coordination(rows: inout [Row], results: inout [String: Any]) throws {
        progress("coordination: empty checkpoints, 8 ranks")
        let rounds = options.quick ? 10 : 30
        let directory = work + "/coordination"
        let times = try LocalGroup.run(ranks: 8, timeout: 120) { communicator -> Double in
            var configuration = Checkpointer.Configuration(policy: .never, threads: 1)
            configuration.retention.keepLast = 2
            let checkpointer = try Checkpointer(
                directory: directory,
                communicator: communicator,
                configuration: configuration,
                logger: quietLogger
            )
            try checkpointer.save(Empty(), step: 0)
            let start = DispatchTime.now().uptimeNanoseconds
            for step in 1...rounds { try checkpointer.save(Empty(), step: Step(step)) }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(rounds)
        }
        results["coordination_ms_8_ranks"] = times[0] * 1e3
        rows.append(
            Row(
                name: "empty coordinated checkpoint, 8 ranks",
                value: times[0] * 1e3,
                unit: "ms",
                note: "incl. fsyncs and rename"
            )
        )
    }

    /// How the cost of a synchronous save grows with size and with the number of ranks.
    func scaling(rows: inout [Row], results: inout [String: Any]) throws {
        let sizes = options.quick ? [1, 16, 64] : [1, 16, 256, 1024]
        var bySize: [String: Double] = [:]
        for size in sizes {
            progress("scaling: \(size) MiB")
            let state = Field(values: smoothField((size << 20) / 8))
            var configuration = Checkpointer.Configuration(policy: .never)
            configuration.retention.keepLast = 1
            let checkpointer = try Checkpointer(
                directory: work + "/size-\(size)",
                configuration: configuration,
                logger: quietLogger
            )
            var step = 0
            let seconds = try measure(options.quick ? 2 : 3) {
                step += 1
                try checkpointer.save(state, step: Step(step))
            }
            bySize["\(size)_mib_gbps"] = Double(size << 20) / seconds / 1e9
            rows.append(
                Row(
                    name: "save \(size) MiB",
                    value: seconds * 1e3,
                    unit: "ms",
                    note: String(format: "%.2f GB/s", Double(size << 20) / seconds / 1e9)
                )
            )
        }
        results["save_by_size"] = bySize
        let total = options.quick ? 32 : 128
        var byRanks: [String: Double] = [:]
        for ranks in [1, 2, 4, 8] {
            progress("scaling: \(total) MiB over \(ranks) ranks")
            let directory = work + "/ranks-\(ranks)"
            let perRank = (total << 20) / 8 / ranks
            let seconds = try LocalGroup.run(ranks: ranks, timeout: 300) { communicator -> Double in
                var configuration = Checkpointer.Configuration(policy: .never)
                configuration.threads = max(1, Checkpointer.Configuration.defaultThreads / ranks)
                configuration.retention.keepLast = 1
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration,
                    logger: quietLogger
                )
                let state = Field(values: smoothField(perRank))
                var step = 0
                return try measure(2) {
                    step += 1
                    try checkpointer.save(state, step: Step(step))
                }
            }[0]
            byRanks["\(ranks)_ranks_gbps"] = Double(total << 20) / seconds / 1e9
            rows.append(
                Row(
                    name: "save \(total) MiB over \(ranks) in-process ranks",
                    value: seconds * 1e3,
                    unit: "ms",
                    note: String(format: "%.2f GB/s", Double(total << 20) / seconds / 1e9)
                )
            )
        }
        results["save_by_ranks"] = byRanks
    }
}
