import Foundation
import Testing

@testable import Checkpoint

/// Issue 12, items 5 and 10: `ckpt` never traps on the numbers of a crafted manifest, and never
/// prints a control character from a file.
@Suite struct HostileInputCommandTests {
    /// Replaces the value of every `"key" : value` in `step`'s manifest with `value` (JSON text, so
    /// numbers no `Codable` writer produces), and re-seals the checksum as a forger would.
    static func setManifestNumber(_ directory: String, step: Step, _ key: String, to value: String) throws {
        let folder = CheckpointDirectory(path: directory).path(for: step) + "/"
        let url = URL(fileURLWithPath: folder + Manifest.fileName)
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        let pattern = try NSRegularExpression(pattern: "\"\(key)\" : [-0-9.eE+]+")
        let edited = pattern.stringByReplacingMatches(
            in: text,
            range: NSRange(text.startIndex..., in: text),
            withTemplate: "\"\(key)\" : \(value)"
        )
        try #require(edited != text, "the manifest has a \(key)")
        try writeManifest(Array(edited.utf8), to: folder)
    }

    static func writeManifest(_ bytes: [UInt8], to folder: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: folder + Manifest.fileName))
        try Data((hexString(sha256(bytes)) + "  " + Manifest.fileName + "\n").utf8)
            .write(to: URL(fileURLWithPath: folder + Manifest.checksumFileName))
    }

    /// A number no writer records, in the field that held a real one.
    struct Hostile: CustomTestStringConvertible, Sendable {
        var key: String
        var value: String
        var testDescription: String { "\(key) = \(value)" }
    }

    static let hostile: [Hostile] = [
        Hostile(key: "fileBytes", value: "9223372036854775807"),
        Hostile(key: "storedBytes", value: "9223372036854775807"),
        Hostile(key: "rawBytes", value: "9223372036854775807"),
        Hostile(key: "rawBytes", value: "-1"),
        Hostile(key: "fileBytes", value: "-9223372036854775808"),
        Hostile(key: "chunks", value: "-5"),
        Hostile(key: "chunkSize", value: "-4096"),
        Hostile(key: "stageSeconds", value: "1e300"),
        Hostile(key: "commitSeconds", value: "-1e300"),
        Hostile(key: "writeSeconds", value: "1e-320"),
        // Beyond Double's range: infinity, if a JSON parser accepts it at all.
        Hostile(key: "syncSeconds", value: "1e999"),
        Hostile(key: "rawBytes", value: "1e300"),
    ]

    /// Both checkpoints get the number, so totals over several manifests overflow too.
    @Test(arguments: hostile)
    func commandsDoNotTrap(_ number: Hostile) throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [5, 6])
            for step: Step in [5, 6] {
                try Self.setManifestNumber(directory, step: step, number.key, to: number.value)
            }
            let output = directory + "/report.html"
            let runs: [[String]] = [
                ["list", directory], ["list", directory, "--json"], ["inspect", directory],
                ["inspect", directory, "--json"], ["report", directory, "-o", output],
                ["verify", directory, "--all"], ["verify", directory, "--all", "--json"],
            ]
            for arguments in runs {
                let result = try ckpt(arguments)
                // 0: ok; 1: a damaged checkpoint reported; 3: a failure reported. A trap is a signal.
                #expect([0, 1, 3].contains(result.status), "ckpt \(arguments): \(result)")
                #expect(!result.stderr.contains("Fatal error"), "ckpt \(arguments): \(result.stderr)")
            }
        }
    }

    @Test func negativeAndOverflowingNumbersAreRejectedWithAClearError() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [5])
            try Self.setManifestNumber(directory, step: 5, "rawBytes", to: "-1")
            let result = try ckpt("verify", directory, "--step", "5")
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.contains("manifestInvalid"), "\(result)")
            #expect(result.stdout.contains("negative raw size -1"), "\(result)")
        }
    }

    /// Strings from the manifest and the unchecksummed dump records reach no terminal raw.
    @Test func inspectEscapesControlCharacters() throws {
        try withTemporaryDirectory { directory in
            let configuration = Checkpointer.Configuration(
                policy: .always,
                threads: 1,
                chunkSize: 4096,
                metadata: ["title\u{1B}]0;owned\u{07}": "red\u{1B}[31m\u{0}\u{202E}txt"]
            )
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            try checkpointer.save(Simulation(seed: 1), step: 1)
            try checkpointer.finish()
            for arguments in [["inspect", directory], ["list", directory], ["verify", directory, "--all"]] {
                let result = try ckpt(arguments)
                #expect(result.status == 0, "\(result)")
                let controls = result.stdout.unicodeScalars.filter {
                    $0 != "\n" && PrintableText.needsEscape($0)
                }
                #expect(controls.isEmpty, "ckpt \(arguments) printed \(controls.map(\.value))")
            }
            let inspect = try ckpt("inspect", directory)
            #expect(
                inspect.stdout.contains("title\\u{1B}]0;owned\\u{7} = red\\u{1B}[31m\\u{0}\\u{202E}txt"),
                "\(inspect)"
            )
            let output = directory + "/report.html"
            #expect(try ckpt("report", directory, "-o", output).status == 0)
            let page = try String(contentsOfFile: output, encoding: .utf8)
            #expect(!page.unicodeScalars.contains { $0 != "\n" && $0 != "\t" && PrintableText.needsEscape($0) })
        }
    }

    @Test func errorsEscapeNamesFromFiles() throws {
        #expect {
            try EntryName.validate("a\u{0}b\u{1B}[2J")
        } throws: { error in
            let message = (error as? CheckpointError)?.message ?? ""
            return message.contains("a\\u{0}b\\u{1B}[2J") && !message.unicodeScalars.contains { $0.value < 0x20 }
        }
    }

    @Test(arguments: [
        ("plain name/with-dots_1.0", "plain name/with-dots_1.0"),
        ("tab\there", "tab\\there"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("nul\u{0}del\u{7F}c1\u{9B}", "nul\\u{0}del\\u{7F}c1\\u{9B}"),
        ("bidi\u{202E}zero\u{200B}", "bidi\\u{202E}zero\\u{200B}"),
        ("température ✓ 温度", "température ✓ 温度"),
    ])
    func printableText(_ input: String, _ expected: String) {
        #expect(PrintableText.escaped(input) == expected)
    }
}
