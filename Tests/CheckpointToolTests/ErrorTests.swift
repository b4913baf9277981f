import Checkpoint
import Foundation
import Testing

/// Bad input: one `error:` line on standard error and the documented exit status.
@Suite struct ErrorTests {
    static let commands = ["list", "verify", "inspect"]

    @Test(arguments: commands)
    func missingDirectoryExitsTwo(command: String) throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString)").path
        let result = try ckpt(command, missing)
        #expect(result.status == 2, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.errorLines.count == 1, "one line: \(result)")
        #expect(result.errorLines.first?.hasPrefix("error: ") == true)
        #expect(result.stderr.contains(missing))
    }

    @Test(arguments: ["verify", "inspect"])
    func unknownStepExitsTwo(command: String) throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            let result = try ckpt(command, directory, "--step", "99")
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.errorLines.first?.hasPrefix("error: ") == true)
            #expect(result.stderr.contains("99"))
        }
    }

    @Test(arguments: ["verify", "inspect"])
    func noCheckpointsExitsTwo(command: String) throws {
        try withTemporaryDirectory { directory in
            let result = try ckpt(command, directory)
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains("no checkpoints"))
        }
    }

    @Test(arguments: [
        ["verify", "/tmp", "--step", "1", "--all"],
        ["list", "/tmp", "--bogus"],
        ["verify", "/tmp", "--step", "x"],
        ["inspect"],
        ["inspect", "/tmp", "--rank", "-1"],
        ["frobnicate"],
    ])
    func badArgumentsExitTwo(arguments: [String]) throws {
        let result = try ckpt(arguments)
        #expect(result.status == 2, "\(result)")
        #expect(result.errorLines.count == 1, "one line: \(result)")
        #expect(result.errorLines.first?.hasPrefix("error: ") == true)
    }

    @Test func helpDocumentsExitStatuses() throws {
        let result = try ckpt("--help")
        #expect(result.status == 0, "\(result)")
        for text in ["EXIT STATUS", "0  success", "1  corruption found", "2  bad input", "3  any other failure"] {
            #expect(result.stdout.contains(text), "missing '\(text)'")
        }
        for command in Self.commands { #expect(result.stdout.contains(command)) }
    }
}
