// checkpoint-bench: measures swift-checkpoint against references in the same run, on the same
// data and disk: memcpy, libzstd on the raw bytes (same level and threads), the zstd CLI,
// Foundation's JSON and property-list encoders, and the heat example without checkpoints.
// Every figure is a ratio or a rate.
//
//     swift run -c release checkpoint-bench [--quick] [--json] [--peers] [--size-mib N] [--level L] [--chunk-mib C] [--dir DIR]
//                                           [--only SCENARIO,…]

import Checkpoint
import Foundation

struct Options {
    var quick = false
    var json = false
    var sizeMiB = 256
    var directory = FileManager.default.temporaryDirectory.path
    var level = 1
    var chunkMiB = 4
    /// The chunk checksum of the throughput and peers scenarios (`--checksum`).
    var checksum = Checkpointer.Configuration.ChunkChecksum.automatic
    var only: Set<String> = []
    /// Whether `--size-mib` was given (the peers scenario's default size is its own).
    var sizeGiven = false
    /// The peers scenario's data sets (`--sets`); all of them when empty.
    var peerSets: [String] = []
    /// The peers the peers scenario runs (`--with`); every installed one when `nil`, only the
    /// library when empty (`--with none`).
    var peerNames: [String]?
    /// Rounds of the peers scenario (`--rounds`), whose medians it reports.
    var rounds = 3
    /// Set in the processes `--only scale` starts under MPI: run one rank of that scenario.
    var scaleRank: (directory: String, checkpoints: Int)?

    init(_ arguments: [String]) throws {
        var iterator = arguments.dropFirst().makeIterator()
        func number(_ flag: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let value = iterator.next().flatMap(Int.init), range.contains(value) else {
                throw Failure("\(flag) needs an integer in \(range)")
            }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--quick": quick = true
            case "--peers": only.insert("peers")
            case "--sets":
                guard let value = iterator.next() else { throw Failure("--sets needs a list") }
                peerSets = value.split(separator: ",").map(String.init)
                let known = PeersScenario.dataSets
                if let unknown = peerSets.first(where: { !known.contains($0) }) {
                    throw Failure("--sets: no data set '\(unknown)'; the sets are \(known.joined(separator: ", "))")
                }
            case "--with":
                guard let value = iterator.next() else { throw Failure("--with needs a list of peers, or none") }
                peerNames = value == "none" ? [] : value.split(separator: ",").map(String.init)
            case "--rounds": rounds = try number(argument, 1...99)
            case "--checksum":
                guard let value = iterator.next().flatMap(Checkpointer.Configuration.ChunkChecksum.init) else {
                    throw Failure("--checksum needs automatic, sha256 or xxh3")
                }
                checksum = value
            case "--json": json = true
            case "--size-mib":
                sizeMiB = try number(argument, 1...65_536)
                sizeGiven = true
            case "--level": level = try number(argument, -7...22)
            case "--chunk-mib": chunkMiB = try number(argument, 1...256)
            case "--dir":
                guard let value = iterator.next() else { throw Failure("--dir needs a path") }
                directory = value
            case "--only":
                guard let value = iterator.next() else { throw Failure("--only needs a list") }
                only.formUnion(value.split(separator: ",").map(String.init))
            case "--scale-rank":
                guard let directory = iterator.next(), let checkpoints = iterator.next().flatMap(Int.init) else {
                    throw Failure("--scale-rank needs a directory and a number of checkpoints")
                }
                scaleRank = (directory, checkpoints)
            case "--help", "-h":
                print(
                    """
                    usage: checkpoint-bench [--quick] [--json] [--peers] [--size-mib N] [--level L] [--chunk-mib C] [--dir DIR]
                                            [--checksum automatic|sha256|xxh3] [--sets SET,…] [--with PEER,…|none] [--rounds N]
                                            [--only throughput,blocking,heat,coordination,scaling,redundancy,
                                                    repartition,incremental,memory,authentication,scale]
                    memory, authentication, scale and peers run only when --only names them; scale runs
                    1…256 in-process ranks, and 1…8 MPI processes when built with --traits MPI (mpirun on
                    PATH, or the launcher in CKPT_MPIRUN)
                    --peers (= --only peers): against HDF5, Orbax, ADIOS2, PyTorch DCP and np.save in
                    Benchmarks/Peers/setup's .venv-peers (or CKPT_PEERS_PYTHON); 128 MiB unless --size-mib;
                    --sets smooth,random,ints,smooth_1gib picks data sets, --with the peers (none: only the
                    library, to compare changes to it), --rounds N the rounds whose medians it reports (3)
                    """
                )
                exit(0)
            default: throw Failure("unknown argument '\(argument)'; see --help")
            }
        }
        if quick && !sizeGiven { sizeMiB = 64 }
    }

    func includes(_ scenario: String) -> Bool { only.isEmpty || only.contains(scenario) }
}

