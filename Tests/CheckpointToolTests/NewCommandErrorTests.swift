import Checkpoint
import Foundation
import Testing

/// Bad input to `extract`, `diff`, `prune` and `report`: one `error:` line and exit status 2.
@Suite struct NewCommandErrorTests {
    /// Each command's arguments after the directory.
    static let commands: [(String, [String])] = [
        ("extract", ["--entry", "field", "-o", "/dev/null/x.npy"]),
        ("diff", ["--step", "1", "--step", "2"]),
        ("prune", ["--keep", "1"]),
        ("report", ["-o", "/dev/null/report.html"]),
    ]

    @Test(arguments: commands)
    func missingDirectoryExitsTwo(command: String, arguments: [String]) throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString)").path
        let result = try ckpt([command, missing] + arguments)
        #expect(result.status == 2, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.errorLines.count == 1, "one line: \(result)")
        #expect(result.errorLines.first?.hasPrefix("error: ") == true)
        #expect(result.stderr.contains(missing))
    }

    @Test(arguments: commands)
    func aFileInsteadOfADirectoryExitsTwo(command: String, arguments: [String]) throws {
        try withTemporaryDirectory { directory in
            let file = directory + "/not-a-directory"
            try Data("hello".utf8).write(to: URL(fileURLWithPath: file))
            let result = try ckpt([command, file] + arguments)
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains("not a directory"), "\(result)")
        }
    }

    @Test(arguments: ["extract", "diff", "report"])
    func foreignManifestIsCorruption(command: String) throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            let folder = CheckpointDirectory(path: directory).path(for: 2)
            try Data("{\"not\": \"a manifest\"}\n".utf8).write(to: URL(fileURLWithPath: folder + "/manifest.json"))
            let arguments: [String] =
                switch command {
                case "extract": ["--entry", "time", "-o", directory + "/x.npy"]
                case "diff": ["--step", "1", "--step", "2"]
                default: ["-o", directory + "/report.html"]
                }
            let result = try ckpt([command, directory] + arguments)
            if command == "report" {
                #expect(result.status == 0, "the report lists it and goes on: \(result)")
            } else {
                #expect(result.status == 1, "\(result)")
                #expect(result.errorLines.count == 1, "one line: \(result)")
                #expect(result.stderr.contains("manifest"), "\(result)")
            }
        }
    }

    @Test func helpListsTheNewCommands() throws {
        let result = try ckpt("--help")
        #expect(result.status == 0, "\(result)")
        for command in ["extract", "diff", "prune", "report"] {
            #expect(result.stdout.contains(command), "missing '\(command)'")
        }
        for command in ["extract", "diff", "prune", "report"] {
            let help = try ckpt(command, "--help")
            #expect(help.status == 0, "\(help)")
            #expect(help.stdout.contains("USAGE: ckpt \(command)"), "\(help)")
        }
    }
}

/// The progress bar: drawn on a terminal, silent otherwise.
@Suite struct ProgressBarTests {
    /// util-linux `script` runs a command on a pseudo-terminal.
    static var script: String? {
        #if os(Linux)
        for path in ["/usr/bin/script", "/bin/script"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        #endif
        return nil
    }

    @Test func silentWhenStandardErrorIsAFile() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2, 3])
            let result = try ckpt("verify", directory, "--all")
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
        }
    }

    @Test(.enabled(if: ProgressBarTests.script != nil, "needs util-linux script to run ckpt on a terminal"))
    func drawnOnATerminal() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2, 3])
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.script!)
            let command = [try ckptExecutable().path, "verify", directory, "--all"].map { "'\($0)'" }
            process.arguments = ["-qec", command.joined(separator: " "), "/dev/null"]
            let output = Pipe()
            process.standardOutput = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(text)")
            #expect(text.contains("verifying step 3"), "\(text)")
            #expect(text.contains("100%"), "\(text)")
            #expect(text.contains("step 3: ok"), "\(text)")
        }
    }
}
