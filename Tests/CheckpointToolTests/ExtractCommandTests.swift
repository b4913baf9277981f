import Checkpoint
import Foundation
import Testing

/// `ckpt extract`.
@Suite struct ExtractCommandTests {
    /// An entry of ``MixedState`` and what its `.npy` file must say.
    struct Case: Sendable, CustomTestStringConvertible {
        var entry: String
        var descriptor: String
        var shape: [Int]
        /// NumPy's name of the dtype.
        var dtype: String

        var testDescription: String { entry }

        /// The shape as Python prints a tuple: `()`, `(5,)`, `(3, 4)`.
        var pythonShape: String {
            shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }

        /// The entry's values as little-endian bytes.
        var expectedBytes: [UInt8] {
            let state = MixedState()
            switch entry {
            case "field": return littleEndianBytes(state.field)
            case "counts": return littleEndianBytes(state.counts)
            case "flags": return littleEndianBytes(state.flags)
            case "velocities": return littleEndianBytes(state.velocities)
            case "nested/bytes": return state.bytes
            case "time": return littleEndianBytes([state.time])
            #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
            case "half": return littleEndianBytes(state.half)
            #endif
            default: return []
            }
        }
    }

    static var cases: [Case] {
        var cases = [
            Case(entry: "field", descriptor: "<f8", shape: MixedState.fieldShape, dtype: "float64"),
            Case(entry: "counts", descriptor: "<i4", shape: [5], dtype: "int32"),
            Case(entry: "flags", descriptor: "|b1", shape: [4], dtype: "bool"),
            Case(entry: "velocities", descriptor: "<f4", shape: [3, 4], dtype: "float32"),
            Case(entry: "nested/bytes", descriptor: "|u1", shape: [10], dtype: "uint8"),
            Case(entry: "time", descriptor: "<f8", shape: [], dtype: "float64"),
        ]
        #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
        cases.append(Case(entry: "half", descriptor: "<f2", shape: [6], dtype: "float16"))
        #endif
        return cases
    }

    /// A `.npy` file taken apart by hand.
    struct ParsedNumpy {
        var version: [UInt8]
        var headerEnd: Int
        var dictionary: String
        var data: [UInt8]

        init(_ bytes: [UInt8]) throws {
            try #require(bytes.count >= 10, "too short for a .npy file")
            #expect(Array(bytes[0..<6]) == [0x93] + Array("NUMPY".utf8), "magic")
            version = Array(bytes[6..<8])
            let length = Int(bytes[8]) | Int(bytes[9]) << 8
            headerEnd = 10 + length
            try #require(headerEnd <= bytes.count)
            #expect(bytes[headerEnd - 1] == 0x0A, "the header ends in a newline")
            let text = String(decoding: bytes[10..<headerEnd - 1], as: UTF8.self)
            #expect(!text.hasSuffix(" \n"))
            dictionary = String(text.reversed().drop(while: { $0 == " " }).reversed())
            data = Array(bytes[headerEnd...])
        }

        /// The `shape` tuple's numbers.
        var shape: [Int]? {
            guard let start = dictionary.range(of: "'shape': (")?.upperBound,
                let end = dictionary[start...].firstIndex(of: ")")
            else { return nil }
            return dictionary[start..<end].split(separator: ",").compactMap {
                Int($0.trimmingCharacters(in: .whitespaces))
            }
        }
    }

