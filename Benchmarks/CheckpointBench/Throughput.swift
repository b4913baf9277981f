import Checkpoint
import Foundation

/// Save and restore throughput against memcpy, libzstd and the zstd CLI, per data kind.
struct ThroughputScenario {
    var options: Options
    var work: String
    var threads: Int

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let count = (options.sizeMiB << 20) / 8
        let bytes = Double(count * 8)
        let repetitions = options.quick ? 2 : 3
        func gbps(_ seconds: Double) -> Double { bytes / seconds / 1e9 }
        let hasCLI = (try? shell("command -v zstd >/dev/null 2>&1")) == 0
        var ratios: [String: Double] = [:]
        let kinds: [(String, () -> (any Checkpointable, [UInt8]))] = [
            (
                "smooth",
                {
                    let v = smoothField(count); return (Field(values: v), v.withUnsafeBytes { Array($0) })
                }
            ),
            (
                "random",
                {
                    let v = randomDoubles(count); return (Field(values: v), v.withUnsafeBytes { Array($0) })
                }
            ),
            (
                "integers",
                {
                    let v = sparseIntegers(count); return (Field(values: v), v.withUnsafeBytes { Array($0) })
                }
            ),
        ]
        for (kind, make) in kinds {
            progress("throughput: \(kind), \(options.sizeMiB) MiB")
            let (state, raw) = make()
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
            var configuration = Checkpointer.Configuration(
                policy: .never,
                compression: .zstd(level: options.level),
                chunkSize: options.chunkMiB << 20
            )
            configuration.chunkChecksum = options.checksum
            configuration.retention.keepLast = 1
            let checkpointer = try Checkpointer(
                directory: work + "/throughput-\(kind)",
                configuration: configuration,
                logger: quietLogger
            )
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
            let timings = manifest!.timings
            rows.append(
                Row(
                    name: "\(kind): save phases (last run)",
                    value: (timings.encodeSeconds + timings.writeSeconds + timings.syncSeconds) * 1e3,
                    unit: "ms",
                    note: String(
                        format: "encode %.0f ms, write %.0f ms, fsync %.0f ms",
                        timings.encodeSeconds * 1e3,
                        timings.writeSeconds * 1e3,
                        timings.syncSeconds * 1e3
                    )
                )
            )
            rows.append(Row(name: "\(kind): memcpy", value: gbps(memcpySeconds), unit: "GB/s", note: "reference"))
            rows.append(
                Row(
                    name: "\(kind): libzstd -\(options.level) (\(threads) threads), in memory",
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
            results["\(kind)_save_cost_vs_zstd_compress"] = saveSeconds / zstdSeconds
            results["\(kind)_save_vs_zstd_write"] = zstdWriteSeconds / saveSeconds
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
                if kind == "smooth" {
                    results["save_vs_zstd_cli"] = cliSave / saveSeconds
                    results["restore_vs_zstd_cli"] = cliRestore / restoreSeconds
                }
                for file in ["raw.bin", "cli.zst", "cli.out"] {
                    try? FileManager.default.removeItem(atPath: work + "/" + file)
                }
            }
            if kind == "smooth" {
                results["memcpy_gbps"] = gbps(memcpySeconds)
                try codableReferences(
                    state as! Field<Double>,
                    saveRate: bytes / saveSeconds,
                    rows: &rows,
                    results: &results
                )
            }
            _ = copy.count
        }
        results["compression_ratio"] = ratios
    }

    /// JSONEncoder and binary PropertyListEncoder on a slice (they are far too slow for the whole array).
    private func codableReferences(
        _ field: Field<Double>,
        saveRate: Double,
        rows: inout [Row],
        results: inout [String: Any]
    ) throws {
        let sliceCount = min(field.values.count, (options.quick ? 2 : 8) << 20 / 8)
        let slice = Array(field.values.prefix(sliceCount))
        let sliceBytes = Double(sliceCount * 8)
        let jsonSeconds = try measure(1) { _ = try JSONEncoder().encode(slice) }
        let plist = PropertyListEncoder()
        plist.outputFormat = .binary
        let plistSeconds = try measure(1) { _ = try plist.encode(slice) }
        results["save_vs_json"] = saveRate / (sliceBytes / jsonSeconds)
        results["save_vs_plist"] = saveRate / (sliceBytes / plistSeconds)
        let note = "\((sliceCount * 8) >> 20) MiB slice"
        rows.append(Row(name: "smooth: JSONEncoder", value: sliceBytes / jsonSeconds / 1e9, unit: "GB/s", note: note))
        rows.append(
            Row(
                name: "smooth: PropertyListEncoder (binary)",
                value: sliceBytes / plistSeconds / 1e9,
                unit: "GB/s",
                note: note
            )
        )
    }
}
