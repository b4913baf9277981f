import Checkpoint
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What one run of `ckpt` did.
struct ToolResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    /// The non-empty lines of standard error.
    var errorLines: [String] { stderr.split(separator: "\n").map(String.init) }

    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// The `ckpt` executable this test bundle was built with.
///
/// It lives in the products directory beside the test bundle (`.build/debug/ckpt` next to
/// `…PackageTests.xctest`); `CKPT_EXECUTABLE` overrides. When it is missing the tests fail:
/// build it first with `swift build` (or `swift build --product ckpt`).
func ckptExecutable() throws -> URL {
    let fileManager = FileManager.default
    if let override = ProcessInfo.processInfo.environment["CKPT_EXECUTABLE"] {
        guard fileManager.isExecutableFile(atPath: override) else {
            throw ToolMissing(message: "CKPT_EXECUTABLE=\(override) is not an executable file")
        }
        return URL(fileURLWithPath: override)
    }
    var searched: [String] = []
    for start in [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])].compactMap({ $0 }) {
        // The test binary is `debug/X.xctest` on Linux and `debug/X.xctest/Contents/MacOS/X` on macOS;
        // either way `ckpt` is in the directory that holds the `.xctest`.
        var bundle = start.resolvingSymlinksInPath()
        while bundle.pathExtension != "xctest" && bundle.pathComponents.count > 1 { bundle.deleteLastPathComponent() }
        if bundle.pathExtension != "xctest" { bundle = start.resolvingSymlinksInPath() }
        let candidate = bundle.deletingLastPathComponent().appendingPathComponent("ckpt")
        if fileManager.isExecutableFile(atPath: candidate.path) { return candidate }
        if !searched.contains(candidate.path) { searched.append(candidate.path) }
    }
    throw ToolMissing(
        message:
            "the ckpt executable was not found beside the test bundle (looked at \(searched.joined(separator: ", "))); "
            + "run `swift build` before `swift test`, or set CKPT_EXECUTABLE"
    )
}

/// The `ckpt` executable was not built.
struct ToolMissing: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Runs `ckpt` with `arguments` and waits for it to exit.
func ckpt(_ arguments: String...) throws -> ToolResult { try ckpt(arguments) }

/// Runs `ckpt` with `arguments` and waits for it to exit.
func ckpt(_ arguments: [String]) throws -> ToolResult { try runProgram(try ckptExecutable(), arguments) }

/// Runs an example program to the end and returns its stdout lines, or its stderr lines when it is
/// expected to fail; records an issue when its exit status is not as expected.
func runExample(_ executable: URL, _ arguments: [String], expectSuccess: Bool = true) throws -> [String] {
    let result = try runProgram(executable, arguments)
    #expect((result.status == 0) == expectSuccess, "\(executable.lastPathComponent) \(arguments): \(result.stderr)")
    return (expectSuccess ? result.stdout : result.stderr).split(separator: "\n").map(String.init)
}

/// Runs a program with `arguments` and waits for it to exit.
func runProgram(_ executable: URL, _ arguments: [String]) throws -> ToolResult {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    // Files rather than pipes: the child can never block on a full pipe that nobody is reading.
    let outputURL = scratch.appendingPathComponent("stdout")
    let errorURL = scratch.appendingPathComponent("stderr")
    for url in [outputURL, errorURL] where !FileManager.default.createFile(atPath: url.path, contents: nil) {
        throw ToolMissing(message: "could not create \(url.path) for the output of \(executable.lastPathComponent)")
    }
    let output = try FileHandle(forWritingTo: outputURL)
    let error = try FileHandle(forWritingTo: errorURL)
    defer {
        try? output.close()
        try? error.close()
    }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = error
    try process.run()
    process.waitUntilExit()
    return ToolResult(
        status: process.terminationStatus,
        stdout: String(decoding: try Data(contentsOf: outputURL), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: errorURL), as: UTF8.self)
    )
}

/// Decodes `ckpt … --json` output.
func decodeJSON<Value: Decodable>(_ type: Value.Type, _ result: ToolResult) throws -> Value {
    try JSONDecoder().decode(Value.self, from: Data(result.stdout.utf8))
}

/// A fresh directory under the system temporary directory, removed afterwards.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-tool-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Simulation-like state: a noisy 2-D field (poorly compressible, so it fills most of the shard),
/// a scalar and `Codable` parameters.
struct Simulation: Checkpointable {
    /// Parameters saved as JSON.
    struct Parameters: Codable {
        var name: String
        var viscosity: Double
    }

    static let rows = 64
    static let columns = 32

    var temperature: [Double]
    var time: Double
    var parameters: Parameters

    init(seed: UInt64) {
        var state = seed
        temperature = (0..<Self.rows * Self.columns).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        time = Double(seed)
        parameters = Parameters(name: "test", viscosity: 0.25)
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(temperature, as: "temperature", shape: [Self.rows, Self.columns])
        try writer.write(value: time, as: "time")
        try writer.encode(parameters, as: "parameters")
    }

    init(from reader: SnapshotReader) throws {
        temperature = try reader.read([Double].self, "temperature")
        time = try reader.read(Double.self, "time")
        parameters = try reader.decode(Parameters.self, "parameters")
    }
}

