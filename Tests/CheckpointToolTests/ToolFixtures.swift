import Checkpoint
import Foundation
import Testing

/// State with one entry of each kind the tool treats differently: numeric arrays of several
/// scalar types and shapes, SIMD vectors, a single value, plain structs and a `Codable` value.
struct MixedState: Checkpointable {
    /// A plain struct: saved as opaque bytes, with no NumPy dtype.
    struct Particle: BitwiseCopyable, Equatable {
        var position: Double
        // 64 bits, so that the struct has no padding bytes (whose values are undefined).
        var id: Int64
    }

    var field: [Double] = (0..<12).map { Double($0) * 0.5 - 1 }
    var counts: [Int32] = [3, -1, 4, -1, 5]
    var flags: [Bool] = [true, false, false, true]
    var velocities: [SIMD4<Float>] = (0..<3).map { SIMD4<Float>(Float($0), 1.5, -2, 0.25) }
    #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
    var half: [Float16] = [0.5, -1, 2, 65504, -0.25, 0]
    #endif
    var bytes: [UInt8] = Array(0..<10)
    var particles: [Particle] = [Particle(position: 1.5, id: 7), Particle(position: -3, id: 9)]
    var time: Double = 12.25
    var parameters = Simulation.Parameters(name: "mixed", viscosity: 0.5)

    /// The shape `field` is saved with.
    static let fieldShape = [3, 4]

    init() {}

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(field, as: "field", shape: Self.fieldShape)
        try writer.write(counts, as: "counts")
        try writer.write(flags, as: "flags")
        try writer.write(velocities, as: "velocities")
        #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
        try writer.write(half, as: "half")
        #endif
        try writer.write(bytes, as: "nested/bytes")
        try writer.write(particles, as: "particles")
        try writer.write(value: time, as: "time")
        try writer.encode(parameters, as: "parameters")
    }

    init(from reader: SnapshotReader) throws {
        field = try reader.read([Double].self, "field")
        counts = try reader.read([Int32].self, "counts")
        flags = try reader.read([Bool].self, "flags")
        velocities = try reader.read([SIMD4<Float>].self, "velocities")
        #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
        half = try reader.read([Float16].self, "half")
        #endif
        bytes = try reader.read([UInt8].self, "nested/bytes")
        particles = try reader.read([Particle].self, "particles")
        time = try reader.read(Double.self, "time")
        parameters = try reader.decode(Simulation.Parameters.self, "parameters")
    }
}

/// State whose entries are whatever a test puts in it: name → (values, shape).
struct NamedArrays: Checkpointable {
    var doubles: [String: [Double]] = [:]
    var integers: [String: [Int64]] = [:]
    var floats: [String: [Float]] = [:]

    init() {}

    func save(to writer: inout SnapshotWriter) throws {
        for (name, values) in doubles.sorted(by: { $0.key < $1.key }) { try writer.write(values, as: name) }
        for (name, values) in integers.sorted(by: { $0.key < $1.key }) { try writer.write(values, as: name) }
        for (name, values) in floats.sorted(by: { $0.key < $1.key }) { try writer.write(values, as: name) }
    }

    init(from reader: SnapshotReader) throws {}
}

/// The little-endian bytes of an array, as the tool writes them.
func littleEndianBytes<Element: BitwiseCopyable>(_ array: [Element]) -> [UInt8] {
    array.withUnsafeBytes { Array($0) }
}

/// Saves `state(step)` as the checkpoint of each step, with a checkpointer that keeps them all,
/// and releases the checkpointer (and so the directory's lock) before returning.
@discardableResult
func saveCheckpoints(
    in directory: String,
    steps: [Step],
    metadata: [String: String] = [:],
    _ state: (Step) -> any Checkpointable
) throws -> [Manifest] {
    let configuration = Checkpointer.Configuration(
        policy: .always,
        retention: .init(keepLast: 1_000),
        threads: 2,
        chunkSize: 4096,
        metadata: metadata
    )
    let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
    return try steps.map { step in try checkpointer.save(state(step), step: step) }
}

/// Saves one checkpoint of `step` from `ranks` in-process ranks; rank r saves `state(r)`.
func saveRanks(
    in directory: String,
    step: Step,
    ranks: Int,
    _ state: @escaping @Sendable (Int) -> NamedArrays
) throws {
    _ = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
        let configuration = Checkpointer.Configuration(
            policy: .always,
            retention: .init(keepLast: 1_000),
            threads: 1,
            chunkSize: 4096
        )
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: configuration
        )
        try checkpointer.save(state(communicator.rank), step: step)
        return true
    }
}

/// The bytes of a file.
func fileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The result of a Python snippet, or why it could not run (no python3, no NumPy).
enum PythonOutcome {
    case output(String)
    case unavailable(String)
}

/// Runs `python3 -c script arguments…` and returns its standard output, trimmed.
func runPython(_ script: String, _ arguments: [String]) throws -> PythonOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    do { try process.run() } catch { return .unavailable("python3 could not be started: \(error)") }
    let text = output.fileHandleForReading.readDataToEndOfFile()
    let diagnostics = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderr = String(decoding: diagnostics, as: UTF8.self)
    if process.terminationStatus == 127 { return .unavailable("python3 is not installed") }
    if stderr.contains("No module named 'numpy'") || stderr.contains("No module named numpy") {
        return .unavailable("NumPy is not installed for python3")
    }
    guard process.terminationStatus == 0 else {
        Issue.record("python3 failed (exit \(process.terminationStatus)): \(stderr)")
        return .output("")
    }
    return .output(String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
}
