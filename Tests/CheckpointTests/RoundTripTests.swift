import Foundation
import Testing

@testable import Checkpoint

struct Particle: BitwiseCopyable, Equatable {
    var position: SIMD3<Float>
    var mass: Double
    var id: Int32
}

@Suite("Round trips")
struct RoundTripTests {
    /// Element counts around the 4 KiB chunk boundary for 8-byte elements (512 per chunk).
    static let counts = [0, 1, 511, 512, 513, 1024, 5000]

    @Test(
        "Double arrays over sizes, levels and filters",
        arguments: counts,
        [
            Checkpointer.Configuration.Compression.none, .zstd(level: 1), .zstd(level: 3), .zstd(level: 19),
        ]
    )
    func doubles(count: Int, compression: Checkpointer.Configuration.Compression) throws {
        for filter in [FilterPolicy.automatic, .none, .shuffle] {
            let state = ArrayState(smoothField(count))
            let restored = try roundTrip(
                state,
                configuration: testConfiguration(compression: compression, filter: filter)
            )
            #expect(restored.values.count == count)
            #expect(restored.values.withUnsafeBytes { Array($0) } == state.values.withUnsafeBytes { Array($0) })
        }
    }

    @Test("Every scalar kind", arguments: RoundTripTests.counts)
    func scalars(count: Int) throws {
        var random = SplitMix64(seed: UInt64(count))
        try check((0..<count).map { _ in Float.random(in: -1...1, using: &random) })
        try check((0..<count).map { _ in Int8.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in Int16.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in UInt16.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in Int32.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in UInt32.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in Int64.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in UInt64.random(in: .min ... .max, using: &random) })
        try check((0..<count).map { _ in Int.random(in: -1000...1000, using: &random) })
        try check((0..<count).map { _ in Bool.random(using: &random) })
        try check((0..<count).map { _ in SIMD4<Double>(repeating: Double(random.next() % 100)) })
        try check(
            (0..<count).map { _ in
                Particle(
                    position: SIMD3(Float(random.next() % 7), 0, 1),
                    mass: 2.5,
                    id: Int32(truncatingIfNeeded: random.next())
                )
            }
        )
    }

    private func check<Element: BitwiseCopyable & Equatable>(_ values: [Element]) throws {
        for filter in [FilterPolicy.automatic, .shuffle] {
            let restored = try roundTrip(ArrayState(values), configuration: testConfiguration(filter: filter))
            #expect(restored.values == values, "\(Element.self) x \(values.count), \(filter)")
        }
    }

    @Test("Non-finite and signed-zero doubles are bit-exact")
    func specialValues() throws {
        let values: [Double] = [
            .nan, -.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
        ]
        let restored = try roundTrip(ArrayState(values))
        #expect(restored.values.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test("More than 64 MiB across many chunks with the default chunk size")
    func large() throws {
        let count = (65 << 20) / 8
        let values = smoothField(count, seed: 9)
        var configuration = Checkpointer.Configuration(policy: .always)
        configuration.threads = 2
        let restored = try roundTrip(ArrayState(values), configuration: configuration)
        #expect(restored.values == values)
    }

    struct Parameters: Codable, Equatable {
        var name: String
        var coefficients: [Double]
        var nested: [String: Int]
        var optional: Int?
        var special: [Double]
    }

    @Test("Any Codable value, with no conformance")
    func codable() throws {
        let value = Parameters(
            name: "heat ✓",
            coefficients: [0.1, 1e-300, -2.5],
            nested: ["a": 1, "b": 2],
            optional: nil,
            special: [.infinity, -.infinity]
        )
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(value, step: 3)
            let restored = try Checkpointer(directory: directory).restoreLatest(Parameters.self)
            #expect(restored?.state == value)
            #expect(restored?.step == 3)
            let nan = try #require(try roundTripCodable([Double.nan])).first
            #expect(nan?.isNaN == true)
        }
    }