/// Saves one checkpoint of ``Simulation`` per step into `directory` and returns their manifests.
///
/// The checkpointer (which locks the directory) is released before this returns.
@discardableResult
func makeCheckpoints(in directory: String, steps: [Step]) throws -> [Manifest] {
    let configuration = Checkpointer.Configuration(
        policy: .always,
        retention: .init(keepLast: 10),
        threads: 2,
        chunkSize: 4096,
        metadata: ["run": "tool-test"]
    )
    let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
    return try steps.map { step in try checkpointer.save(Simulation(seed: step.rawValue), step: step) }
}

/// The path of rank 0's shard in the checkpoint of `step`.
func shardPath(_ directory: String, step: Step) -> String {
    CheckpointDirectory(path: directory).path(for: step) + "/" + CheckpointDirectory.shardFileName(rank: 0)
}

/// Inverts one byte in the middle of a file, where the field's chunk data lies.
func flipMiddleByte(of path: String) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    bytes[bytes.count / 2] ^= 0xFF
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// The first line an example prints when started on `directory`: where it must resume, the newest
/// committed checkpoint (`resumed-from: N`), or `fresh-start` when there is none.
func expectedStartLine(_ directory: String) -> String {
    guard let newest = try? CheckpointDirectory(path: directory).committedSteps().last else { return "fresh-start" }
    return "resumed-from: \(newest)"
}

/// What ``killRepeatedly(_:_:directory:attempts:)`` saw.
struct Kills {
    /// Runs really killed (a run may finish first).
    var count = 0
    /// Each run's first line, with the one expected from the checkpoints committed before it started.
    var starts: [(printed: String, expected: String)] = []
    /// The runs that resumed from a checkpoint (not from the start).
    var resumed: Int { starts.filter { $0.expected != "fresh-start" }.count }
}

/// Starts `executable` with `arguments` `attempts` times, killing each run with SIGKILL, and
/// records where each run resumed: a run that silently started over would still end with the right
/// checksum, so the checksum alone proves nothing about resuming.
///
/// The first run is killed once it has committed a checkpoint in `directory` (waiting for that,
/// not for a time), so that later runs have one to resume from; the others at a random moment
/// (10–250 ms in).
func killRepeatedly(_ executable: URL, _ arguments: [String], directory: String, attempts: Int = 6) throws -> Kills {
    var generator = SystemRandomNumberGenerator()
    var kills = Kills()
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-kills-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    for attempt in 0..<attempts {
        let expected = expectedStartLine(directory)
        let outputURL = scratch.appendingPathComponent("stdout-\(attempt)")
        guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
            throw ToolMissing(message: "could not create \(outputURL.path)")
        }
        let output = try FileHandle(forWritingTo: outputURL)
        defer { try? output.close() }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        if attempt == 0 {
            while process.isRunning && (try? CheckpointDirectory(path: directory).committedSteps().isEmpty) != false {
                usleep(1_000)
            }
        } else {
            usleep(UInt32.random(in: 10_000...250_000, using: &generator))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            kills.count += 1
        }
        process.waitUntilExit()
        // The examples write each line unbuffered: a run killed after its first line has it here.
        let text = String(decoding: try Data(contentsOf: outputURL), as: UTF8.self)
        if let first = text.split(separator: "\n").first { kills.starts.append((String(first), expected)) }
    }
    return kills
}

/// Checks that every run started where the checkpoints committed before it said it must: after
/// `kills`, and for the `final` run's lines (started on the checkpoints `finalExpected` described).
func expectResumedWhereCommitted(
    _ kills: Kills,
    final: [String],
    finalExpected: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    for (index, start) in kills.starts.enumerated() {
        #expect(start.printed == start.expected, "run \(index + 1)", sourceLocation: sourceLocation)
    }
    #expect(final.first == finalExpected, "the final run", sourceLocation: sourceLocation)
    // The first run was killed only after it had committed a checkpoint (or it finished): the
    // final run, at least, resumes from one.
    #expect(finalExpected != "fresh-start", "no run resumed from a checkpoint", sourceLocation: sourceLocation)
}

/// Ends the current test (or test case) because a tool or permission it needs is missing.
///
/// Outside CI the test is cancelled: it shows as skipped (cancelled), with the reason, not as passed. Under CI
/// (`CI=true`, as `.ci/run` is run) it fails instead: `Scripts/bootstrap` installs every tool the
/// tests use and CI runs as root, so a missing one means that a check silently stopped running.
func toolUnavailable(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Never {
    if ProcessInfo.processInfo.environment["CI"] == "true" { throw UnavailableTool(reason: reason) }
    // Swift Testing's console shows a cancelled test, but not a cancelled case of a parameterized
    // one: say it here too.
    print("skipped: \(reason)")
    try Test.cancel("skipped: \(reason)", sourceLocation: sourceLocation)
}

/// A tool or permission a test needs is missing under CI.
struct UnavailableTool: Error, CustomStringConvertible {
    var reason: String
    var description: String { "\(reason) (CI=true: Scripts/bootstrap installs every tool the tests use)" }
}
