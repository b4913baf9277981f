import Checkpoint
import Foundation

/// swift-checkpoint against what a user would pick instead — HDF5 with shuffle filters (h5py +
/// hdf5plugin), Orbax, ADIOS2, PyTorch DCP when installed, and plain `np.save` — on the same data,
/// the same disk and in one run (`checkpoint-bench --peers`).
///
/// Three data sets of `--size-mib` (128 MiB unless given): a smooth `Double` field with 1e-6 noise,
/// uniform random doubles, slowly increasing `Int64` counters; a full run adds a 1 GiB smooth field.
/// Each round saves and restores every set with the library and then with each peer, alternately,
/// in `Benchmarks/Peers/peers.py` (run by the Python of `.venv-peers`, which
/// `Benchmarks/Peers/setup` creates; or `CKPT_PEERS_PYTHON`). Every save ends with its files
/// `fsync`ed, every restore reads from the warm page cache and is checked against the saved data
/// (outside the timing). Figures are medians over the rounds (at least 3).
///
/// The library runs with its defaults but for `--level` and `--checksum`.
///
/// Per data set: `save_vs_best_peer` and `restore_vs_best_peer` (the library's GB/s over the
/// fastest compressing peer's, whatever its ratio), `ratio_vs_best_peer` (the library's stored
/// bytes over the fewest any peer stored), `save_vs_raw` and `restore_vs_raw` (over `np.save`
/// with `fsync`, and `np.load`).
struct PeersScenario {
    var options: Options
    var work: String

    /// One peer's (or the library's) medians on one data set.
    struct Figures {
        var compresses: Bool
        var saveSeconds: [Double] = []
        var restoreSeconds: [Double] = []
        var storedBytes = 0
        var version = ""

        var medianSave: Double { median(saveSeconds) }
        var medianRestore: Double { median(restoreSeconds) }
    }

    static let library = "swift-checkpoint"
    /// The data sets, in the order they run (`--sets` picks some).
    static let dataSets = ["smooth", "random", "ints", "smooth_1gib"]

    func run(rows: inout [Row], results: inout [String: Any]) throws {
        let python = try Self.python()
        let installed = try listPeers(python)
        var peers = installed
        if let chosen = options.peerNames {
            if let missing = chosen.first(where: { !installed.contains($0) }) {
                throw Failure("--with: no installed peer '\(missing)'; installed: \(installed.joined(separator: ", "))")
            }
            peers = chosen
        }
        let sizeMiB = options.sizeGiven ? options.sizeMiB : 128
        var names = options.peerSets
        if names.isEmpty { names = options.quick ? Array(Self.dataSets.prefix(3)) : Self.dataSets }
        let sets = names.map { (name: $0, mib: $0 == "smooth_1gib" ? 1024 : sizeMiB) }
        let rounds = options.rounds
        var summary: [String: Any] = [:]
        for set in sets {
            let count = (set.mib << 20) / 8
            let data = work + "/peers-\(set.name).npy"
            let state = try Self.writeDataSet(set.name, count: count, to: data)
            var figures: [String: Figures] = [Self.library: Figures(compresses: true)]
            for round in 1...rounds {
                progress("peers: \(set.name) (\(set.mib) MiB), round \(round) of \(rounds)")
                try measureLibrary(state, name: set.name, into: &figures[Self.library]!)
                for peer in peers {
                    let outcome = try runPeer(python, peer: peer, data: data)
                    figures[peer, default: Figures(compresses: outcome.compresses)].saveSeconds.append(
                        outcome.saveSeconds
                    )
                    figures[peer]!.restoreSeconds.append(outcome.restoreSeconds)
                    figures[peer]!.storedBytes = outcome.storedBytes
                    figures[peer]!.version = outcome.version
                }
            }
            try? FileManager.default.removeItem(atPath: data)
            let rawBytes = Double(count * 8)
            summary[set.name] = Self.compare(figures, rawBytes: rawBytes, rows: &rows, set: set.name)
        }
        results["peers"] = summary
    }

