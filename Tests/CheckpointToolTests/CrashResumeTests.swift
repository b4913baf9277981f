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

        var generator = SystemRandomNumberGenerator()
        let crashy = scratch.appendingPathComponent("crashy").path
        var kills = 0
        for _ in 0..<8 {
            let process = try start(executable, directory: crashy)
            usleep(UInt32.random(in: 20_000...300_000, using: &generator))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                kills += 1
            }
            process.waitUntilExit()
        }
        let resumed = try runToEnd(executable, directory: crashy)
        #expect(kills > 0)
        #expect(resumed.last == expected, "after \(kills) kills: \(resumed)")
    }

    private func start(_ executable: URL, directory: String) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--dir", directory] + Self.arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    private func runToEnd(_ executable: URL, directory: String) throws -> [String] {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--dir", directory] + Self.arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
