import Checkpoint
import Foundation
import Testing

/// What each of 4 ranks saves for the `ckpt extract --assemble` and `ckpt export` tests: two
/// distributed arrays (a 1-D `Double` field split by rows and a 2-D `Float` field split over a
/// 2 x 2 process grid), and per-rank state: an `Int32` array, plain structs, SIMD vectors, `Bool`s,
/// a single value and a `Codable` value.
struct DistributedState: Checkpointable {
    static let ranks = 4
    static let temperatureShape = [40]
    static let pressureShape = [9, 7]

    var rank: Int

    static func temperature(_ index: Int) -> Double { Double(index) * 0.25 - 3 }
    static func pressure(_ row: Int, _ column: Int) -> Float { Float(row * 10 + column) + 0.5 }
    static func counts(rank: Int) -> [Int32] { (0..<5).map { Int32(rank * 100 + $0) - 2 } }
    static func particles(rank: Int) -> [MixedState.Particle] {
        (0..<3).map { MixedState.Particle(position: Double(rank) + 0.5 * Double($0), id: Int64(rank * 10 + $0)) }
    }
    static func velocities(rank: Int) -> [SIMD4<Float>] {
        (0..<2).map { SIMD4<Float>(Float(rank), Float($0), -1.5, 0.25) }
    }
    static func flags(rank: Int) -> [Bool] { [rank % 2 == 0, true, false] }
    static func parameters(rank: Int) -> Simulation.Parameters {
        Simulation.Parameters(name: "rank \(rank)", viscosity: 0.25 * Double(rank))
    }

    /// The whole temperature field, row-major.
    static var globalTemperature: [Double] { (0..<temperatureShape[0]).map(temperature) }

    /// The whole pressure field, row-major.
    static var globalPressure: [Float] {
        (0..<pressureShape[0]).flatMap { row in (0..<pressureShape[1]).map { pressure(row, $0) } }
    }

    init(rank: Int) { self.rank = rank }

    init(from reader: SnapshotReader) throws { rank = reader.rank }

    func save(to writer: inout SnapshotWriter) throws {
        let rows = try BlockLayout.partition(Self.temperatureShape, part: rank, of: Self.ranks)
        let values = (rows.offset[0]..<rows.offset[0] + rows.extent[0]).map(Self.temperature)
        try writer.write(values, as: "temperature", block: rows)
        let tile = try BlockLayout.partition(Self.pressureShape, grid: [2, 2], coordinates: [rank / 2, rank % 2])
        var tileValues: [Float] = []
        for row in tile.offset[0]..<tile.offset[0] + tile.extent[0] {
            for column in tile.offset[1]..<tile.offset[1] + tile.extent[1] {
                tileValues.append(Self.pressure(row, column))
            }
        }
        try writer.write(tileValues, as: "fields/pressure", block: tile)
        try writer.write(Self.counts(rank: rank), as: "counts")
        try writer.write(Self.particles(rank: rank), as: "particles")
        try writer.write(Self.velocities(rank: rank), as: "velocities")
        try writer.write(Self.flags(rank: rank), as: "flags")
        try writer.write(value: 12.5 + Double(rank), as: "time")
        try writer.encode(Self.parameters(rank: rank), as: "parameters")
    }
}

/// Saves one checkpoint of `step` from ``DistributedState/ranks`` in-process ranks.
func saveDistributed(in directory: String, step: Step) throws {
    _ = try LocalGroup.run(ranks: DistributedState.ranks, timeout: 60) { communicator in
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
        try checkpointer.save(DistributedState(rank: communicator.rank), step: step)
        return true
    }
}

/// The Python of the virtual environment that `Scripts/bootstrap` makes (`.venv`, with zarr and
/// xarray from PyPI), or `CKPT_PYTHON`; ends the test (fails it under CI) when there is none.
func zarrPython() throws -> URL {
    if let override = ProcessInfo.processInfo.environment["CKPT_PYTHON"] { return URL(fileURLWithPath: override) }
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let python = package.appendingPathComponent(".venv/bin/python3")
    guard FileManager.default.isExecutableFile(atPath: python.path) else {
        try toolUnavailable("no Python virtual environment at \(python.path): run Scripts/bootstrap to make it")
    }
    return python
}

/// Rewrites the block layout that the manifest of `step` records for rank `rank`'s `entry` (`nil`:
/// none), with a matching checksum file, as someone who can write the directory could: the library
/// refuses to save inconsistent blocks, so this is how a test gets them.
func editBlock(
    in directory: String,
    step: Step,
    rank: Int,
    entry: String,
    _ block: [String: [Int]]?
) throws {
    let folder = CheckpointDirectory(path: directory).path(for: step) + "/"
    let url = URL(fileURLWithPath: folder + Manifest.fileName)
    var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    var shards = try #require(manifest["shards"] as? [[String: Any]])
    var entries = try #require(shards[rank]["entries"] as? [[String: Any]])
    let index = try #require(entries.firstIndex { $0["name"] as? String == entry })
    entries[index]["block"] = block
    shards[rank]["entries"] = entries
    manifest["shards"] = shards
    let bytes = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
    try bytes.write(to: url)
    let sum = try runProgram(URL(fileURLWithPath: "/usr/bin/sha256sum"), [url.path])
    try #require(sum.status == 0, "\(sum)")
    let digest = String(sum.stdout.prefix(64))
    try Data((digest + "  " + Manifest.fileName + "\n").utf8)
        .write(to: URL(fileURLWithPath: folder + Manifest.checksumFileName))
}
