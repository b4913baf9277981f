import Foundation
import Testing

@testable import Checkpoint

/// `Scripts/ckpt_read.py` is an independent reader written from `Documentation/FileFormat.md`;
/// it must read what the library writes, value for value, and reject damage.
@Suite("Independent Python reader")
struct PythonReaderTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/ckpt_read.py")

    struct Mixed: Checkpointable {
        var field: [Double]
        var counts: [Int32]
        var vectors: [SIMD3<Float>]
        var time: Double
        var label: [String: String]

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write(field, as: "field", shape: [10, field.count / 10])
            try writer.write(counts, as: "counts")
            try writer.write(vectors, as: "vectors")
            try writer.write(value: time, as: "time")
            try writer.encode(label, as: "label")
        }

        init(from reader: SnapshotReader) throws { fatalError("not used") }

        init() {
            field = smoothField(20_000)
            counts = (0..<5_000).map { Int32($0 % 17) - 8 }
            vectors = (0..<100).map { SIMD3(Float($0), 0.5, -1) }
            time = 12.5
            label = ["run": "α"]
        }
    }

    @Test(
        "Reads every entry and agrees on the values; rejects a flipped byte (format 3.0 with XXH3-128 and 1.0 with SHA-256 checksums)",
        arguments: [Checkpointer.Configuration.ChunkChecksum.automatic, .sha256]
    )
    func agreesWithLibrary(checksum: Checkpointer.Configuration.ChunkChecksum) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test (Scripts/bootstrap installs the zstd CLI it uses)")
            return
        }
        try withTemporaryDirectory { directory in
            let state = Mixed()
            var configuration = testConfiguration()
            configuration.chunkChecksum = checksum
            let manifest = try Checkpointer(directory: directory, configuration: configuration).save(state, step: 3)
            #expect(manifest.shardFormat == (checksum == .sha256 ? "1.0" : "3.0"))
            let (status, output) = try run(["python3", Self.script.path, directory, "--verify"])
            try #require(status == 0, "\(output)")
            // JSONDecoder parses doubles exactly (JSONSerialization on Linux does not).
            let summary = try JSONDecoder().decode(Summary.self, from: Data(output.utf8))
            #expect(summary.step == 3)
            #expect(summary.entries.map(\.name) == ["field", "counts", "vectors", "time", "label"])
            let field = summary.entries[0]
            #expect(field.shape == [10, 2_000])
            #expect(field.dtype == "<f8")
            #expect(field.first == Array(state.field.prefix(5)))
            let sum = try #require(field.sum)
            #expect(abs(sum - state.field.reduce(0, +)) <= 1e-9 * abs(sum))
            #expect(summary.entries[1].sum == Double(state.counts.reduce(0) { $0 + Int($1) }))
            // SIMD3<Float> has a stride of four lanes; the fourth is padding.
            #expect(summary.entries[2].first.map { Array($0.prefix(3)) + [$0[4]] } == [0, 0.5, -1, 1])
            #expect(summary.entries[3].first == [12.5])
            #expect(summary.entries[4].value == ["run": "α"])

            let shard = shardPath(directory, step: 3)
            var bytes = try readFile(shard)
            bytes[bytes.count / 3] ^= 0x01
            try writeFile(shard, bytes)
            let (damagedStatus, damagedOutput) = try run(["python3", Self.script.path, directory, "--verify"])
            #expect(damagedStatus == 1, "\(damagedOutput)")
        }
    }

    @Test("Checks XXH3-128 with the xxhsum tool when the xxhash module is missing")
    func xxhsumFallback() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/xxhsum") else {
            try toolUnavailable("xxhsum is not installed (Scripts/bootstrap installs Debian's xxhash)")
        }
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(Mixed(), step: 1)
            // Hide the module: a `xxhash.py` that fails to import shadows it.
            let shadow = directory + "/shadow"
            try FileManager.default.createDirectory(atPath: shadow, withIntermediateDirectories: true)
            try writeFile(shadow + "/xxhash.py", Array("raise ImportError('hidden by the test')\n".utf8))
            let (status, output) = try run(
                ["PYTHONPATH=\(shadow)", "/usr/bin/python3", Self.script.path, directory, "--verify"]
            )
            #expect(status == 0, "\(output)")
            let shard = shardPath(directory, step: 1)
            var bytes = try readFile(shard)
            bytes[bytes.count / 3] ^= 0x01
            try writeFile(shard, bytes)
            let (damagedStatus, _) = try run([
                "PYTHONPATH=\(shadow)", "/usr/bin/python3", Self.script.path, directory, "--verify",
            ])
            #expect(damagedStatus == 1)
        }
    }

    @Test("Without the xxhash module and the xxhsum tool it refuses a format 3.0 shard, saying what to install")
    func noXXH3Implementation() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/zstd") else {
            try toolUnavailable("zstd is not installed (Scripts/bootstrap installs it)")
        }
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(Mixed(), step: 1)
            let shadow = directory + "/shadow"
            try FileManager.default.createDirectory(atPath: shadow, withIntermediateDirectories: true)
            try writeFile(shadow + "/xxhash.py", Array("raise ImportError('hidden by the test')\n".utf8))
            // A PATH with the zstd tool (the decoder's fallback) but no xxhsum.
            let tools = directory + "/bin"
            try FileManager.default.createDirectory(atPath: tools, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: tools + "/zstd", withDestinationPath: "/usr/bin/zstd")
            let result = try Self.run([
                "PATH=\(tools)", "PYTHONPATH=\(shadow)", "/usr/bin/python3", Self.script.path, directory, "--verify",
            ])
            #expect(result.status == 1)
            #expect(result.errors.contains("apt-get install python3-xxhash xxhash"), "\(result.errors)")
        }
    }

    @Test("Reads an incremental checkpoint's chunks from the older checkpoint that holds them; a missing one fails")
    func readsIncrementalCheckpoints() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test (Scripts/bootstrap installs the zstd CLI it uses)")
            return
        }
        try withTemporaryDirectory { directory in
            var state = Mixed()
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
                try checkpointer.save(state, step: 1)
                state.field[3] = -1
                state.time = 13
                let manifest = try checkpointer.save(state, step: 2)
                #expect(manifest.references == [1])
            }
            let (status, output) = try run(["python3", Self.script.path, directory, "--verify"])
            try #require(status == 0, "\(output)")
            let summary = try JSONDecoder().decode(Summary.self, from: Data(output.utf8))
            #expect(summary.step == 2)
            #expect(summary.references == [1])
            #expect(summary.entries[0].first == Array(state.field.prefix(5)))
            let sum = try #require(summary.entries[0].sum)
            #expect(abs(sum - state.field.reduce(0, +)) <= 1e-9 * abs(sum))
            #expect(summary.entries[3].first == [13])

            try FileManager.default.removeItem(atPath: CheckpointDirectory(path: directory).path(for: 1))
            let (missingStatus, missingOutput) = try run(["python3", Self.script.path, directory])
            #expect(missingStatus == 1, "\(missingOutput)")
        }
    }

    @Test(
        "Reads aggregated files: every rank's region, incremental bases in older aggregated files; a damaged table fails"
    )
    func readsAggregatedFiles() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test (Scripts/bootstrap installs the zstd CLI it uses)")
            return
        }
        try withTemporaryDirectory { directory in
            let configuration = {
                var configuration = incrementalConfiguration()
                configuration.aggregation = .perNode
                return configuration
            }()
            _ = try LocalGroup.run(ranks: 5, timeout: 60, nodes: simulatedNodes(ranks: 5, nodes: 2)) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                var state = Mixed()
                state.time = Double(communicator.rank)
                try checkpointer.save(state, step: 1)
                state.field[3] = -1
                try checkpointer.save(state, step: 2)
            }
            let manifest = try CheckpointDirectory(path: directory).loadManifest(step: 2)
            #expect(manifest.references == [1] && manifest.shards.allSatisfy { $0.offset != nil })
            var expected = Mixed().field
            expected[3] = -1
            for rank in [0, 3, 4] {
                let (status, output) = try run([
                    "python3", Self.script.path, directory, "--rank", "\(rank)", "--verify",
                ])
                try #require(status == 0, "\(output)")
                let summary = try JSONDecoder().decode(Summary.self, from: Data(output.utf8))
                #expect(summary.step == 2 && summary.references == [1])
                #expect(summary.entries[0].first == Array(expected.prefix(5)))
                #expect(summary.entries[3].first == [Double(rank)])
            }
            let path = CheckpointDirectory(path: directory).path(for: 2) + "/" + AggregateFile.fileName(node: 1)
            var bytes = try readFile(path)
            bytes[bytes.count - AggregateFile.footerSize - 3] ^= 1
            try writeFile(path, bytes)
            let (status, output) = try run(["python3", Self.script.path, directory, "--step", "2", "--rank", "3"])
            #expect(status == 1, "\(output)")
        }
    }

    @Test("Checks the seal with --key-file: a forged manifest is skipped, a wrong key reads nothing")
    func checksSeals() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test (Scripts/bootstrap installs the zstd CLI it uses)")
            return
        }
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            let keyFile = root + "/ckpt.key"
            let otherFile = root + "/other.key"
            FileManager.default.createFile(
                atPath: keyFile,
                contents: Data((String(repeating: "5a", count: 32) + "\n").utf8),
                attributes: [.posixPermissions: 0o600]
            )
            FileManager.default.createFile(
                atPath: otherFile,
                contents: Data(repeating: 0x11, count: 32),
                attributes: [.posixPermissions: 0o600]
            )
            var configuration = testConfiguration()
            configuration.authentication = Authentication(signingKey: try .contentsOfFile(keyFile))
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.save(Mixed(), step: 1)
                try checkpointer.save(Mixed(), step: 2)
            }
            let (status, output) = try run(["python3", Self.script.path, directory, "--key-file", keyFile])
            try #require(status == 0, "\(output)")
            #expect(try JSONDecoder().decode(Summary.self, from: Data(output.utf8)).step == 2)

            try AuthenticationTests.forgeManifest(directory, step: 2) { $0.metadata["forged"] = "yes" }
            let (_, unkeyed) = try run(["python3", Self.script.path, directory])
            #expect(try JSONDecoder().decode(Summary.self, from: Data(unkeyed.utf8)).step == 2, "integrity only")
            let (keyedStatus, keyed) = try run(["python3", Self.script.path, directory, "--key-file", keyFile])
            try #require(keyedStatus == 0, "\(keyed)")
            #expect(
                try JSONDecoder().decode(Summary.self, from: Data(keyed.utf8)).step == 1,
                "the forged one is skipped"
            )
            let (wrongStatus, _) = try run(["python3", Self.script.path, directory, "--key-file", otherFile])
            #expect(wrongStatus == 1)
            try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: keyFile)
            let (openStatus, _) = try run(["python3", Self.script.path, directory, "--key-file", keyFile])
            #expect(openStatus == 1, "a key file others can read is refused")
        }
    }

    struct Summary: Decodable {
        var step: Int
        var references: [Int]?
        var entries: [Entry]
    }

    struct Entry: Decodable {
        var name: String
        var shape: [Int]
        var dtype: String?
        var sum: Double?
        var first: [Double]?
        var value: [String: String]?
    }

    private func run(_ arguments: [String]) throws -> (Int32, String) {
        let result = try Self.run(arguments)
        return (result.status, result.output)
    }

    /// Runs `arguments` through `/usr/bin/env` (so `python3` is the one on `PATH`).
    /// - Returns: The exit status, standard output and standard error (which must stay short).
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complained = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: printed, as: UTF8.self),
            String(decoding: complained, as: UTF8.self)
        )
    }
}
