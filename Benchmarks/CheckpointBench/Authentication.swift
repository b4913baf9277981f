import Checkpoint
import Foundation

/// What sealing checkpoints with a key costs: saves and restores of the same smooth field, with and
/// without ``Authentication``, alternated so that both see the same disk and page cache.
///
/// A sealed save computes one HMAC of the manifest and writes and syncs one more small file; a
/// sealed restore reads and checks it. Both should be within noise of the plain ones; the figures are
/// medians of `rounds` pairs, and the ratio is sealed over plain.
struct AuthenticationScenario {
    var options: Options
    var work: String

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let rounds = options.quick ? 5 : 9
        progress("authentication: \(options.sizeMiB) MiB smooth field, \(rounds) alternating pairs")
        let state = Field(values: smoothField((options.sizeMiB << 20) / 8))
        let key = try Authentication.Key(secret: (0..<32).map { UInt8($0) })
        var times: [Bool: (save: [Double], restore: [Double])] = [false: ([], []), true: ([], [])]
        for round in 0..<rounds {
            for sealed in round.isMultiple(of: 2) ? [false, true] : [true, false] {
                let directory = work + "/authentication-\(sealed)-\(round)"
                var configuration = Checkpointer.Configuration(policy: .never)
                configuration.compression = .zstd(level: options.level)
                configuration.chunkSize = options.chunkMiB << 20
                configuration.authentication = sealed ? Authentication(signingKey: key) : nil
                let checkpointer = try Checkpointer(
                    directory: directory,
                    configuration: configuration,
                    logger: quietLogger
                )
                let save = try measure(1) { try checkpointer.save(state, step: 1) }
                let restore = try measure(1) {
                    guard try checkpointer.restoreLatest(Field<Double>.self)?.step == 1 else {
                        throw Failure("the sealed checkpoint did not restore")
                    }
                }
                times[sealed]!.save.append(save)
                times[sealed]!.restore.append(restore)
                try FileManager.default.removeItem(atPath: directory)
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let gigabytes = Double(options.sizeMiB << 20) / 1e9
        let saveRatio = median(times[true]!.save) / median(times[false]!.save)
        let restoreRatio = median(times[true]!.restore) / median(times[false]!.restore)
        results["authentication_save_ratio"] = saveRatio
        results["authentication_restore_ratio"] = restoreRatio
        results["authentication_save_gbps"] = [
            "plain": gigabytes / median(times[false]!.save), "sealed": gigabytes / median(times[true]!.save),
        ]
        results["authentication_restore_gbps"] = [
            "plain": gigabytes / median(times[false]!.restore), "sealed": gigabytes / median(times[true]!.restore),
        ]
        rows.append(
            Row(
                name: "sealed save time over plain (HMAC-SHA256 of the manifest, one more synced file)",
                value: saveRatio,
                unit: "×",
                note: "median of \(rounds) alternating pairs"
            )
        )
        rows.append(
            Row(
                name: "sealed restore time over plain (the seal read and checked)",
                value: restoreRatio,
                unit: "×",
                note: "median of \(rounds) alternating pairs"
            )
        )
    }
}
