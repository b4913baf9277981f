import Checkpoint
import Foundation
import Testing

/// `ckpt list`.
@Suite struct ListCommandTests {
    /// One object of `ckpt list --json`.
    struct Row: Decodable {
        var step: UInt64
        var createdAt: String?
        var ranks: Int?
        var rawBytes: Int?
        var storedBytes: Int?
        var ratio: Double?
        var status: String
        var error: String?
    }

    @Test func humanTableHasOneRowPerCheckpoint() throws {
        try withTemporaryDirectory { directory in
            let manifests = try makeCheckpoints(in: directory, steps: [1, 20])
            let result = try ckpt("list", directory)
            #expect(result.status == 0, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            try #require(lines.count == 3, "\(result)")
            for title in ["STEP", "CREATED", "RANKS", "RAW", "STORED", "RATIO", "STATUS"] {
                #expect(lines[0].contains(title))
            }
            for (line, manifest) in zip(lines.dropFirst(), manifests) {
                let fields = line.split(separator: " ").map(String.init)
                #expect(fields.first == String(manifest.step.rawValue))
                #expect(fields.contains(manifest.createdAt))
                #expect(line.hasSuffix("  manifest ok"), "only the manifest was checked: \(line)")
                #expect(line.contains("KiB"), "sizes are human-readable: \(line)")
            }
            #expect(result.stderr.isEmpty)
        }
    }

    @Test func jsonIsAnArrayOfNumbers() throws {
        try withTemporaryDirectory { directory in
            let manifests = try makeCheckpoints(in: directory, steps: [1, 20])
            let result = try ckpt("list", directory, "--json")
            #expect(result.status == 0, "\(result)")
            let rows = try decodeJSON([Row].self, result)
            #expect(rows.map(\.step) == [1, 20])
            for (row, manifest) in zip(rows, manifests) {
                #expect(row.status == "manifest ok")
                #expect(row.error == nil)
                #expect(row.createdAt == manifest.createdAt)
                #expect(row.ranks == 1)
                #expect(row.rawBytes == manifest.rawBytes)
                #expect(row.storedBytes == manifest.storedBytes)
                let ratio = try #require(row.ratio)
                #expect(abs(ratio - Double(manifest.rawBytes) / Double(manifest.storedBytes)) < 0.001)
            }
        }
    }

    @Test(arguments: [false, true])
    func emptyDirectoryIsNotAnError(json: Bool) throws {
        try withTemporaryDirectory { directory in
            let result = try json ? ckpt("list", directory, "--json") : ckpt("list", directory)
            #expect(result.status == 0, "\(result)")
            if json {
                #expect(try decodeJSON([Row].self, result).isEmpty)
                #expect(result.stdout == "[]\n")
            } else {
                #expect(result.stdout == "no checkpoints in \(directory)\n")
            }
        }
    }

    @Test func damagedManifestShowsItsErrorCode() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            let manifest = CheckpointDirectory(path: directory).path(for: 2) + "/" + Manifest.fileName
            try Data("{}".utf8).write(to: URL(fileURLWithPath: manifest))
            let human = try ckpt("list", directory)
            #expect(human.status == 0, "listing reports damage, it does not fail on it: \(human)")
            #expect(human.stdout.contains("manifestInvalid"))
            let rows = try decodeJSON([Row].self, try ckpt("list", directory, "--json"))
            #expect(rows.map(\.status) == ["manifest ok", "manifestInvalid"])
            #expect(rows[1].rawBytes == nil)
            #expect(rows[1].error?.contains(Manifest.fileName) == true)
        }
    }

    /// Issue 13: listing reads no shard data, so a flipped byte in a shard cannot show in the
    /// plain status, which therefore says only what it checked; `--verify` finds it.
    @Test func flippedShardByteIsDamagedWithVerify() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            try flipMiddleByte(of: shardPath(directory, step: 2))

            let plain = try decodeJSON([Row].self, try ckpt("list", directory, "--json"))
            #expect(plain.map(\.status) == ["manifest ok", "manifest ok"], "never 'ok' without reading the data")

            let verified = try ckpt("list", directory, "--verify")
            #expect(verified.status == 1, "damage found: exit status 1: \(verified)")
            let lines = verified.stdout.split(separator: "\n").map(String.init)
            try #require(lines.count == 3, "\(verified)")
            #expect(lines[1].hasSuffix("  ok"), "\(verified)")
            #expect(lines[2].contains("damaged: corruptData (rank-00000.snap)"), "\(verified)")

            let rows = try decodeJSON([Row].self, try ckpt("list", directory, "--verify", "--json"))
            #expect(rows.map(\.status) == ["ok", "damaged: corruptData (rank-00000.snap)"])
            #expect(rows[0].error == nil)
            #expect(rows[1].error?.contains("XXH3-128 checksum") == true, "\(rows[1])")
        }
    }

    @Test func verifiedListOfSoundCheckpointsSaysOK() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            let result = try ckpt("list", directory, "--verify", "--json")
            #expect(result.status == 0, "\(result)")
            #expect(try decodeJSON([Row].self, result).map(\.status) == ["ok", "ok"])
        }
    }
}
