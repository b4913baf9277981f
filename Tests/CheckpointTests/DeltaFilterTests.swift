import Foundation
import Testing

@testable import Checkpoint

/// The delta filter (shard format 3.x): chosen for integer arrays whose sample it stores smaller,
/// never for floating-point data or in 1.x / 2.x shards, undone exactly by the library and the
/// Python reader, and refused by readers where the format does not allow it.
@Suite("Delta filter")
struct DeltaFilterTests {
    /// Slowly increasing counters: the delta filter's case.
    static func counters(_ count: Int, seed: UInt64 = 5) -> [Int64] {
        var random = SplitMix64(seed: seed)
        var value: Int64 = 1_000_000
        return (0..<count).map { _ in
            value += Int64(random.next() >> 62)
            return value
        }
    }

    static func filter(_ directory: String, step: Step) throws -> Filter {
        try ShardReader(path: shardPath(directory, step: step)).record("values").filter
    }

    @Test("Delta encoding and its inverse, for widths 1, 2, 4 and 8, wrapping around", arguments: [1, 2, 4, 8])
    func roundTrip(width: Int) {
        var random = SplitMix64(seed: UInt64(width))
        let bytes = (0..<width * 1_001).map { _ in UInt8.random(in: 0...255, using: &random) }
        var differences = [UInt8](repeating: 0, count: bytes.count)
        bytes.withUnsafeBytes { source in
            differences.withUnsafeMutableBytes { Delta.encode(source, into: $0, width: width) }
        }
        #expect(Array(differences.prefix(width)) == Array(bytes.prefix(width)), "the first keeps its value")
        differences.withUnsafeMutableBytes { Delta.decode($0, width: width) }
        #expect(differences == bytes)
    }

    @Test(
        "The one-pass delta and shuffle writes the bytes of the two passes, and undoes them, for widths 4 and 8",
        arguments: [4, 8],
        [0, 1, 7, 8, 9, 1_003]
    )
    func fusedWithShuffle(width: Int, count: Int) {
        var random = SplitMix64(seed: UInt64(width * 10_000 + count))
        let bytes = (0..<width * count).map { _ in UInt8.random(in: 0...255, using: &random) }
        var differences = [UInt8](repeating: 0, count: bytes.count)
        var twoPasses = differences
        var onePass = differences
        bytes.withUnsafeBytes { source in
            differences.withUnsafeMutableBytes { Delta.encode(source, into: $0, width: width) }
            onePass.withUnsafeMutableBytes { Delta.encodeShuffled(source, into: $0, width: width) }
        }
        differences.withUnsafeBytes { source in
            twoPasses.withUnsafeMutableBytes { ByteShuffle.shuffle(source, into: $0, width: width) }
        }
        #expect(onePass == twoPasses)
        var restored = [UInt8](repeating: 0, count: bytes.count)
        onePass.withUnsafeBytes { source in
            restored.withUnsafeMutableBytes { Delta.decodeShuffled(source, into: $0, width: width) }
        }
        #expect(restored == bytes)
    }

