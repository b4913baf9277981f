import Foundation

/// Writes real checkpoints with the library and turns their files into fuzzer seeds.
enum SeedCorpus {
    /// A state with one entry of each kind the format stores.
    private struct Sample: Checkpointable {
        var seed: UInt64
        var count: Int
        var label = "seed"

        init(seed: UInt64, count: Int) {
            self.seed = seed
            self.count = count
        }

        init(from reader: SnapshotReader) throws {
            seed = try reader.decode(UInt64.self, "seed")
            count = try reader.decode(Int.self, "count")
        }

        func save(to writer: inout SnapshotWriter) throws {
            var state = seed
            let smooth = (0..<count).map { index in sin(Double(index) / 50) + Double(state % 7) / 1000 }
            let random = (0..<count / 2).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return state
            }
            try writer.write(smooth, as: "field")
            try writer.write(random, as: "random")
            try writer.write((0..<count / 4).map { Float($0) }, as: "floats")
            try writer.write([UInt8](repeating: 7, count: count), as: "bytes")
            try writer.encode(seed, as: "seed")
            try writer.encode(count, as: "count")
            try writer.encode(["label": "\(label) \(seed)", "units": "K"], as: "metadata")
        }
    }

    /// Writes the seeds into `folder` (created if needed).
    /// - Returns: The number of seeds.
    static func write(to folder: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let work = NSTemporaryDirectory() + "checkpoint-fuzz-corpus-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        var seeds: [FuzzInput] = []
        let variants: [(Checkpointer.Configuration.Compression, FilterPolicy, Int, Int)] = [
            (.zstd(level: 1), .automatic, 4096, 600),
            (.zstd(level: 3), .none, 4096, 1200),
            (.none, .automatic, 4096, 900),
            (.zstd(level: 1), .automatic, 65_536, 40),
        ]
        for (number, (compression, filter, chunkSize, count)) in variants.enumerated() {
            let directory = work + "/\(number)"
            let configuration = Checkpointer.Configuration(
                compression: compression,
                threads: 1,
                chunkSize: chunkSize,
                filter: filter
            )
            _ = try LocalGroup.run(ranks: 2, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                try checkpointer.save(Sample(seed: UInt64(number), count: count), step: 1)
                try checkpointer.finish()
            }
            let checkpoint = directory + "/ckpt-000000000001"
            for rank in 0..<2 {
                let shard = try bytes(checkpoint + "/rank-0000\(rank).snap")
                seeds.append(FuzzInput(mode: .shard, body: shard))
                seeds.append(FuzzInput(mode: .shardWithRepairedChecksums, body: shard))
                let reader = try ShardReader(source: MemoryByteSource(shard), baseSource: nil)
                let indexStart =
                    shard.count - ShardFormat.footerSize
                    - ShardIndex(entries: reader.index.entries)
                    .encoded().count
                var index = ByteBuilder()
                index.append(UInt8(0))
                index.append(UInt32(indexStart - ShardFormat.headerSize))
                index.append(contentsOf: shard[indexStart..<shard.count - ShardFormat.footerSize])
                seeds.append(FuzzInput(mode: .index, body: index.bytes))
                for entry in reader.index.entries {
                    guard let chunk = entry.chunks.first else { continue }
                    var header = ByteBuilder()
                    header.append(UInt32(chunk.rawSize - 1))
                    header.append(UInt8(chunk.codec == .zstd ? 0 : 1))
                    header.append(UInt8(entry.filter == .shuffle ? entry.filterWidth - 1 : 0))
                    let stored = shard[chunk.offset..<chunk.offset + chunk.storedSize]
                    seeds.append(FuzzInput(mode: .chunk, body: header.bytes + stored))
                }
            }
            let manifest = try bytes(checkpoint + "/" + Manifest.fileName)
            let checksum = try bytes(checkpoint + "/" + Manifest.checksumFileName)
            seeds.append(FuzzInput(mode: .manifest, body: manifest))
            seeds.append(FuzzInput(mode: .manifestAndChecksum, body: manifest + [0] + checksum))
            seeds += hostileNumbers(in: manifest).map { FuzzInput(mode: .manifest, body: $0) }
        }
        seeds += try incrementalSeeds(work: work + "/incremental")
        seeds += try sealedSeeds(work: work + "/sealed")
        seeds += try structuredSeeds(work: work + "/structured")
        seeds += try aggregatedSeeds(work: work + "/aggregated")
        for (number, seed) in seeds.enumerated() {
            let name = String(format: "%@/seed-%03d-%@", folder, number, "\(seed.mode)")
            try Data(seed.bytes).write(to: URL(fileURLWithPath: name))
        }
        return seeds.count
    }

    /// An element with named fields, a padding gap and a vector.
    private struct Pair: StructuredElement {
        var weight: Double
        var tag: Int16
        var direction: SIMD2<Float>

        static let fields: [ElementType.Field] = [
            .field("weight", \Pair.weight), .field("tag", \Pair.tag), .field("direction", \Pair.direction),
        ]
    }

    private struct Pairs: Checkpointable {
        var pairs = (0..<64).map { Pair(weight: Double($0), tag: Int16($0), direction: SIMD2(1, Float($0))) }

        init() {}

        init(from reader: SnapshotReader) throws { pairs = try reader.read([Pair].self, "pairs") }

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write(pairs, as: "pairs")
            try writer.write([Double](repeating: 1, count: 16), as: "numbers")
        }
    }

    /// Seeds from a checkpoint whose manifest records element fields.
    /// Aggregated files of a checkpoint of 3 ranks on 2 nodes (2 regions, then 1).
    private static func aggregatedSeeds(work: String) throws -> [FuzzInput] {
        let configuration = Checkpointer.Configuration(threads: 1, chunkSize: 4096, aggregation: .perNode)
        _ = try LocalGroup.run(ranks: 3, timeout: 60, nodes: ["a", "a", "b"]) { communicator in
            let checkpointer = try Checkpointer(
                directory: work,
                communicator: communicator,
                configuration: configuration
            )
            try checkpointer.save(Sample(seed: UInt64(communicator.rank), count: 300), step: 1)
        }
        return try (0..<2).map { node in
            FuzzInput(
                mode: .aggregatedFile,
                body: try bytes(work + "/ckpt-000000000001/" + AggregateFile.fileName(node: node))
            )
        }
    }

    private static func structuredSeeds(work: String) throws -> [FuzzInput] {
        let checkpointer = try Checkpointer(directory: work, configuration: .init(threads: 1, chunkSize: 4096))
        try checkpointer.save(Pairs(), step: 1)
        let manifest = try bytes(work + "/ckpt-000000000001/" + Manifest.fileName)
        let shard = try bytes(work + "/ckpt-000000000001/rank-00000.snap")
        return [
            FuzzInput(mode: .manifest, body: manifest),
            FuzzInput(mode: .manifestAndShard, body: manifest + [0] + shard),
        ]
    }

    /// Seeds from a sealed checkpoint with a lineage (its second, so it links to the first).
    private static func sealedSeeds(work: String) throws -> [FuzzInput] {
        var configuration = Checkpointer.Configuration(threads: 1, chunkSize: 4096)
        configuration.authentication = Authentication(signingKey: FuzzInput.key)
        configuration.lineage = try Lineage(runID: "fuzz")
        let checkpointer = try Checkpointer(directory: work, configuration: configuration)
        try checkpointer.save(Sample(seed: 11, count: 500), step: 1)
        try checkpointer.save(Sample(seed: 12, count: 500), step: 2)
        let manifest = try bytes(work + "/ckpt-000000000002/" + Manifest.fileName)
        let seal = try bytes(work + "/ckpt-000000000002/" + Authentication.fileName)
        return [
            FuzzInput(mode: .sealedManifest, body: manifest),
            FuzzInput(mode: .manifestAndSeal, body: manifest + [0] + seal),
        ]
    }

    /// Seeds from an incremental checkpoint (format 2.0) and the older one it uses.
    private static func incrementalSeeds(work: String) throws -> [FuzzInput] {
        var configuration = Checkpointer.Configuration(threads: 1, chunkSize: 4096)
        configuration.incremental = .on(fullEvery: 10)
        let checkpointer = try Checkpointer(directory: work, configuration: configuration)
        // Step 2 changes only the seed and count entries: the arrays' chunks are references.
        try checkpointer.save(Sample(seed: 7, count: 3000), step: 1)
        var changed = Sample(seed: 7, count: 3000)
        changed.label = "changed"
        try checkpointer.save(changed, step: 2)
        // Step 3 changes nothing: its chunks are in step 1's shard (the arrays) and step 2's.
        try checkpointer.save(changed, step: 3)
        let base = try bytes(work + "/ckpt-000000000001/rank-00000.snap")
        let shard = try bytes(work + "/ckpt-000000000002/rank-00000.snap")
        var pair = ByteBuilder()
        pair.append(UInt32(base.count))
        pair.append(contentsOf: base)
        pair.append(contentsOf: shard)
        var index = ByteBuilder()
        index.append(UInt8(1))
        let footer = shard.count - ShardFormat.footerSize
        var cursor = ByteCursor(Array(shard[footer..<footer + 16]), path: "seed")
        let indexStart = Int(try cursor.u64())
        let indexLength = Int(try cursor.u64())
        index.append(UInt32(indexStart - ShardFormat.headerSize))
        index.append(contentsOf: shard[indexStart..<indexStart + indexLength])
        let third = try bytes(work + "/ckpt-000000000003/rank-00000.snap")
        var set = ByteBuilder()
        set.append(UInt8(1))
        for older in [base, shard] {
            set.append(UInt32(older.count))
            set.append(contentsOf: older)
        }
        set.append(contentsOf: third)
        var repairedSet = set.bytes
        repairedSet[0] |= 0x80
        return [
            FuzzInput(mode: .incrementalSet, body: set.bytes),
            FuzzInput(mode: .incrementalSet, body: repairedSet),
            FuzzInput(mode: .incrementalPair, body: pair.bytes),
            FuzzInput(mode: .incrementalPairWithRepairedChecksums, body: pair.bytes),
            FuzzInput(mode: .index, body: index.bytes),
            FuzzInput(mode: .shard, body: base),
        ]
    }

    /// Copies of a manifest with one number replaced by a value no writer records: negative,
    /// `Int.max` (whose sums overflow), too large for `Int`, or a non-finite or huge timing.
    private static func hostileNumbers(in manifest: [UInt8]) -> [[UInt8]] {
        let text = String(decoding: manifest, as: UTF8.self)
        let replacements: [(key: String, value: String)] = [
            ("rawBytes", "-1"), ("rawBytes", "9223372036854775807"), ("fileBytes", "9223372036854775807"),
            ("storedBytes", "-9223372036854775808"), ("chunks", "-3"), ("chunkSize", "1e300"),
            ("stageSeconds", "1e300"), ("commitSeconds", "-0.5"), ("threads", "-1"),
        ]
        return replacements.compactMap { key, value in
            guard let range = text.range(of: "\"\(key)\" : ") else { return nil }
            let end = text[range.upperBound...].firstIndex { $0 == "," || $0 == "\n" } ?? text.endIndex
            return Array((text[..<range.upperBound] + value + text[end...]).utf8)
        }
    }

    private static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