do {
    let options = try Options(CommandLine.arguments)
    if let scaleRank = options.scaleRank {
        try MPIScale.rank(directory: scaleRank.directory, checkpoints: scaleRank.checkpoints)
        exit(0)
    }
    let threads = Checkpointer.Configuration.defaultThreads
    let work = options.directory + "/checkpoint-bench-\(getpid())"
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: work) }
    var rows: [Row] = []
    var results: [String: Any] = [
        "size_mib": options.sizeMiB, "level": options.level, "threads": threads, "chunk_mib": options.chunkMiB,
        "quick": options.quick,
    ]
    let start = Date()
    if options.includes("throughput") {
        try ThroughputScenario(options: options, work: work, threads: threads).run(rows: &rows, results: &results)
    }
    let overhead = OverheadScenario(options: options, work: work)
    if options.includes("blocking") { try overhead.blocking(rows: &rows, results: &results) }
    if options.includes("heat") { try overhead.heat(rows: &rows, results: &results) }
    if options.includes("coordination") { try overhead.coordination(rows: &rows, results: &results) }
    if options.includes("scaling") { try overhead.scaling(rows: &rows, results: &results) }
    if options.includes("redundancy") {
        try RedundancyScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    if options.includes("repartition") {
        try RepartitionScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    if options.includes("incremental") {
        try IncrementalScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    if options.only.contains("memory") {
        // Not part of a default run: it needs twice --size-mib of memory and disk several times over.
        try MemoryScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    if options.only.contains("authentication") {
        // Not part of a default run: its figures are ratios near 1 that only a quiet machine resolves.
        try AuthenticationScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    if options.only.contains("scale") {
        // Not part of a default run: 256 ranks take minutes on a small machine.
        try ScaleScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    if options.only.contains("peers") {
        // Not part of a default run: it needs Benchmarks/Peers/setup's Python environment.
        try PeersScenario(options: options, work: work).run(rows: &rows, results: &results)
    }
    results["seconds"] = Date().timeIntervalSince(start)

    if options.json {
        let data = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    } else {
        print(
            "checkpoint-bench: \(options.sizeMiB) MiB per data kind, zstd level \(options.level), \(threads) threads\n"
        )
        print("| measurement | value | note |")
        print("|---|---:|---|")
        for row in rows { print("| \(row.name) | \(String(format: "%.3f", row.value)) \(row.unit) | \(row.note) |") }
        print("\n| key | value |")
        print("|---|---:|")
        // The peers' nested figures are in the rows above; --json prints them whole.
        for key in results.keys.sorted() where key != "peers" {
            switch results[key] {
            case let value as Double: print("| \(key) | \(String(format: "%.3f", value)) |")
            case let value as [String: Double]:
                let parts = value.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }
                print("| \(key) | \(parts.joined(separator: ", ")) |")
            case let value?: print("| \(key) | \(value) |")
            case nil: break
            }
        }
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
