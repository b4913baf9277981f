import Foundation
import Testing

/// A short, fixed-seed run of the fault-injection harness (`Scripts/torture` runs it long): a few
/// crashes, corruptions, full disks and storage faults, and not one may lose data.
@Suite("Fault-injection harness")
struct TortureTests {
    @Test("torture --trials 3 --seed 1: every kind, nothing lost")
    func shortRun() throws {
        let directory = try ckptExecutable().deletingLastPathComponent()
        let torture = directory.appendingPathComponent("torture")
        try #require(
            FileManager.default.isExecutableFile(atPath: torture.path),
            "build the harness first: swift build --product torture"
        )
        let result = try runProgram(torture, ["--trials", "3", "--seed", "1", "--no-mpi"])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(result.status == 0, "\(result)")
        #expect(lines.last == "lost: 0", "\(result)")
        // Every kind has its table row (the tmpfs trials without root say there why they were skipped).
        func row(_ kind: String) -> String? {
            lines.first { $0.hasPrefix(kind.padding(toLength: 8, withPad: " ", startingAt: 0)) }
        }
        for kind in ["crash", "corrupt", "enospc", "storage"] {
            #expect(row(kind) != nil, "no table row for \(kind): \(result)")
        }
        #expect(row("crash")?.contains("bit-identical 3") == true, "\(result)")
        // The enospc trials mount small tmpfs file systems, which needs root: CI runs as root, and
        // there a skipped trial means the full-disk path silently stopped being tested.
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            #expect(row("enospc")?.contains("skipped") == false, "enospc trials skipped under CI: \(result)")
        }
        // The crash and storage kinds draw combinations of options; each drawn one has its row.
        for kind in ["crash", "storage"] {
            let rows = lines.drop { !$0.hasPrefix(kind + "   ") }.dropFirst().prefix { $0.hasPrefix("  ") }
            #expect(!rows.isEmpty, "no combination rows under \(kind): \(result)")
            #expect(rows.reduce(0) { $0 + (Int($1.split(separator: " ")[1]) ?? 0) } == 3, "\(result)")
        }
    }

    @Test("--trials-per-combination N runs N trials of each selected combination, a row each")
    func perCombination() throws {
        let torture = try ckptExecutable().deletingLastPathComponent().appendingPathComponent("torture")
        try #require(FileManager.default.isExecutableFile(atPath: torture.path), "build it: swift build")
        let result = try runProgram(
            torture,
            ["--kinds", "storage", "--trials-per-combination", "2", "--combinations", "plain,marker", "--seed", "3"]
        )
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(result.status == 0, "\(result)")
        #expect(lines.last == "lost: 0", "\(result)")
        for name in ["plain", "marker"] {
            let row = lines.first { $0.hasPrefix("  \(name) ") }?.split(separator: " ")
            #expect(row?[1] == "2", "\(name): \(result)")
        }
        #expect(lines.first { $0.hasPrefix("storage   ") }?.split(separator: " ")[1] == "4", "\(result)")
    }

    @Test("A bad argument gets a clear error, not a run")
    func badArguments() throws {
        let torture = try ckptExecutable().deletingLastPathComponent().appendingPathComponent("torture")
        try #require(FileManager.default.isExecutableFile(atPath: torture.path), "build it: swift build")
        let result = try runProgram(torture, ["--kinds", "crash,meltdown"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("unknown kind 'meltdown'"), "\(result)")
        let combination = try runProgram(torture, ["--kinds", "crash", "--combinations", "plain,warp"])
        #expect(combination.status != 0)
        #expect(combination.stderr.contains("unknown combination 'warp'; use plain, async"), "\(combination)")
        let none = try runProgram(torture, ["--kinds", "storage", "--combinations", "async+dumps"])
        #expect(none.status != 0)
        #expect(none.stderr.contains("--combinations names none of the storage kind's"), "\(none)")
    }
}
