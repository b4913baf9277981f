import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The nbody example: an existing class registered by key path resumes bit-identically, whether
/// it is continued in a second run or killed with SIGKILL at random moments.
@Suite("NBody example")
struct NBodyTests {
    static let options = ["--particles", "48", "--checkpoint-every", "4"]

    static func nbody() throws -> URL {
        let executable = try ckptExecutable().deletingLastPathComponent().appendingPathComponent("nbody")
        try #require(
            FileManager.default.isExecutableFile(atPath: executable.path),
            "build the nbody example: swift build"
        )
        return executable
    }

    @Test("An uninterrupted run and one continued in two parts print the same checksum")
    func twoParts() throws {
        try withTemporaryDirectory { scratch in
            let whole = try run(["--steps", "60", "--dir", scratch + "/whole"] + Self.options)
            #expect(whole.first == "fresh-start")
            let expected = try #require(whole.last)
            #expect(expected.hasPrefix("checksum: ") && expected.count == "checksum: ".count + 16, "\(whole)")

            let first = try run(["--steps", "30", "--dir", scratch + "/split"] + Self.options)
            #expect(first.first == "fresh-start")
            #expect(first.last != expected, "30 steps must not look like 60")
            let second = try run(["--steps", "60", "--dir", scratch + "/split"] + Self.options)
            #expect(second == ["resumed-from: 30", expected])
        }
    }

    @Test("kill -9 at random moments, restart with the same command, same checksum")
    func killed() throws {
        try withTemporaryDirectory { scratch in
            let arguments = ["--steps", "80", "--delay-ms", "3"] + Self.options
            let expected = try #require(try run(arguments + ["--dir", scratch + "/reference"]).last)
            let crashy = scratch + "/crashy"
            let kills = try killRepeatedly(try Self.nbody(), arguments + ["--dir", crashy], directory: crashy)
            let finalExpected = expectedStartLine(crashy)
            let final = try run(arguments + ["--dir", crashy])
            #expect(kills.count > 0)
            #expect(final.last == expected, "after \(kills.count) kills: \(final)")
            expectResumedWhereCommitted(kills, final: final, finalExpected: finalExpected)
        }
    }

    @Test("Resuming with another particle count or seed is one clear error")
    func mismatchedSetup() throws {
        try withTemporaryDirectory { scratch in
            _ = try run(["--steps", "8", "--dir", scratch] + Self.options)
            let particles = try run(
                ["--steps", "16", "--particles", "40", "--checkpoint-every", "4", "--dir", scratch],
                expectSuccess: false
            )
            #expect(particles.joined().contains("48 particles"), "\(particles)")
            let seed = try run(["--steps", "16", "--seed", "7", "--dir", scratch] + Self.options, expectSuccess: false)
            #expect(seed.joined().contains("seed 42"), "\(seed)")
        }
    }

    /// Runs nbody to completion; returns its stdout lines (or stderr's when it is expected to fail).
    private func run(_ arguments: [String], expectSuccess: Bool = true) throws -> [String] {
        try runExample(try Self.nbody(), arguments, expectSuccess: expectSuccess)
    }
}