    private func roundTripCodable<Value: Codable>(_ value: Value) throws -> Value? {
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(value, step: 1)
            return try Checkpointer(directory: directory).restoreLatest(Value.self)?.state
        }
    }

    struct Simulation: Checkpointable, Equatable {
        var field: [Double]
        var contiguous: ContiguousArray<Float>
        var time: Double
        var step: Int
        var parameters: Parameters
        var particles: ParticleSet

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write(field, as: "field", shape: [2, field.count / 2])
            try writer.write(contiguous, as: "contiguous")
            try writer.write(value: time, as: "time")
            try writer.write(value: step, as: "step")
            try writer.encode(parameters, as: "parameters")
            try writer.write(particles, as: "particles")
        }

        init(from reader: SnapshotReader) throws {
            field = try reader.read([Double].self, "field")
            contiguous = try reader.read(ContiguousArray<Float>.self, "contiguous")
            time = try reader.read(Double.self, "time")
            step = try reader.read(Int.self, "step")
            parameters = try reader.decode(Parameters.self, "parameters")
            particles = try reader.read(ParticleSet.self, "particles")
        }

        init(
            field: [Double],
            contiguous: ContiguousArray<Float>,
            time: Double,
            step: Int,
            parameters: Parameters,
            particles: ParticleSet
        ) {
            self.field = field
            self.contiguous = contiguous
            self.time = time
            self.step = step
            self.parameters = parameters
            self.particles = particles
        }
    }

    struct ParticleSet: Checkpointable, Equatable {
        var particles: [Particle]
        func save(to writer: inout SnapshotWriter) throws { try writer.write(particles, as: "all") }
        init(from reader: SnapshotReader) throws { particles = try reader.read([Particle].self, "all") }
        init(particles: [Particle]) { self.particles = particles }
    }

    @Test("A Checkpointable with raw, scalar, Codable and nested entries")
    func mixed() throws {
        let state = Simulation(
            field: smoothField(2000),
            contiguous: ContiguousArray((0..<100).map(Float.init)),
            time: 1.25,
            step: 42,
            parameters: Parameters(name: "x", coefficients: [], nested: [:], optional: 3, special: []),
            particles: ParticleSet(particles: [Particle(position: .one, mass: 1, id: 7)])
        )
        #expect(try roundTrip(state) == state)
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(state, step: 1)
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1)
            #expect(
                reader.entries.map(\.name) == ["field", "contiguous", "time", "step", "parameters", "particles/all"]
            )
            let field = try reader.info("field")
            #expect(field.shape == [2, 1000])
            #expect(field.elementType.scalar == .float64)
            #expect(field.filter == .shuffle)
            #expect(try reader.info("time").shape == [])
            #expect(try reader.info("parameters").isEncoded)
            #expect(try reader.info("particles/all").filter == .none)
        }
    }

    @Test("Unsafe buffers the application owns")
    func buffers() throws {
        let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 3000)
        defer { buffer.deallocate() }
        for index in buffer.indices { buffer[index] = Double(index) * 0.5 }
        try withTemporaryDirectory { directory in
            struct Raw: Checkpointable {
                let buffer: UnsafeMutableBufferPointer<Double>
                func save(to writer: inout SnapshotWriter) throws { try writer.write(buffer, as: "grid") }
                init(buffer: UnsafeMutableBufferPointer<Double>) { self.buffer = buffer }
                init(from reader: SnapshotReader) throws { fatalError("not used") }
            }
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(
                Raw(buffer: buffer),
                step: 1
            )
            let target = UnsafeMutableBufferPointer<Double>.allocate(capacity: 3000)
            defer { target.deallocate() }
            target.initialize(repeating: -1)
            try CheckpointDirectory(path: directory).openSnapshot(step: 1).read(into: target, "grid")
            #expect(Array(target) == Array(buffer))
        }
    }

    @Test("Compressible data shrinks; random data is stored raw and still verified")
    func storage() throws {
        try withTemporaryDirectory { directory in
            var random = SplitMix64(seed: 5)
            let noise = (0..<100_000).map { _ in UInt64.random(in: .min ... .max, using: &random) }
            struct Two: Checkpointable {
                var smooth: [Double]
                var noise: [UInt64]
                func save(to writer: inout SnapshotWriter) throws {
                    try writer.write(smooth, as: "smooth")
                    try writer.write(noise, as: "noise")
                }
                init(smooth: [Double], noise: [UInt64]) { self.smooth = smooth; self.noise = noise }
                init(from reader: SnapshotReader) throws {
                    smooth = try reader.read([Double].self, "smooth")
                    noise = try reader.read([UInt64].self, "noise")
                }
            }
            let state = Two(smooth: (0..<100_000).map { Double($0 / 100) }, noise: noise)
            let manifest = try Checkpointer(directory: directory, configuration: testConfiguration()).save(
                state,
                step: 1
            )
            let entries = Dictionary(uniqueKeysWithValues: manifest.shards[0].entries.map { ($0.name, $0) })
            #expect(entries["smooth"]!.storedBytes * 10 < entries["smooth"]!.rawBytes)
            #expect(entries["noise"]!.storedBytes == entries["noise"]!.rawBytes)
            let restored = try Checkpointer(directory: directory).restoreLatest(Two.self)
            #expect(restored?.state.noise == noise)
        }
    }
}
