import Checkpoint
import Foundation

/// What node-local checkpoints, partner copies and flushes cost, and how fast a lost node's
/// shards come back, on 4 ranks simulated on 2 nodes.
///
/// On this single machine "node-local" and "shared" are the same disk, so the figures show the
/// cost of the extra copies and of the exchange, not the saving a fast node-local disk gives
/// over a parallel file system on a cluster.
struct RedundancyScenario {
    var options: Options
    var work: String

    private static let nodes = ["a", "a", "b", "b"]

    private enum Level: String, CaseIterable {
        case shared, local, partner, partnerFlushEvery
    }

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let perRank = max(1, options.sizeMiB / 4)
        let rounds = options.quick ? 3 : 5
        var saveSeconds: [Level: Double] = [:]
        for level in Level.allCases {
            progress("redundancy: \(level.rawValue), 4 ranks × \(perRank) MiB")
            let folder = work + "/redundancy-\(level.rawValue)"
            let configuration = configuration(level, folder: folder)
            let times = try LocalGroup.run(ranks: 4, timeout: 600, nodes: Self.nodes) { communicator -> Double in
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
            saveSeconds[level] = times.max() ?? 0
        }
        let shared = saveSeconds[.shared] ?? 1
        var ratios: [String: Double] = [:]
        for level in Level.allCases where level != .shared {
            ratios[level.rawValue] = (saveSeconds[level] ?? 0) / shared
        }
        results["redundancy_save_vs_shared"] = ratios
        rows.append(
            Row(
                name: "save, shared directory only (4 ranks × \(perRank) MiB)",
                value: shared * 1e3,
                unit: "ms",
                note: "reference"
            )
        )
        for level in Level.allCases where level != .shared {
            rows.append(
                Row(
                    name: "save with redundancy: \(level.rawValue)",
                    value: ratios[level.rawValue] ?? 0,
                    unit: "× shared",
                    note: "same disk here; best of \(rounds)"
                )
            )
        }
        try recovery(rows: &rows, results: &results)
        try xorSets(reference: shared, rows: &rows, results: &results)
    }

    /// Restore time: everything node-local, a lost node recovered from partners, and the shared copy.
    private func recovery(rows: inout [Row], results: inout [String: Any]) throws {
        let folder = work + "/redundancy-partner"
        let configuration = configuration(.partner, folder: folder)
        func restore() throws -> Double {
            let times = try LocalGroup.run(ranks: 4, timeout: 600, nodes: Self.nodes) { communicator -> Double in
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
        try FileManager.default.removeItem(atPath: folder + "/local/rank-00003")
        let recovered = try restore()
        results["redundancy_recovery_vs_local_restore"] = recovered / local
        rows.append(Row(name: "restore from node-local copies", value: local * 1e3, unit: "ms", note: "4 ranks"))
        rows.append(
            Row(
                name: "restore after losing a node (2 of 4 ranks' shards from partners)",
                value: recovered / local,
                unit: "× node-local restore",
                note: "shards travel through the communicator"
            )
        )
    }

    private func configuration(_ level: Level, folder: String) -> Checkpointer.Configuration {
        var configuration = Checkpointer.Configuration(policy: .never, threads: 1)
        configuration.retention.keepLast = 2
        switch level {
        case .shared: break
        case .local:
            configuration.redundancy = .init(localDirectory: folder + "/local", partnerCopy: false, flushEvery: 1_000)
        case .partner:
            configuration.redundancy = .init(localDirectory: folder + "/local", flushEvery: 1_000)
        case .partnerFlushEvery:
            configuration.redundancy = .init(localDirectory: folder + "/local", flushEvery: 1)
        }
        return configuration
    }
}
