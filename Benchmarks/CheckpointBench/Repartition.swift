import Checkpoint
import Foundation

/// What restoring on another number of ranks costs: a 2-D field saved by 4 in-process ranks
/// (split by rows) is restored by 4 ranks with the same blocks (the reference), by 8, 3 and 1 ranks
/// split by rows, and by 4 ranks split by columns (every new block then needs a strided part of
/// every old block). Same data, same files, same process; every figure is a ratio to the reference.
struct RepartitionScenario {
    var options: Options
    var work: String

    /// A restoring decomposition: its label, its rank count and each rank's block.
    struct Decomposition {
        var key: String
        var label: String
        var ranks: Int
        var block: @Sendable (Int) throws -> BlockLayout
    }

    /// The field's owner in a rank, registered by key path.
    final class Holder: @unchecked Sendable {
        var values: [Double] = []
    }

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let columns = 1024
        let shape = [max(8, (options.sizeMiB << 20) / 8 / columns), columns]
        let saving = 4
        let directory = work + "/repartition"
        let repetitions = options.quick ? 3 : 5
        progress("re-partitioning: \(shape[0]) x \(shape[1]) doubles (\(options.sizeMiB) MiB) saved by \(saving) ranks")
        var configuration = Checkpointer.Configuration(policy: .always)
        configuration.chunkSize = options.chunkMiB << 20
        configuration.threads = max(1, Checkpointer.Configuration.defaultThreads / saving)
        let field = smoothField(shape[0] * shape[1])
        let saveConfiguration = configuration
        _ = try LocalGroup.run(ranks: saving) { communicator in
            let block = try BlockLayout.partition(shape, part: communicator.rank, of: saving)
            let rows = block.offset[0] * columns..<(block.offset[0] + block.extent[0]) * columns
            let checkpointer = try Checkpointer(
                directory: directory,
                communicator: communicator,
                configuration: saveConfiguration,
                logger: quietLogger
            )
            try checkpointer.save(ClosureState { try $0.write(Array(field[rows]), as: "field", block: block) }, step: 1)
        }
        let decompositions = [
            Decomposition(key: "4to4", label: "4 -> 4 (same blocks)", ranks: 4) {
                try .partition(shape, part: $0, of: 4)
            },
            Decomposition(key: "4to8_rows", label: "4 -> 8 by rows", ranks: 8) {
                try .partition(shape, part: $0, of: 8)
            },
            Decomposition(key: "4to3_rows", label: "4 -> 3 by rows", ranks: 3) {
                try .partition(shape, part: $0, of: 3)
            },
            Decomposition(key: "4to1", label: "4 -> 1", ranks: 1) { _ in try .whole(shape) },
            Decomposition(key: "4to4_columns", label: "4 -> 4 by columns", ranks: 4) {
                try .partition(shape, grid: [1, 4], coordinates: [0, $0])
            },
        ]
        var seconds: [String: Double] = [:]
        var ratios: [String: Double] = [:]
        var reference = 0.0
        for decomposition in decompositions {
            var restoreConfiguration = configuration
            restoreConfiguration.threads = max(1, Checkpointer.Configuration.defaultThreads / decomposition.ranks)
            let restoring = restoreConfiguration
            var correct = true
            let best = try measure(repetitions) {
                let checks = try LocalGroup.run(ranks: decomposition.ranks) { communicator in
                    let block = try decomposition.block(communicator.rank)
                    let checkpointer = try Checkpointer(
                        directory: directory,
                        communicator: communicator,
                        configuration: restoring,
                        logger: quietLogger
                    )
                    let holder = Holder()
                    try checkpointer.registry.register("field", holder, \.values, block: block)
                    guard try checkpointer.restoreLatest() == 1 else { return false }
                    // Spot-check the block's first and last elements against the saved field.
                    let first = block.offset[0] * columns + block.offset[1]
                    let last = (block.offset[0] + block.extent[0] - 1) * columns + block.offset[1] + block.extent[1] - 1
                    return holder.values.count == block.elementCount && holder.values.first == field[first]
                        && holder.values.last == field[last]
                }
                correct = correct && checks.allSatisfy { $0 }
            }
            guard correct else { throw Failure("re-partitioning \(decomposition.label) restored wrong values") }
            let key = decomposition.key
            seconds[key] = best
            if reference == 0 { reference = best }
            ratios[key] = best / reference
            rows.append(
                Row(
                    name: "restore \(decomposition.label)",
                    value: best * 1e3,
                    unit: "ms",
                    note: String(
                        format: "%.2f x same-count, %.2f GB/s",
                        best / reference,
                        Double(field.count * 8) / best / 1e9
                    )
                )
            )
        }
        results["repartition_seconds"] = seconds
        results["repartition_vs_same_count"] = ratios
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// State written by a closure.
struct ClosureState: Checkpointable {
    var body: (inout SnapshotWriter) throws -> Void
    init(_ body: @escaping (inout SnapshotWriter) throws -> Void) { self.body = body }
    func save(to writer: inout SnapshotWriter) throws { try body(&writer) }
    init(from reader: SnapshotReader) throws { throw Failure("ClosureState is only saved") }
}
