import Checkpoint
import Foundation
import Testing

/// A plain struct with a padding gap after `charge`, a `SIMD3<Float>` (one padding lane) and a
/// fixed-size array, declaring its fields.
struct Body: StructuredElement {
    var mass: Double
    var charge: Int32
    var velocity: SIMD3<Float>
    var corners: (Float, Float, Float, Float)

    static let fields: [ElementType.Field] = [
        .field("mass", \Body.mass),
        .field("charge", \Body.charge),
        .field("velocity", \Body.velocity),
        .field("corners", \Body.corners, of: Float.self),
    ]

    init(_ index: Int) {
        let x = Float(index)
        mass = 0.5 * Double(index) + 1
        charge = Int32(index) - 2
        velocity = SIMD3(x, 2 * x, -x)
        corners = (x, -x, x / 2, 7)
    }
}

struct Bodies: Checkpointable {
    static let count = 5
    var bodies = (0..<count).map(Body.init)

    init() {}

    init(from reader: SnapshotReader) throws { bodies = try reader.read([Body].self, "bodies") }

    func save(to writer: inout SnapshotWriter) throws { try writer.write(bodies, as: "bodies") }
}

/// `ckpt extract` and `ckpt inspect` of entries whose elements declare their fields.
@Suite struct StructuredExtractTests {
    @Test func extractWritesAStructuredDtypeThatNumpyLoads() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [2]) { _ in Bodies() }
            let output = directory + "/bodies.npy"
            let result = try ckpt("extract", directory, "--entry", "bodies", "-o", output)
            #expect(result.status == 0, "\(result)")
            let file = try fileBytes(output)
            let length = Int(file[8]) | Int(file[9]) << 8
            #expect((10 + length) % 64 == 0)
            let header = String(decoding: file[10..<10 + length], as: UTF8.self)
            #expect(
                header.hasPrefix(
                    "{'descr': [('mass', '<f8'), ('charge', '<i4'), ('', '|V4'), ('velocity', '<f4', (3,)), "
                        + "('', '|V4'), ('corners', '<f4', (4,))], 'fortran_order': False, 'shape': (5,), }"
                ),
                "\(header)"
            )
            #expect(Array(file[(10 + length)...]) == littleEndianBytes(Bodies().bodies))

            let script = """
                import json, sys, numpy
                a = numpy.load(sys.argv[1])
                print(json.dumps({"names": list(a.dtype.names), "itemsize": a.dtype.itemsize, "shape": list(a.shape),
                                  "mass": a["mass"].tolist(), "charge": a["charge"].tolist(),
                                  "velocity": a["velocity"].tolist(), "corners": a["corners"].tolist()}))
                """
            switch try runPython(script, [output]) {
            case .unavailable(let reason):
                try toolUnavailable("the NumPy check of a structured entry: \(reason)")
            case .output(let line):
                struct Loaded: Decodable {
                    var names: [String]
                    var itemsize: Int
                    var shape: [Int]
                    var mass: [Double]
                    var charge: [Int32]
                    var velocity: [[Float]]
                    var corners: [[Float]]
                }
                let loaded = try JSONDecoder().decode(Loaded.self, from: Data(line.utf8))
                let bodies = Bodies().bodies
                #expect(loaded.names == ["mass", "charge", "velocity", "corners"])
                #expect(loaded.itemsize == MemoryLayout<Body>.stride)
                #expect(loaded.shape == [Bodies.count])
                #expect(loaded.mass == bodies.map(\.mass))
                #expect(loaded.charge == bodies.map(\.charge))
                #expect(loaded.velocity == bodies.map { [$0.velocity.x, $0.velocity.y, $0.velocity.z] })
                #expect(loaded.corners == bodies.map { [$0.corners.0, $0.corners.1, $0.corners.2, $0.corners.3] })
            }
        }
    }

    @Test func inspectShowsTheFields() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [2]) { _ in Bodies() }
            let human = try ckpt("inspect", directory)
            #expect(human.status == 0, "\(human)")
            #expect(
                human.stdout.contains(
                    "fields of bodies: mass: float64 at 0, charge: int32 at 8, velocity: float32 x3 at 16, corners: float32 x4 at 32"
                ),
                "\(human)"
            )
            let json = try ckpt("inspect", directory, "--json")
            #expect(json.status == 0, "\(json)")
            struct Report: Decodable {
                struct Entry: Decodable { var fields: [ElementType.Field]? }
                var entries: [Entry]
            }
            #expect(try decodeJSON(Report.self, json).entries.first?.fields == Body.fields)
        }
    }
}