    @Test(arguments: cases)
    func npyRoundTrip(_ testCase: Case) throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let output = directory + "/out.npy"
            let result = try ckpt("extract", directory, "--entry", testCase.entry, "-o", output)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("wrote \(output)"), "\(result)")
            #expect(result.stderr.isEmpty, "no progress bar when standard error is not a terminal: \(result)")

            let file = try fileBytes(output)
            let parsed = try ParsedNumpy(file)
            #expect(parsed.version == [1, 0])
            #expect(parsed.headerEnd % 64 == 0, "header of \(parsed.headerEnd) bytes")
            #expect(
                parsed.dictionary
                    == "{'descr': '\(testCase.descriptor)', 'fortran_order': False, 'shape': \(testCase.pythonShape), }"
            )
            #expect(parsed.shape == testCase.shape)
            #expect(parsed.data == testCase.expectedBytes)

            switch try runPython(
                "import sys, numpy; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape, a.tobytes().hex())",
                [output]
            ) {
            case .unavailable(let reason):
                try toolUnavailable("the NumPy check of '\(testCase.entry)': \(reason)")
            case .output(let line):
                let hex = testCase.expectedBytes.map { String(format: "%02x", $0) }.joined()
                #expect(line == "\(testCase.dtype) \(testCase.pythonShape) \(hex)")
            }
        }
    }

    @Test func rawWritesTheBytesAsTheyAre() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let state = MixedState()
            for (entry, expected) in [
                ("field", littleEndianBytes(state.field)), ("particles", littleEndianBytes(state.particles)),
            ] {
                let output = directory + "/\(entry).bin"
                let result = try ckpt("extract", directory, "--entry", entry, "--format", "raw", "-o", output)
                #expect(result.status == 0, "\(result)")
                #expect(try fileBytes(output) == expected, "\(entry)")
            }
            let output = directory + "/parameters.json"
            let result = try ckpt("extract", directory, "--entry", "parameters", "--format", "raw", "-o", output)
            #expect(result.status == 0, "\(result)")
            let parameters = try JSONDecoder().decode(Simulation.Parameters.self, from: Data(try fileBytes(output)))
            #expect(parameters.name == state.parameters.name)
            #expect(parameters.viscosity == state.parameters.viscosity)
        }
    }

    /// The parts of `ckpt extract --json` the tests look at.
    struct Summary: Decodable {
        var step: UInt64
        var rank: Int
        var entry: String
        var format: String
        var path: String
        var bytes: Int
        var dtype: String?
        var shape: [Int]
    }

    @Test func jsonSummaryAndStepSelection() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [1, 2]) { step in
                var state = MixedState()
                state.time = Double(step.rawValue)
                return state
            }
            let output = directory + "/time.npy"
            let result = try ckpt("extract", directory, "--step", "1", "--entry", "time", "-o", output, "--json")
            #expect(result.status == 0, "\(result)")
            let summary = try decodeJSON(Summary.self, result)
            #expect(summary.step == 1)
            #expect(summary.rank == 0)
            #expect(summary.entry == "time")
            #expect(summary.format == "npy")
            #expect(summary.path == output)
            #expect(summary.dtype == "<f8")
            #expect(summary.shape == [])
            let file = try fileBytes(output)
            #expect(summary.bytes == file.count)
            #expect(try ParsedNumpy(file).data == littleEndianBytes([1.0]), "step 1's value, not the newest")
        }
    }

    @Test(arguments: ["particles", "parameters"])
    func entriesWithoutADtypeNeedRaw(entry: String) throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let output = directory + "/out.npy"
            let result = try ckpt("extract", directory, "--entry", entry, "-o", output)
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.errorLines.first?.hasPrefix("error: ") == true)
            #expect(result.stderr.contains("--format raw"), "\(result)")
            #expect(result.stderr.contains(entry))
            #expect(!FileManager.default.fileExists(atPath: output), "nothing is written")
        }
    }

    @Test func unknownEntryExitsTwoListingTheEntries() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let result = try ckpt("extract", directory, "--entry", "nope", "-o", directory + "/out.npy")
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains("'nope'"))
            #expect(result.stderr.contains("'field'"), "names the entries there are: \(result)")
        }
    }

    @Test func existingOutputIsKeptUnlessForced() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let output = directory + "/out.npy"
            try Data("keep me".utf8).write(to: URL(fileURLWithPath: output))
            let refused = try ckpt("extract", directory, "--entry", "field", "-o", output)
            #expect(refused.status == 2, "\(refused)")
            #expect(refused.errorLines.count == 1, "one line: \(refused)")
            #expect(refused.stderr.contains("--force"))
            #expect(try fileBytes(output) == Array("keep me".utf8), "the file is untouched")

            let forced = try ckpt("extract", directory, "--entry", "field", "-o", output, "--force")
            #expect(forced.status == 0, "\(forced)")
            #expect(try ParsedNumpy(try fileBytes(output)).data == littleEndianBytes(MixedState().field))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
                $0.hasSuffix(".tmp")
            }
            #expect(leftovers.isEmpty, "no temporary files are left: \(leftovers)")
        }
    }

    @Test(arguments: [
        (["--rank", "1"], "no rank 1"),
        (["--step", "99"], "99"),
    ])
    func unknownRankOrStepExitsTwo(arguments: [String], message: String) throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let result = try ckpt(["extract", directory, "--entry", "field", "-o", directory + "/x.npy"] + arguments)
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains(message), "\(result)")
        }
    }

    @Test func missingOutputFolderExitsTwo() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [3]) { _ in MixedState() }
            let result = try ckpt("extract", directory, "--entry", "field", "-o", directory + "/no/such/out.npy")
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains("folder does not exist"), "\(result)")
        }
    }

    @Test(arguments: [
        ["extract", "/tmp", "--entry", "x"],
        ["extract", "/tmp", "-o", "/tmp/x.npy"],
        ["extract", "/tmp", "--entry", "x", "-o", "/tmp/x.npy", "--format", "csv"],
        ["extract", "/tmp", "--entry", "x", "-o", "/tmp/x.npy", "--rank", "-2"],
    ])
    func badArgumentsExitTwo(arguments: [String]) throws {
        let result = try ckpt(arguments)
        #expect(result.status == 2, "\(result)")
        #expect(result.errorLines.count == 1, "one line: \(result)")
        #expect(result.errorLines.first?.hasPrefix("error: ") == true)
    }
}
