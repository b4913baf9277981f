import Checkpoint
import Foundation

extension RedundancyScenario {
    /// XOR sets beside partner copies: save cost, parity bytes per shard byte, and the time to
    /// rebuild a lost node's shard, on 4 ranks simulated on 4 nodes (one set of 4).
    func xorSets(reference shared: Double, rows: inout [Row], results: inout [String: Any]) throws {
        let perRank = max(1, options.sizeMiB / 4)
        let rounds = options.quick ? 3 : 5
        let nodes = ["a", "b", "c", "d"]
        let folder = work + "/redundancy-xor"
        let configuration = {
            var configuration = Checkpointer.Configuration(policy: .never, threads: 1)
            configuration.retention.keepLast = 2
            configuration.redundancy = .init(localDirectory: folder + "/local", xorSetSize: 4, flushEvery: 1_000)
            return configuration
        }()
        progress("redundancy: XOR set of 4, 4 ranks × \(perRank) MiB")
        let times = try LocalGroup.run(ranks: 4, timeout: 600, nodes: nodes) { communicator -> Double in
            let checkpointer = try Checkpointer(
                directory: folder + "/shared",
                communicator: communicator,
                configuration: configuration,
                logger: quietLogger
            )
            let state = Field(values: smoothField((perRank << 20) / 8).map { $0 + Double(communicator.rank) })
            var best = Double.infinity
            for step in 1...rounds {
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try checkpointer.save(state, step: Step(step))
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return best
        }
        let save = (times.max() ?? 0) / shared
        // Parity bytes over shard bytes, over every rank's newest node-local checkpoint.
        var shardBytes = 0
        var parityBytes = 0
        for rank in 0..<4 {
            let checkpoint = folder + "/local/rank-0000\(rank)/ckpt-" + String(format: "%012d", rounds)
            for name in try FileManager.default.contentsOfDirectory(atPath: checkpoint) {
                let size =
                    (try FileManager.default.attributesOfItem(atPath: checkpoint + "/" + name)[.size] as? Int) ?? 0
                if name.hasSuffix(".snap") { shardBytes += size }
                if name.hasSuffix(".parity") { parityBytes += size }
            }
        }
        let extra = Double(parityBytes) / Double(max(1, shardBytes))
        func restore() throws -> Double {
            let times = try LocalGroup.run(ranks: 4, timeout: 600, nodes: nodes) { communicator -> Double in
                let start = DispatchTime.now().uptimeNanoseconds
                let checkpointer = try Checkpointer(
                    directory: folder + "/shared",
                    communicator: communicator,
                    configuration: configuration,
                    logger: quietLogger
                )
                guard try checkpointer.restoreLatest(Field<Double>.self) != nil else {
                    throw Failure("nothing restored")
                }
                return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            return times.max() ?? 0
        }
        let local = try restore()
        try FileManager.default.removeItem(atPath: folder + "/local/rank-00002")
        let rebuilt = try restore()
        results["redundancy_xor"] = [
            "save_vs_shared": save, "extra_bytes_ratio": extra, "rebuild_vs_local_restore": rebuilt / local,
        ]
        rows.append(
            Row(
                name: "save with redundancy: XOR set of 4 (4 nodes)",
                value: save,
                unit: "× shared",
                note: "same disk here; best of \(rounds)"
            )
        )
        rows.append(
            Row(
                name: "extra bytes: XOR set of 4 (parity / shard bytes)",
                value: extra,
                unit: "ratio",
                note: "partner copy: 1.0"
            )
        )
        rows.append(
            Row(
                name: "restore after losing a node (1 of 4 shards rebuilt from its XOR set)",
                value: rebuilt / local,
                unit: "× node-local restore",
                note: "node-local restore \(String(format: "%.0f", local * 1e3)) ms"
            )
        )
    }
}
