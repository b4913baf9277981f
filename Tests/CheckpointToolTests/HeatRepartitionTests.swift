import Foundation
import Testing

/// The heat example saves its field as a distributed array, so a checkpoint written by 4 ranks
/// continues on any number of ranks to the checksum of a run that was never interrupted.
@Suite("Heat example on another number of ranks")
struct HeatRepartitionTests {
    static let arguments = ["--grid", "48", "--checkpoint-every", "5"]

    @Test(
        "4 ranks for 25 steps, then 1, 2, 3 or 8 ranks to step 60: the uninterrupted checksum",
        arguments: [1, 2, 3, 8]
    )
    func restartOn(ranks: Int) throws {
        try withScratch { scratch in
            let reference = try heat(["--ranks", "4", "--steps", "60", "--no-checkpoints"])
            let expected = try #require(reference.last)
            #expect(expected.hasPrefix("checksum: "))
            let first = try heat(["--ranks", "4", "--steps", "25", "--dir", scratch])
            #expect(first.first == "fresh-start")
            #expect(first.last != expected)
            let second = try heat(["--ranks", "\(ranks)", "--steps", "60", "--dir", scratch])
            #expect(second.first == "resumed-from: 25")
            #expect(second.last == expected, "4 → \(ranks) ranks")
        }
    }

    @Test("Re-partitioned again and again (4 → 3 → 8 → 1 → 2), still the uninterrupted checksum")
    func chain() throws {
        try withScratch { scratch in
            let expected = try #require(try heat(["--ranks", "2", "--steps", "50", "--no-checkpoints"]).last)
            var step = 0
            for ranks in [4, 3, 8, 1, 2] {
                let lines = try heat(["--ranks", "\(ranks)", "--steps", "\(step + 10)", "--dir", scratch])
                #expect(lines.first == (step == 0 ? "fresh-start" : "resumed-from: \(step)"))
                step += 10
                if step == 50 { #expect(lines.last == expected) }
            }
            let manifest = try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: scratch + "/ckpt-000000000050/manifest.json"))
            )
            #expect((manifest as? [String: Any])?["rankCount"] as? Int == 2)
        }
    }

    private func withScratch(_ body: (String) throws -> Void) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("heat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        try body(scratch.path)
    }

    private func heat(_ arguments: [String]) throws -> [String] {
        try runExample(try HeatTests.heat(), arguments + Self.arguments)
    }
}
