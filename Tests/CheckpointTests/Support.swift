import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

/// A fresh directory under the system temporary directory, removed afterwards.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Runs `body` as the only test with storage faults installed, and removes them afterwards.
///
/// Injected faults are process-wide (``StorageFaults``) and Swift Testing runs tests in parallel:
/// without taking turns, one test's `removeAll()` would clear another's faults mid-test.
func withStorageFaults<R>(_ body: () throws -> R) rethrows -> R {
    storageFaultTurn.lock()
    defer {
        StorageFaults.removeAll()
        storageFaultTurn.unlock()
    }
    return try body()
}

private let storageFaultTurn = NSLock()

/// Small chunks so tests cross chunk boundaries with small arrays.
func testConfiguration(
    compression: Checkpointer.Configuration.Compression = .zstd(level: 1),
    filter: FilterPolicy = .automatic,
    keepLast: Int = 3,
    threads: Int = 2
) -> Checkpointer.Configuration {
    Checkpointer.Configuration(
        policy: .always,
        retention: .init(keepLast: keepLast),
        compression: compression,
        threads: threads,
        chunkSize: 4096,
        filter: filter
    )
}

/// Saves `state` through a fresh checkpointer and restores it through another; returns the restored value.
func roundTrip<State: Checkpointable>(
    _ state: State,
    configuration: Checkpointer.Configuration = testConfiguration()
) throws -> State {
    try withTemporaryDirectory { directory in
        do {
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            try checkpointer.save(state, step: 7)
        }
        try CheckpointDirectory(path: directory).verify(step: 7)
        let restored = try Checkpointer(directory: directory, configuration: configuration).restoreLatest(State.self)
        #expect(restored?.step == 7)
        return try #require(restored).state
    }
}

/// One array of one element type, saved raw.
struct ArrayState<Element: BitwiseCopyable & Equatable>: Checkpointable, Equatable {
    var values: [Element]

    init(_ values: [Element]) { self.values = values }

    func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "values") }

    init(from reader: SnapshotReader) throws { values = try reader.read([Element].self, "values") }
}

/// Deterministic pseudo-random numbers (SplitMix64) so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A smooth field with noise, like a simulation's temperature.
func smoothField(_ count: Int, seed: UInt64 = 1) -> [Double] {
    var random = SplitMix64(seed: seed)
    return (0..<count).map { index in
        sin(Double(index) * 0.001) * 100 + Double.random(in: -0.01...0.01, using: &random)
    }
}

/// The shard file of rank 0 in the checkpoint of `step`.
func shardPath(_ directory: String, step: Step) -> String {
    CheckpointDirectory(path: directory).path(for: step) + "/" + CheckpointDirectory.shardFileName(rank: 0)
}

/// Reads a whole file.
func readFile(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

/// Replaces a file's contents (keeping the path).
func writeFile(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

extension CrashPoint {
    /// The points a plain commit to the shared directory (no redundancy, rename) passes through.
    static var commitPointsOfTheSharedStore: [CrashPoint] {
        [.shardWritten] + StoreCommitPoint.allCases.map(CrashPoint.committing)
    }
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
