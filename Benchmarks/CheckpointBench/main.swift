// checkpoint-bench: measures swift-checkpoint against references in the same run, on the same
// data and disk: memcpy, libzstd on the raw bytes (same level and threads), the zstd CLI, and
// Foundation's JSON and property-list encoders. Every figure is a ratio or a rate.
//
//     swift run -c release checkpoint-bench [--quick] [--json] [--size-mib N] [--dir DIR]

import CZstd
import Checkpoint
import Foundation
import Logging

struct Options {
    var quick = false
    var json = false
    var sizeMiB = 256
    var directory = FileManager.default.temporaryDirectory.path
    var level = 1
    var chunkMiB = 4

    init() throws {
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        var sizeGiven = false
        while let argument = arguments.next() {
            switch argument {
            case "--quick": quick = true
            case "--json": json = true
            case "--size-mib":
                guard let value = arguments.next().flatMap(Int.init), value > 0 else {
                    throw Failure("--size-mib needs a positive integer")
                }
                sizeMiB = value
                sizeGiven = true
            case "--dir":
                guard let value = arguments.next() else { throw Failure("--dir needs a path") }
                directory = value
            case "--level":
                guard let value = arguments.next().flatMap(Int.init) else { throw Failure("--level needs an integer") }
                level = value
            case "--chunk-mib":
                guard let value = arguments.next().flatMap(Int.init), value > 0, value <= 256 else {
                    throw Failure("--chunk-mib needs an integer from 1 to 256")
                }
                chunkMiB = value
            case "--help", "-h":
                print(
                    "usage: checkpoint-bench [--quick] [--json] [--size-mib N] [--dir DIR] [--level L] [--chunk-mib C]"
                )
                exit(0)
            default: throw Failure("unknown argument '\(argument)'; see --help")
            }
        }
        if quick && !sizeGiven { sizeMiB = 64 }
    }
}

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

@discardableResult
func shell(_ command: String) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// A smooth simulation field with small noise.
func smoothField(_ count: Int) -> [Double] {
    var state: UInt64 = 42
    return (0..<count).map { index in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let noise = Double(state >> 11) / Double(1 << 53) - 0.5
        return sin(Double(index) * 1e-4) * 300 + 0.001 * noise
    }
}

func randomDoubles(_ count: Int) -> [Double] {
    var state: UInt64 = 7
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53)
    }
}

func sparseIntegers(_ count: Int) -> [Int64] {
    var state: UInt64 = 3
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state % 50 == 0 ? Int64(state >> 40) : 0
    }
}

struct Field<Element: BitwiseCopyable>: Checkpointable {
    var values: [Element]
    func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "field") }
    init(values: [Element]) { self.values = values }
    init(from reader: SnapshotReader) throws { values = try reader.read([Element].self, "field") }
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

struct Row {
    var name: String
    var value: Double
    var unit: String
    var note: String
}

