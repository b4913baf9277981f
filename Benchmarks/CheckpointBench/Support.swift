import CZstd
import Checkpoint
import Foundation
import Logging

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The best (minimum) wall time of `repetitions` runs of `body`.
func measure(_ repetitions: Int, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<repetitions {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return best
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Runs a shell command and returns its exit status.
@discardableResult
func shell(_ command: String) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// A quiet logger: the benchmark prints its own tables.
var quietLogger: Logger {
    var logger = Logger(label: "checkpoint-bench")
    logger.logLevel = .warning
    return logger
}

private func lcg(_ state: inout UInt64) -> UInt64 {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return state
}

/// A smooth simulation field with small noise (`noise` times a uniform value in [-0.5, 0.5)).
func smoothField(_ count: Int, noise amplitude: Double = 0.001) -> [Double] {
    var state: UInt64 = 42
    return (0..<count).map { index in
        let noise = Double(lcg(&state) >> 11) / Double(1 << 53) - 0.5
        return sin(Double(index) * 1e-4) * 300 + amplitude * noise
    }
}

/// Uniform doubles in [0, 1).
func randomDoubles(_ count: Int) -> [Double] {
    var state: UInt64 = 7
    return (0..<count).map { _ in Double(lcg(&state) >> 11) / Double(1 << 53) }
}

/// `Int64`s, 98 % zeros.
func sparseIntegers(_ count: Int) -> [Int64] {
    var state: UInt64 = 3
    return (0..<count).map { _ in
        let value = lcg(&state)
        return value % 50 == 0 ? Int64(value >> 40) : 0
    }
}

/// One array, saved raw.
struct Field<Element: BitwiseCopyable>: Checkpointable {
    var values: [Element]
    func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "field") }
    init(values: [Element]) { self.values = values }
    init(from reader: SnapshotReader) throws { values = try reader.read([Element].self, "field") }
}

/// Nothing at all: measures the coordination and commit alone.
struct Empty: Checkpointable {
    init() {}
    func save(to writer: inout SnapshotWriter) throws {}
    init(from reader: SnapshotReader) throws {}
}

/// libzstd, multithreaded, on the raw bytes, with the same level and thread count: the reference.
func zstdCompress(_ bytes: UnsafeRawBufferPointer, level: Int, threads: Int) -> [UInt8] {
    let context = ZSTD_createCCtx()!
    defer { ZSTD_freeCCtx(context) }
    ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
    ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    if threads > 1 { ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, Int32(threads)) }
    var output = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
    let size = output.withUnsafeMutableBytes { out in
        ZSTD_compress2(context, out.baseAddress, out.count, bytes.baseAddress, bytes.count)
    }
    precondition(ZSTD_isError(size) == 0)
    output.removeSubrange(size...)
    return output
}

/// Writes a file and `fsync`s it.
func writeSynced(_ bytes: [UInt8], to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { throw Failure("cannot create \(path)") }
    defer { close(fd) }
    try bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
            guard written > 0 else { throw Failure("write failed on \(path)") }
            offset += written
        }
    }
    fsync(fd)
}

/// One line of the markdown table.
struct Row {
    var name: String
    var value: Double
    var unit: String
    var note: String
}

/// Progress on standard error, so `--json` output stays clean.
func progress(_ line: String) {
    FileHandle.standardError.write(Data(("· " + line + "\n").utf8))
}