    @Test("Counters get the delta filter and are stored smaller; random integers and doubles keep the shuffle")
    func automaticChoice() throws {
        try withTemporaryDirectory { directory in
            let counters = ArrayState(Self.counters(50_000))
            var random = SplitMix64(seed: 9)
            let noise = ArrayState((0..<50_000).map { _ in Int64(bitPattern: random.next()) })
            let doubles = ArrayState((0..<50_000).map { Double($0) * 0.5 })
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration(keepLast: 5))
            let delta = try checkpointer.save(counters, step: 1)
            try checkpointer.save(noise, step: 2)
            try checkpointer.save(doubles, step: 3)
            #expect(try Self.filter(directory, step: 1) == .delta)
            #expect(try Self.filter(directory, step: 2) == .shuffle)
            #expect(try Self.filter(directory, step: 3) == .shuffle)
            let checkpoints = CheckpointDirectory(path: directory)
            #expect(try ArrayState<Int64>(from: checkpoints.openSnapshot(step: 1)) == counters)
            #expect(try ArrayState<Int64>(from: checkpoints.openSnapshot(step: 2)) == noise)
            try checkpoints.verify(step: 1)

            var shuffleOnly = testConfiguration()
            shuffleOnly.filter = .shuffle
            let shuffled = try withTemporaryDirectory { other in
                try Checkpointer(directory: other, configuration: shuffleOnly).save(counters, step: 1)
            }
            #expect(delta.storedBytes * 2 < shuffled.storedBytes, "\(delta.storedBytes) vs \(shuffled.storedBytes)")
        }
    }

    @Test(
        "Only format 3.x uses it: SHA-256 (1.0) and incremental (2.0) shards keep the shuffle",
        arguments: [false, true]
    )
    func onlyInFormat3(incremental: Bool) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            if incremental { configuration.incremental = .on() } else { configuration.chunkChecksum = .sha256 }
            let manifest = try Checkpointer(directory: directory, configuration: configuration)
                .save(ArrayState(Self.counters(20_000)), step: 1)
            #expect(manifest.shardFormat == (incremental ? "2.0" : "1.0"))
            #expect(try Self.filter(directory, step: 1) == .shuffle)
        }
    }

    @Test("A reader refuses the delta filter in a 1.x or 2.x index, and a width other than 1, 2, 4, 8")
    func refusedWhereNotAllowed() throws {
        func index(width: Int) -> [UInt8] {
            ShardIndex(entries: [
                EntryRecord(
                    name: "values",
                    encoding: .raw,
                    elementType: width == 3 ? ElementType(scalar: .opaque, size: 6, typeName: "") : .of(Int64.self),
                    filter: .delta,
                    filterWidth: width,
                    shape: [0],
                    rawSize: 0,
                    chunks: []
                )
            ]).encoded()
        }
        let range = ShardFormat.headerSize..<ShardFormat.headerSize
        let old = try #require(throws: CheckpointError.self) {
            try ShardIndex(
                decoding: index(width: 8),
                dataRange: range,
                path: "test",
                version: ShardFormat.selfContainedVersion
            )
        }
        #expect(old.code == .corruptData && old.message.contains("only format 3.x"))
        _ = try ShardIndex(
            decoding: index(width: 8),
            dataRange: range,
            path: "test",
            version: ShardFormat.fastChecksumVersion
        )
        #expect(throws: CheckpointError.self) {
            try ShardIndex(
                decoding: index(width: 3),
                dataRange: range,
                path: "test",
                version: ShardFormat.fastChecksumVersion
            )
        }
    }

    @Test("The Python reader undoes the delta filter")
    func pythonReader() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test")
            return
        }
        try withTemporaryDirectory { directory in
            let counters = Self.counters(30_000)
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(
                ArrayState(counters),
                step: 1
            )
            #expect(try Self.filter(directory, step: 1) == .delta)
            let (status, output, errors) = try PythonReaderTests.run(
                ["python3", PythonReaderTests.script.path, directory, "--verify"]
            )
            try #require(status == 0, "\(output) \(errors)")
            let summary = try JSONDecoder().decode(PythonReaderTests.Summary.self, from: Data(output.utf8))
            let entry = try #require(summary.entries.first)
            #expect(entry.first == counters.prefix(5).map(Double.init))
            #expect(entry.sum == Double(counters.reduce(0, +)))
        }
    }

    @Test("The Python reader refuses the delta filter in a 1.0 shard, as the library does")
    func pythonReaderRefusesDeltaOutsideFormat3() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test")
            return
        }
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.chunkChecksum = .sha256
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            let manifest = try checkpointer.save(ArrayState(Self.counters(30_000)), step: 1)
            #expect(manifest.shardFormat == "1.0")
            try Forgery.rewriteIndex(directory, step: 1) { index in index.entries[0].filter = .delta }
            #expect(throws: CheckpointError.self) { try checkpointer.restoreLatest(ArrayState<Int64>.self) }
            let (status, output, errors) = try PythonReaderTests.run(
                ["python3", PythonReaderTests.script.path, directory, "--step", "1", "--verify"]
            )
            #expect(status == 1, "\(output)")
            #expect(errors.contains("only format 3.x shards may use"), "\(errors)")
        }
    }
}
