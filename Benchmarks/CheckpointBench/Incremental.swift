import Checkpoint
import Crypto
import Foundation

/// Incremental checkpoints against full ones on the same state and disk: a smooth field in 1 MiB
/// chunks of which about 10 % change between checkpoints (every value of the chosen chunks).
///
/// Figures: bytes written per incremental checkpoint over a full checkpoint's bytes, save time over
/// a full save, restore time of an incremental checkpoint (whose chunks are spread over several
/// older shards) over the restore of a full one, and the cost of hashing when nothing can be reused.
struct IncrementalScenario {
    var options: Options
    var work: String

    /// Chunks of 1 MiB, so that 10 % is a whole number of chunks even at 64 MiB.
    static let chunkBytes = 1 << 20

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let perChunk = Self.chunkBytes / 8
        let chunkCount = max(10, (options.sizeMiB << 20) / Self.chunkBytes)
        let changed = max(1, (chunkCount + 5) / 10)
        let repetitions = options.quick ? 2 : 3
        var field = Field(values: smoothField(chunkCount * perChunk))
        var random: UInt64 = 17
        func next() -> Int {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: random >> 33)
        }
        /// Changes every value of `count` distinct chunks, as a simulation that updates a region would.
        func change(chunks count: Int) {
            var chosen = Set<Int>()
            while chosen.count < count { chosen.insert(next() % chunkCount) }
            for chunk in chosen {
                for index in chunk * perChunk..<(chunk + 1) * perChunk {
                    field.values[index] += Double(next() % 1000) * 1e-6
                }
            }
        }
        func configuration(_ incremental: Checkpointer.Configuration.Incremental) -> Checkpointer.Configuration {
            Checkpointer.Configuration(
                policy: .never,
                retention: .init(keepLast: 3),
                compression: .zstd(level: options.level),
                chunkSize: Self.chunkBytes,
                incremental: incremental
            )
        }
        func phases(_ manifest: Manifest) -> String {
            let timings = manifest.timings
            return String(
                format: "encode %.0f ms, write %.0f ms, fsync %.0f ms",
                timings.encodeSeconds * 1e3,
                timings.writeSeconds * 1e3,
                timings.syncSeconds * 1e3
            )
        }
        func timed(_ body: () throws -> Manifest) rethrows -> (Double, Manifest) {
            let start = DispatchTime.now().uptimeNanoseconds
            let manifest = try body()
            return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, manifest)
        }

        progress("incremental: \(chunkCount) MiB, \(changed) of \(chunkCount) chunks change per checkpoint")
        // Full checkpoints (incremental off) are the reference. Every save of one kind is paired
        // with one of the other on the same state, after `sync`, so that both meet the same page
        // cache and write-back: the difference is the incremental writer's.
        let full = try Checkpointer(
            directory: work + "/incremental-off",
            configuration: configuration(.off),
            logger: quietLogger
        )
        let incremental = try Checkpointer(
            directory: work + "/incremental-on",
            configuration: configuration(.on(fullEvery: 1000)),
            logger: quietLogger
        )
        var step = 0
        var written: [Int] = []
        var fullBytes = 0
        /// The best time of each kind over `rounds` pairs of saves, the state changed by `changing` before each.
        func pairs(
            _ rounds: Int,
            changing count: Int
        ) throws -> (off: Double, on: Double, last: Manifest, phases: String) {
            var best = (off: Double.infinity, on: Double.infinity)
            var last: Manifest?
            var onPhases = ""
            var offPhases = ""
            for _ in 0..<rounds {
                change(chunks: count)
                step += 1
                sync()
                let (offSeconds, offManifest) = try timed { try full.save(field, step: Step(step)) }
                sync()
                let (onSeconds, onManifest) = try timed { try incremental.save(field, step: Step(step)) }
                if offSeconds < best.off { offPhases = phases(offManifest) }
                if onSeconds < best.on { onPhases = phases(onManifest) }
                best = (min(best.off, offSeconds), min(best.on, onSeconds))
                last = onManifest
                written.append(onManifest.storedBytes)
                fullBytes = offManifest.storedBytes
            }
            return (best.off, best.on, last!, "off: " + offPhases + "; incremental: " + onPhases)
        }
        // Both full: the incremental writer hashes every chunk and finds nothing to reuse.
        let first = try pairs(1, changing: chunkCount)
        written = []
        let tenPercent = try pairs(repetitions + 1, changing: changed)
        let incrementalWritten = written
        // The newest checkpoint's chunks are spread over every earlier one.
        let references = tenPercent.last.references.count
        var restores = (off: Double.infinity, on: Double.infinity)
        for _ in 0..<repetitions {
            sync()
            restores.off = min(restores.off, try measure(1) { _ = try full.restoreLatest(Field<Double>.self) })
            sync()
            restores.on = min(restores.on, try measure(1) { _ = try incremental.restoreLatest(Field<Double>.self) })
        }
        guard try incremental.restoreLatest(Field<Double>.self)?.state.values == field.values else {
            throw Failure("an incremental checkpoint restored other values")
        }
        // The worst case again, with a base to search: every chunk changed.
        let allChanged = try pairs(repetitions, changing: chunkCount)

        // The reference for what finding unchanged chunks costs: SHA-256 of every chunk, all cores.
        let hashSeconds = measure(repetitions) {
            field.values.withUnsafeBytes { raw in
                // The buffer outlives `concurrentPerform`, which returns once every iteration ran.
                let address = UInt(bitPattern: raw.baseAddress)
                DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
                    let start = UnsafeRawPointer(bitPattern: address)! + chunk * Self.chunkBytes
                    var hasher = SHA256()
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(start: start, count: Self.chunkBytes))
                    _ = hasher.finalize()
                }
            }
        }
        let meanWritten = Double(incrementalWritten.reduce(0, +)) / Double(incrementalWritten.count)
        let bytesRatio = meanWritten / Double(fullBytes)
        let saveRatio = tenPercent.on / tenPercent.off
        let restoreRatio = restores.on / restores.off
        results["incremental_changed_fraction"] = Double(changed) / Double(chunkCount)
        results["incremental_bytes_ratio"] = bytesRatio
        results["incremental_save_vs_full"] = saveRatio
        results["incremental_restore_vs_full"] = restoreRatio
        results["incremental_first_save_vs_off"] = first.on / first.off
        results["incremental_all_changed_save_vs_off"] = allChanged.on / allChanged.off
        results["incremental_restore_references"] = references
        results["sha256_gbps"] = Double(chunkCount * Self.chunkBytes) / hashSeconds / 1e9
        results["sha256_vs_full_save"] = hashSeconds / tenPercent.off
        let changedNote = "\(changed) of \(chunkCount) chunks changed"
        rows.append(
            Row(
                name: "incremental: SHA-256 of the whole state",
                value: hashSeconds * 1e3,
                unit: "ms",
                note: String(format: "reference, all cores; %.3f × a full save", hashSeconds / tenPercent.off)
            )
        )
        rows.append(
            Row(
                name: "incremental: full checkpoint (off)",
                value: Double(fullBytes) / 1e6,
                unit: "MB",
                note: "reference"
            )
        )
        rows.append(
            Row(
                name: "incremental: bytes written per checkpoint",
                value: meanWritten / 1e6,
                unit: "MB",
                note: String(format: "%.3f of a full checkpoint; %@", bytesRatio, changedNote)
            )
        )
        rows.append(
            Row(
                name: "incremental: save",
                value: tenPercent.on * 1e3,
                unit: "ms",
                note: String(
                    format: "%.3f × a full save (%.0f ms); %@",
                    saveRatio,
                    tenPercent.off * 1e3,
                    tenPercent.phases
                )
            )
        )
        rows.append(
            Row(
                name: "incremental: restore",
                value: restores.on * 1e3,
                unit: "ms",
                note: String(
                    format: "%.3f × restoring a full checkpoint (%.0f ms); chunks from %d older checkpoints",
                    restoreRatio,
                    restores.off * 1e3,
                    references
                )
            )
        )
        rows.append(
            Row(
                name: "incremental: first (full) save",
                value: first.on * 1e3,
                unit: "ms",
                note: String(format: "%.3f × with incremental off (%.0f ms)", first.on / first.off, first.off * 1e3)
            )
        )
        rows.append(
            Row(
                name: "incremental: save with every chunk changed",
                value: allChanged.on * 1e3,
                unit: "ms",
                note: String(
                    format: "%.3f × with incremental off (%.0f ms); %@",
                    allChanged.on / allChanged.off,
                    allChanged.off * 1e3,
                    allChanged.phases
                )
            )
        )
    }
}