    /// The ratios of one data set, and a table row per peer.
    static func compare(
        _ figures: [String: Figures],
        rawBytes: Double,
        rows: inout [Row],
        set: String
    )
        -> [String: Any]
    {
        func gbps(_ seconds: Double) -> Double { rawBytes / seconds / 1e9 }
        let ours = figures[library]!
        let peers = figures.filter { $0.key != library }
        let compressing = peers.filter { $0.value.compresses }
        let bestSave = compressing.min { $0.value.medianSave < $1.value.medianSave }
        let bestRestore = compressing.min { $0.value.medianRestore < $1.value.medianRestore }
        let smallest = peers.min { $0.value.storedBytes < $1.value.storedBytes }
        let raw = peers["npy"]
        for (name, figure) in figures.sorted(by: { $0.key < $1.key }) {
            rows.append(
                Row(
                    name: "peers, \(set): \(name) save / restore",
                    value: gbps(figure.medianSave),
                    unit: "GB/s",
                    note: String(
                        format: "restore %.2f GB/s, stored %.3f of raw; %@",
                        gbps(figure.medianRestore),
                        Double(figure.storedBytes) / rawBytes,
                        figure.version
                    )
                )
            )
        }
        var result: [String: Any] = [
            "library_save_gbps": gbps(ours.medianSave), "library_restore_gbps": gbps(ours.medianRestore),
            "library_stored_ratio": Double(ours.storedBytes) / rawBytes,
            "peers": Dictionary(
                uniqueKeysWithValues: peers.map { name, figure in
                    (
                        name,
                        [
                            "save_gbps": gbps(figure.medianSave), "restore_gbps": gbps(figure.medianRestore),
                            "stored_ratio": Double(figure.storedBytes) / rawBytes, "compresses": figure.compresses,
                            "save_seconds": figure.saveSeconds, "restore_seconds": figure.restoreSeconds,
                            "version": figure.version,
                        ] as [String: Any]
                    )
                }
            ),
        ]
        if let bestSave {
            result["save_vs_best_peer"] = bestSave.value.medianSave / ours.medianSave
            result["best_save_peer"] = bestSave.key
        }
        if let bestRestore {
            result["restore_vs_best_peer"] = bestRestore.value.medianRestore / ours.medianRestore
            result["best_restore_peer"] = bestRestore.key
        }
        if let smallest {
            result["ratio_vs_best_peer"] = Double(ours.storedBytes) / Double(smallest.value.storedBytes)
            result["smallest_peer"] = smallest.key
        }
        if let raw {
            result["save_vs_raw"] = raw.medianSave / ours.medianSave
            result["restore_vs_raw"] = raw.medianRestore / ours.medianRestore
        }
        let against: [(key: String, peer: String?)] = [
            ("save_vs_best_peer", bestSave?.key), ("restore_vs_best_peer", bestRestore?.key),
            ("ratio_vs_best_peer", smallest?.key), ("save_vs_raw", "npy"), ("restore_vs_raw", "npy"),
        ]
        for (key, peer) in against {
            guard let value = result[key] as? Double, let peer else { continue }
            rows.append(Row(name: "peers, \(set): \(key)", value: value, unit: "×", note: "against \(peer)"))
        }
        return result
    }

    /// A synchronous save (ending in `fsync`s and the commit) and a restore of the newest checkpoint,
    /// with the library's defaults; the restored values are compared with the saved ones.
    private func measureLibrary(_ state: PeerData, name: String, into figures: inout Figures) throws {
        let directory = work + "/peers-library-\(name)"
        try? FileManager.default.removeItem(atPath: directory)
        var configuration = Checkpointer.Configuration(
            policy: .never,
            compression: .zstd(level: options.level),
            chunkChecksum: options.checksum
        )
        configuration.retention.keepLast = 1
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration, logger: quietLogger)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var start = DispatchTime.now().uptimeNanoseconds
        let manifest = try state.save(checkpointer)
        figures.saveSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        start = DispatchTime.now().uptimeNanoseconds
        let equal = try state.restoreAndCompare(checkpointer) {
            figures.restoreSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        guard equal else { throw Failure("peers: swift-checkpoint restored different values for \(name)") }
        figures.storedBytes = Int(manifest.storedBytes)
        figures.version =
            "\(configuration.compression), automatic shuffle filter, \(configuration.threads) threads, chunk checksum \(configuration.chunkChecksum)"
    }

    /// What peers.py printed for one run.
    struct PeerOutcome: Decodable {
        var compresses: Bool
        var saveSeconds: Double
        var restoreSeconds: Double
        var storedBytes: Int
        var version: String
    }