do {
    let options = try Options()
    let threads = Checkpointer.Configuration.defaultThreads
    let repetitions = options.quick ? 2 : 3
    let work = options.directory + "/checkpoint-bench-\(getpid())"
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: work) }
    let count = options.sizeMiB << 20 / 8
    let bytes = Double(count * 8)
    var rows: [Row] = []
    var results: [String: Any] = [
        "size_mib": options.sizeMiB, "level": options.level, "threads": threads, "chunk_mib": options.chunkMiB,
    ]
    func gbps(_ seconds: Double) -> Double { bytes / seconds / 1e9 }
    let hasCLI = (try? shell("command -v zstd >/dev/null 2>&1")) == 0

    var ratios: [String: Double] = [:]
    for (kind, makeState) in [
        ("smooth", { Field(values: smoothField(count)) as any Checkpointable }),
        ("random", { Field(values: randomDoubles(count)) as any Checkpointable }),
        ("integers", { Field(values: sparseIntegers(count)) as any Checkpointable }),
    ] as [(String, () -> any Checkpointable)] {
        if options.quick && kind != "smooth" && options.sizeMiB > 64 { continue }
        let state = makeState()
        let raw: [UInt8] = {
            var writer = SnapshotWriter()
            try! state.save(to: &writer)
            if let field = state as? Field<Double> { return field.values.withUnsafeBytes { Array($0) } }
            if let field = state as? Field<Int64> { return field.values.withUnsafeBytes { Array($0) } }
            return []
        }()

        // References: memcpy; libzstd on the raw bytes; the same plus write + fsync; the zstd CLI.
        var copy = [UInt8](repeating: 0, count: raw.count)
        let memcpySeconds = measure(repetitions) {
            copy.withUnsafeMutableBytes { target in raw.withUnsafeBytes { target.copyMemory(from: $0) } }
        }
        var frame: [UInt8] = []
        let zstdSeconds = measure(repetitions) {
            frame = raw.withUnsafeBytes { zstdCompress($0, level: options.level, threads: threads) }
        }
        let zstdWriteSeconds = try measure(repetitions) {
            let compressed = raw.withUnsafeBytes { zstdCompress($0, level: options.level, threads: threads) }
            try writeSynced(compressed, to: work + "/ref.zst")
        }

        // Ours: a full synchronous checkpoint (filter, compress, hash, write, fsync, commit).
        var configuration = Checkpointer.Configuration(
            policy: .never,
            compression: .zstd(level: options.level),
            chunkSize: options.chunkMiB << 20
        )
        configuration.retention.keepLast = 1
        let directory = work + "/ckpt-\(kind)"
        var logger = Logger(label: "checkpoint-bench")
        logger.logLevel = .warning
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration, logger: logger)
        var step = 0
        var manifest: Manifest?
        let saveSeconds = try measure(repetitions) {
            step += 1
            manifest = try checkpointer.save(state, step: Step(step))
        }
        let restoreSeconds = try measure(repetitions) {
            if state is Field<Int64> {
                _ = try checkpointer.restoreLatest(Field<Int64>.self)
            } else {
                _ = try checkpointer.restoreLatest(Field<Double>.self)
            }
        }
        let stored = Double(manifest!.storedBytes)
        ratios[kind] = bytes / stored

        rows.append(Row(name: "\(kind): memcpy", value: gbps(memcpySeconds), unit: "GB/s", note: "reference"))
        rows.append(
            Row(
                name: "\(kind): libzstd -\(options.level) (\(threads) threads), memory",
                value: gbps(zstdSeconds),
                unit: "GB/s",
                note: "ratio \(String(format: "%.2f", bytes / Double(frame.count)))"
            )
        )
        rows.append(
            Row(
                name: "\(kind): libzstd + write + fsync",
                value: gbps(zstdWriteSeconds),
                unit: "GB/s",
                note: "reference"
            )
        )
        rows.append(
            Row(
                name: "\(kind): checkpoint save (sync)",
                value: gbps(saveSeconds),
                unit: "GB/s",
                note: "ratio \(String(format: "%.2f", bytes / stored))"
            )
        )
        rows.append(
            Row(name: "\(kind): checkpoint restore", value: gbps(restoreSeconds), unit: "GB/s", note: "verified")
        )
        results["\(kind)_save_vs_zstd_write"] = zstdWriteSeconds / saveSeconds
        results["\(kind)_save_cost_vs_zstd_compress"] = saveSeconds / zstdSeconds
        results["\(kind)_zstd_ratio_raw"] = bytes / Double(frame.count)

        if hasCLI {
            let input = work + "/raw.bin"
            try writeSynced(raw, to: input)
            let cliSave = try measure(repetitions) {
                try shell(
                    "zstd -q -f -\(options.level) -T\(threads) '\(input)' -o '\(work)/cli.zst' && sync -f '\(work)/cli.zst'"
                )
            }
            let cliRestore = try measure(repetitions) {
                try shell("zstd -q -d -f '\(work)/cli.zst' -o '\(work)/cli.out'")
            }
            rows.append(
                Row(
                    name: "\(kind): zstd CLI -\(options.level) -T\(threads) + sync",
                    value: gbps(cliSave),
                    unit: "GB/s",
                    note: "reference"
                )
            )
            rows.append(Row(name: "\(kind): zstd CLI -d", value: gbps(cliRestore), unit: "GB/s", note: "reference"))
            results["\(kind)_save_vs_zstd_cli"] = cliSave / saveSeconds
            results["\(kind)_restore_vs_zstd_cli"] = cliRestore / restoreSeconds
            try? FileManager.default.removeItem(atPath: input)
        }
        if kind == "smooth" {
            results["blocking_memcpy_gbps"] = gbps(memcpySeconds)
            // Codable encoders on a slice (they are far too slow for the whole array).
            let sliceCount = min(count, (options.quick ? 2 : 8) << 20 / 8)
            let slice = Array((state as! Field<Double>).values.prefix(sliceCount))
            let sliceBytes = Double(sliceCount * 8)
            let jsonSeconds = try measure(1) { _ = try JSONEncoder().encode(slice) }
            let plist = PropertyListEncoder()
            plist.outputFormat = .binary
            let plistSeconds = try measure(1) { _ = try plist.encode(slice) }
            let ourRate = bytes / saveSeconds
            results["save_vs_json"] = ourRate / (sliceBytes / jsonSeconds)
            results["save_vs_plist"] = ourRate / (sliceBytes / plistSeconds)
            rows.append(
                Row(
                    name: "smooth: JSONEncoder",
                    value: sliceBytes / jsonSeconds / 1e9,
                    unit: "GB/s",
                    note: "\((sliceCount * 8) >> 20) MiB slice"
                )
            )
            rows.append(
                Row(
                    name: "smooth: PropertyListEncoder (binary)",
                    value: sliceBytes / plistSeconds / 1e9,
                    unit: "GB/s",
                    note: "\((sliceCount * 8) >> 20) MiB slice"
                )
            )
        }
        _ = copy.count
    }
    results["compression_ratio"] = ratios

    if options.json {
        let data = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    } else {
        print("checkpoint-bench: \(options.sizeMiB) MiB of Float64, zstd level \(options.level), \(threads) threads\n")
        print("| measurement | rate | note |")
        print("|---|---:|---|")
        for row in rows { print("| \(row.name) | \(String(format: "%.3f", row.value)) \(row.unit) | \(row.note) |") }
        print("\n| ratio | value |")
        print("|---|---:|")
        for key in results.keys.sorted() where results[key] is Double {
            print("| \(key) | \(String(format: "%.2f", results[key] as! Double)) |")
        }
        print(
            "| compression_ratio | \(ratios.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", ")) |"
        )
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
