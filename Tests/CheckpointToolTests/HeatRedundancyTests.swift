import Foundation
import Testing

/// The heat example with node-local checkpoints (`--local-dir`): a lost rank's node-local files
/// come back from its partner, and the run finishes with the uninterrupted checksum.
@Suite("Heat example with node-local checkpoints and partner copies")
struct HeatRedundancyTests {
    static let arguments = ["--grid", "48", "--checkpoint-every", "5", "--flush-every", "3"]

    @Test("Losing two ranks' node-local files: resumed from the newest checkpoint, same checksum")
    func lostNodeLocalFiles() throws {
        try withScratch { scratch in
            let shared = scratch + "/shared"
            let local = scratch + "/local"
            let expected = try #require(try heat(["--ranks", "4", "--steps", "40", "--no-checkpoints"]).last)
            let first = try heat(["--ranks", "4", "--steps", "20", "--dir", shared, "--local-dir", local])
            #expect(first.first == "fresh-start")
            // Checkpoints at 5, 10, 15, 20; the third (15) was flushed.
            let flushed = try FileManager.default.contentsOfDirectory(atPath: shared).filter { $0.hasPrefix("ckpt-") }
            #expect(flushed == ["ckpt-000000000015"])
            // On one machine each rank's partner is the next rank: ranks 1 and 3 keep partners.
            for rank in ["rank-00001", "rank-00003"] {
                try FileManager.default.removeItem(atPath: local + "/" + rank)
            }
            let second = try heat(["--ranks", "4", "--steps", "40", "--dir", shared, "--local-dir", local])
            #expect(second.first == "resumed-from: 20", "recovered from the partners' copies")
            #expect(second.last == expected)
        }
    }

    @Test("Losing all node-local storage: resumed from the newest flushed checkpoint, same checksum")
    func lostAllLocalStorage() throws {
        try withScratch { scratch in
            let shared = scratch + "/shared"
            let local = scratch + "/local"
            let expected = try #require(try heat(["--ranks", "3", "--steps", "40", "--no-checkpoints"]).last)
            _ = try heat(["--ranks", "3", "--steps", "20", "--dir", shared, "--local-dir", local])
            try FileManager.default.removeItem(atPath: local)
            let second = try heat(["--ranks", "3", "--steps", "40", "--dir", shared, "--local-dir", local])
            #expect(second.first == "resumed-from: 15")
            #expect(second.last == expected)
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
