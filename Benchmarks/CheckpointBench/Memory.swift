import Checkpoint
import Foundation

/// How much a partner copy and a flush raise peak memory: both stream a shard in bounded parts, so
/// a save with them should peak no more than a few parts above a save without them.
///
/// Two ranks on two simulated nodes, each with `--size-mib` of incompressible doubles (so the shard
/// is as large as the state). The process's peak resident set (`VmHWM`, reset through
/// `/proc/self/clear_refs` before each save) is read after a save to the shared directory only,
/// then after a save with a partner copy and a flush; the difference is what they add, for both
/// ranks together. Linux only.
struct MemoryScenario {
    var options: Options
    var work: String

    private static let nodes = ["a", "b"]

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let perRank = options.sizeMiB
        progress("memory: 2 ranks × \(perRank) MiB, save without and with partner copy + flush")
        let peaks = try LocalGroup.run(ranks: 2, timeout: 1_800, nodes: Self.nodes) { communicator -> [Int] in
            let plain = try Checkpointer(
                directory: work + "/memory-plain",
                communicator: communicator,
                configuration: configuration(redundancy: nil),
                logger: quietLogger
            )
            let redundant = try Checkpointer(
                directory: work + "/memory-redundant/shared",
                communicator: communicator,
                configuration: configuration(
                    redundancy: .init(localDirectory: work + "/memory-redundant/local", flushEvery: 1)
                ),
                logger: quietLogger
            )
            let state = Field(values: randomDoubles((perRank << 20) / 8).map { $0 + Double(communicator.rank) })
            func measuredSave(_ checkpointer: Checkpointer, step: Step) throws -> Int {
                try communicator.barrier()
                if communicator.rank == 0 { try resetPeak() }
                try communicator.barrier()
                try checkpointer.save(state, step: step)
                try communicator.barrier()
                return try peakResidentBytes()
            }
            try communicator.barrier()
            let resident = try currentResidentBytes()
            let plainPeak = try measuredSave(plain, step: 1)
            let redundantPeak = try measuredSave(redundant, step: 1)
            // The figure counts only if the second save did make the partner copy and the flush.
            let local = work + "/memory-redundant/local/rank-0000\(communicator.rank)/ckpt-000000000001"
            let flushed = work + "/memory-redundant/shared/ckpt-000000000001"
            let files = try FileManager.default.contentsOfDirectory(atPath: local).filter { $0.hasSuffix(".snap") }
            guard files.count == 2, FileManager.default.fileExists(atPath: flushed + "/rank-00000.snap") else {
                throw Failure("the save with redundancy made no partner copy or no flush: \(files)")
            }
            return [plainPeak, redundantPeak, resident]
        }
        let (plain, redundant, resident) = (peaks[0][0], peaks[0][1], peaks[0][2])
        let mib = { (bytes: Int) in Double(bytes) / Double(1 << 20) }
        let added = mib(redundant - plain)
        results["memory_peak_above_state_mib"] = [
            "plain": mib(plain - resident), "redundant": mib(redundant - resident),
        ]
        results["memory_partner_copy_and_flush_added_mib"] = added
        rows.append(
            Row(
                name: "peak memory of a save above the state (2 ranks × \(perRank) MiB, incompressible)",
                value: mib(plain - resident),
                unit: "MiB",
                note: "shared directory only; reference"
            )
        )
        rows.append(
            Row(
                name: "peak memory a partner copy and a flush add to that save",
                value: added,
                unit: "MiB",
                note: "both ranks; streamed in 4 MiB parts"
            )
        )
    }

    private func configuration(redundancy: Checkpointer.Configuration.Redundancy?) -> Checkpointer.Configuration {
        var configuration = Checkpointer.Configuration(policy: .never)
        configuration.compression = .zstd(level: options.level)
        configuration.chunkSize = options.chunkMiB << 20
        configuration.redundancy = redundancy
        return configuration
    }

    private func resetPeak() throws {
        // "5" resets the peak resident set size (proc(5), /proc/PID/clear_refs).
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    private func peakResidentBytes() throws -> Int { try statusField("VmHWM:") }

    private func currentResidentBytes() throws -> Int { try statusField("VmRSS:") }

    /// A `kB` field of `/proc/self/status`, in bytes.
    private func statusField(_ name: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
            let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({
                Int($0)
            })
        else { throw Failure("/proc/self/status has no \(name) line") }
        return kilobytes << 10
    }
}
