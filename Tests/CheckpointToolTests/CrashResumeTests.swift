import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real crashes: the quickstart simulation is killed with SIGKILL at pseudo-random instants and
/// restarted with the same command until it finishes; its final checksum must equal an
/// uninterrupted run's.
@Suite("Crash and resume")
struct CrashResumeTests {
    static let arguments = ["--steps", "400", "--cells", "20000", "--checkpoint-every", "7", "--delay-ms", "2"]

    @Test("kill -9 at random moments, resume, finish bit-identical")
    func killAndResume() throws {
        let executable = try ckptExecutable().deletingLastPathComponent().appendingPathComponent("quickstart")
        try #require(
            FileManager.default.isExecutableFile(atPath: executable.path),
            "build the quickstart example: swift build"
        )
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }

        let reference = try runToEnd(executable, directory: scratch.appendingPathComponent("reference").path)
        #expect(reference.first == "fresh-start")
        let expected = try #require(reference.last)
        #expect(expected.hasPrefix("checksum: "))

        let crashy = scratch.appendingPathComponent("crashy").path
        let kills = try killRepeatedly(executable, ["--dir", crashy] + Self.arguments, directory: crashy, attempts: 8)
        let finalExpected = expectedStartLine(crashy)
        let resumed = try runToEnd(executable, directory: crashy)
        #expect(kills.count > 0)
        #expect(resumed.last == expected, "after \(kills.count) kills: \(resumed)")
        expectResumedWhereCommitted(kills, final: resumed, finalExpected: finalExpected)
    }

    private func runToEnd(_ executable: URL, directory: String) throws -> [String] {
        try runExample(executable, ["--dir", directory] + Self.arguments)
    }
}