    private func runPeer(_ python: String, peer: String, data: String) throws -> PeerOutcome {
        let directory = work + "/peers-\(peer)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try capture(python, [Self.script, "run", "--peer", peer, "--data", data, "--dir", directory])
        guard let line = output.split(separator: "\n").last, let json = line.data(using: .utf8) else {
            throw Failure("peers: \(peer) printed nothing")
        }
        if let failure = try? JSONDecoder().decode([String: String].self, from: json), let error = failure["error"] {
            throw Failure("peers: \(peer): \(error)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do { return try decoder.decode(PeerOutcome.self, from: json) } catch {
            throw Failure("peers: \(peer) printed '\(line)' instead of its figures")
        }
    }

    private func listPeers(_ python: String) throws -> [String] {
        struct Listed: Decodable {
            var peers: [String]
            var missing: [String: String]
        }
        let output = try capture(python, [Self.script, "list"])
        guard let line = output.split(separator: "\n").last,
            let listed = try? JSONDecoder().decode(Listed.self, from: Data(line.utf8))
        else { throw Failure("peers: '\(Self.script) list' printed '\(output)'") }
        for (peer, reason) in listed.missing.sorted(by: { $0.key < $1.key }) {
            progress("peers: \(peer) is not installed (\(reason)); it is left out")
        }
        guard listed.peers.contains("npy"), listed.peers.count > 1 else {
            throw Failure("peers: no peer can run in \(python); run Benchmarks/Peers/setup")
        }
        return listed.peers
    }

    /// `Benchmarks/Peers/peers.py`, beside this file's folder.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Peers/peers.py").path

    /// `CKPT_PEERS_PYTHON`, or the Python of `.venv-peers` at the package's root.
    static func python() throws -> String {
        if let given = ProcessInfo.processInfo.environment["CKPT_PEERS_PYTHON"], !given.isEmpty { return given }
        let root = URL(fileURLWithPath: script).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let python = root.appendingPathComponent(".venv-peers/bin/python3").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Failure("peers: \(python) is missing; run Benchmarks/Peers/setup (or set CKPT_PEERS_PYTHON)")
        }
        return python
    }

    /// Runs a program and returns its standard output; a non-zero exit is an error quoting both
    /// outputs. Standard error goes to a file, so a chatty program cannot fill a pipe nobody reads.
    func capture(_ program: String, _ arguments: [String]) throws -> String {
        let errorPath = work + "/peers-stderr.txt"
        guard FileManager.default.createFile(atPath: errorPath, contents: nil) else {
            throw Failure("peers: cannot create \(errorPath)")
        }
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: printed, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let complaint = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            throw Failure(
                "\(program) \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): "
                    + text + String(complaint.suffix(2000))
            )
        }
        return text
    }

    /// Generates one data set, writes it as a `.npy` file for the peers, and returns it for the library.
    static func writeDataSet(_ name: String, count: Int, to path: String) throws -> PeerData {
        let data: PeerData =
            switch name {
            case "random": .doubles(randomDoubles(count))
            case "ints": .integers(counters(count))
            default: .doubles(smoothField(count, noise: 1e-6))
            }
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw Failure("peers: cannot create \(path)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.write(contentsOf: npyHeader(descriptor: data.descriptor, count: count))
        switch data {
        case .doubles(let values): try values.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        case .integers(let values): try values.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        }
        return data
    }

    /// A version 1.0 `.npy` header for a one-dimensional little-endian array.
    static func npyHeader(descriptor: String, count: Int) -> Data {
        var dictionary = "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': (\(count),), }"
        let unpadded = 10 + dictionary.utf8.count + 1
        dictionary += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var header = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(dictionary.utf8.count)
        header.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        header.append(contentsOf: Array(dictionary.utf8))
        return header
    }
}

/// One data set, as the library saves it.
enum PeerData {
    case doubles([Double])
    case integers([Int64])

    var descriptor: String {
        switch self {
        case .doubles: "<f8"
        case .integers: "<i8"
        }
    }

    func save(_ checkpointer: Checkpointer) throws -> Manifest {
        switch self {
        case .doubles(let values): try checkpointer.save(Field(values: values), step: 1)
        case .integers(let values): try checkpointer.save(Field(values: values), step: 1)
        }
    }

    /// Restores the newest checkpoint, calls `restored` as soon as the values are in memory, then compares.
    func restoreAndCompare(_ checkpointer: Checkpointer, restored: () -> Void) throws -> Bool {
        switch self {
        case .doubles(let values):
            let state = try checkpointer.restoreLatest(Field<Double>.self)
            restored()
            return state?.state.values == values
        case .integers(let values):
            let state = try checkpointer.restoreLatest(Field<Int64>.self)
            restored()
            return state?.state.values == values
        }
    }
}

/// Slowly increasing `Int64` counters: each value is the previous one plus 0…3.
func counters(_ count: Int) -> [Int64] {
    var state: UInt64 = 11
    var value: Int64 = 1_000_000
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        value += Int64(state >> 62)
        return value
    }
}
