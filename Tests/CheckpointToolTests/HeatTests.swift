import Checkpoint
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test of the whole library: the heat example prints the same checksum for any rank count,
/// when continued in several runs, and when killed at any moment and started again.
@Suite("Heat example")
struct HeatTests {
    static let grid = ["--grid", "48", "--checkpoint-every", "5"]

    static func heat() throws -> URL {
        let executable = try ckptExecutable().deletingLastPathComponent().appendingPathComponent("heat")
        try #require(
            FileManager.default.isExecutableFile(atPath: executable.path),
            "build the heat example: swift build"
        )
        return executable
    }

    @Test("Same checksum with 1, 2, 3, 4 and 8 in-process ranks, and when continued in two runs")
    func rankCounts() throws {
        try withScratch { scratch in
            var checksums: [String] = []
            for ranks in [1, 2, 3, 4, 8] {
                let lines = try run(
                    ["--ranks", "\(ranks)", "--steps", "60", "--dir", scratch + "/r\(ranks)"] + Self.grid
                )
                #expect(lines.first == "fresh-start")
                checksums.append(try #require(lines.last))
            }
            #expect(Set(checksums).count == 1, "\(checksums)")
            #expect(checksums[0].hasPrefix("checksum: ") && checksums[0].count == 26)

            let first = try run(["--ranks", "4", "--steps", "25", "--dir", scratch + "/split"] + Self.grid)
            #expect(first.first == "fresh-start")
            let second = try run(["--ranks", "4", "--steps", "60", "--dir", scratch + "/split"] + Self.grid)
            #expect(second.first == "resumed-from: 25")
            #expect(second.last == checksums[0])
            let again = try run(["--ranks", "4", "--steps", "60", "--dir", scratch + "/split"] + Self.grid)
            #expect(again == ["resumed-from: 60", checksums[0]])
        }
    }

    @Test("kill -9 at random moments, restart with the same command, same checksum", arguments: [1, 4])
    func killed(ranks: Int) throws {
        try withScratch { scratch in
            let arguments = ["--ranks", "\(ranks)", "--steps", "120", "--delay-ms", "3"] + Self.grid
            let expected = try #require(try run(arguments + ["--dir", scratch + "/reference"]).last)
            let crashy = scratch + "/crashy"
            let kills = try killRepeatedly(try Self.heat(), arguments + ["--dir", crashy], directory: crashy)
            let finalExpected = expectedStartLine(crashy)
            let final = try run(arguments + ["--dir", crashy])
            #expect(kills.count > 0)
            #expect(final.last == expected, "after \(kills.count) kills: \(final)")
            expectResumedWhereCommitted(kills, final: final, finalExpected: finalExpected)
        }
    }

    @Test(
        "--stop-on-signal: SIGUSR1 makes every rank checkpoint at the next safe point and heat exit 0; a restart continues bit-identically"
    )
    func stopOnSignal() throws {
        try withScratch { scratch in
            let directory = scratch + "/stopped"
            let arguments = ["--ranks", "4", "--grid", "48", "--checkpoint-every", "100000"]
            let output = scratch + "/stdout"
            guard FileManager.default.createFile(atPath: output, contents: nil) else {
                throw ToolMissing(message: "could not create \(output)")
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            defer { try? handle.close() }
            let process = Process()
            process.executableURL = try Self.heat()
            process.arguments =
                arguments + ["--steps", "20000", "--delay-ms", "5", "--stop-on-signal", "--dir", directory]
            process.standardOutput = handle
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Signal once heat has restored and entered its loop (its first line), not after a guessed time.
            func printed() -> [String] {
                ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
            while process.isRunning && printed().isEmpty { usleep(1_000) }
            kill(process.processIdentifier, SIGUSR1)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 0, "heat ended by the signal")
            let lines = printed()
            #expect(lines.first == "fresh-start")
            let stoppedAt = try #require(
                lines.last.flatMap { Int($0.replacingOccurrences(of: "stopped-at: ", with: "")) }
            )
            #expect(try CheckpointDirectory(path: directory).committedSteps().last == Step(stoppedAt))

            let steps = ["--steps", "\(stoppedAt + 5)"]
            let resumed = try run(arguments + steps + ["--dir", directory])
            #expect(resumed.first == "resumed-from: \(stoppedAt)")
            let uninterrupted = try run(arguments + steps + ["--dir", scratch + "/reference"])
            #expect(resumed.last == uninterrupted.last)
        }
    }

    @Test("Restarting on another grid is one clear error (another rank count: HeatRepartitionTests)")
    func mismatches() throws {
        try withScratch { scratch in
            _ = try run(["--ranks", "4", "--steps", "10", "--dir", scratch] + Self.grid)
            let grid = try run(
                ["--ranks", "4", "--steps", "20", "--grid", "40", "--dir", scratch],
                expectSuccess: false
            )
            #expect(grid.joined().contains("48 x 48"))
        }
    }

    @Test(
        "--crash-at kills heat at a named point of the commit; the restart resumes from the newest committed checkpoint",
        arguments: ["rename", "marker"],
        [("commit.synced@3", 10), ("commit.published@3", 15)]
    )
    func crashAtNamedPoint(method: String, crash: (point: String, resumesFrom: Int)) throws {
        try withScratch { scratch in
            // Checkpoints at 5, 10, 15, …: the third commit is step 15's.
            let arguments = ["--ranks", "2", "--steps", "30", "--commit-method", method, "--dir", scratch] + Self.grid
            let expected = try #require(
                try run(["--ranks", "2", "--steps", "30", "--no-checkpoints"] + Self.grid).last
            )
            let crashed = try runProgram(try Self.heat(), arguments + ["--crash-at", crash.point])
            #expect(crashed.status == SIGKILL, "\(crashed)")
            #expect(crashed.stdout == "fresh-start\n")
            let resumed = try run(arguments)
            #expect(resumed.first == "resumed-from: \(crash.resumesFrom)")
            #expect(resumed.last == expected)
        }
    }

    @Test("Bad values of the options that combine the library's features are clear errors")
    func badCombinationValues() throws {
        try withScratch { scratch in
            let cases = [
                (["--crash-at", "commit.nowhere"], "unknown crash point 'commit.nowhere'; use one of shard-written"),
                (["--crash-at", "commit.published@0"], "must be a whole number of at least 1, not '0'"),
                (["--crash-at", "commit.published@x"], "not 'x'"),
                (["--commit-method", "copy"], "--commit-method must be rename or marker, not 'copy'"),
                (["--incremental", "0"], "--incremental FULL_EVERY must be between 1 and 1000"),
            ]
            for (arguments, message) in cases {
                let lines = try run(arguments + ["--dir", scratch], expectSuccess: false)
                #expect(lines.joined(separator: "\n").contains(message), "\(arguments): \(lines)")
            }
        }
    }

    @Test("--key-file seals every checkpoint; a run with another key refuses them instead of starting over")
    func keyFile() throws {
        try withScratch { scratch in
            let keys = (scratch + "/heat.key", scratch + "/other.key")
            for (path, byte) in [(keys.0, UInt8(3)), (keys.1, UInt8(4))] {
                _ = FileManager.default.createFile(
                    atPath: path,
                    contents: Data([UInt8](repeating: byte, count: 32)),
                    attributes: [.posixPermissions: 0o600]
                )
            }
            let arguments = ["--ranks", "2", "--dir", scratch + "/run", "--run-id", "job-1"] + Self.grid
            let reference = try run(["--ranks", "2", "--steps", "30", "--dir", scratch + "/reference"] + Self.grid)
            #expect(try run(arguments + ["--steps", "15", "--key-file", keys.0]).first == "fresh-start")
            let verified = try ckpt("verify", scratch + "/run", "--all", "--key-file", keys.0)
            #expect(verified.status == 0 && verified.stdout.contains("authenticated by key"), "\(verified)")
            let refused = try run(arguments + ["--steps", "30", "--key-file", keys.1], expectSuccess: false)
            #expect(refused.joined().contains("authenticationFailed"), "\(refused)")
            let wrongRun = try run(
                ["--ranks", "2", "--dir", scratch + "/run", "--run-id", "job-2", "--steps", "30", "--key-file", keys.0]
                    + Self.grid,
                expectSuccess: false
            )
            #expect(wrongRun.joined().contains("lineageMismatch"), "\(wrongRun)")
            // Rotation: sign with the new key, still accept the old one.
            let resumed = try run(arguments + ["--steps", "30", "--key-file", keys.1, "--key-file", keys.0])
            #expect(resumed.first == "resumed-from: 15")
            #expect(resumed.last == reference.last)
        }
    }

    @Test("A group-writable --dir is refused, naming the fix, and accepted with --shared-group-directory")
    func sharedGroupDirectory() throws {
        try withScratch { scratch in
            let directory = scratch + "/group"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try #require(chmod(directory, 0o770) == 0)
            let refused = try run(["--steps", "10", "--dir", directory] + Self.grid, expectSuccess: false)
            #expect(refused.joined(separator: "\n").contains("chmod g-w \(directory)"), "\(refused)")
            let accepted = try run(["--steps", "10", "--dir", directory, "--shared-group-directory"] + Self.grid)
            #expect(!accepted.isEmpty)
        }
    }

    private func withScratch(_ body: (String) throws -> Void) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("heat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        try body(scratch.path)
    }

    /// Runs heat to completion; returns its stdout lines (or stderr's when it is expected to fail).
    private func run(_ arguments: [String], expectSuccess: Bool = true) throws -> [String] {
        try runExample(try Self.heat(), arguments, expectSuccess: expectSuccess)
    }
}
