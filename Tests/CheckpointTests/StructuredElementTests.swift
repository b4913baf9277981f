import Foundation
import Testing

@testable import Checkpoint

/// A plain struct with a padding gap (bytes 12..<16), a vector field with a padding lane and a
/// fixed-size array field.
struct FieldedParticle: StructuredElement, Equatable {
    var mass: Double
    var charge: Int32
    var velocity: SIMD3<Float>
    var spin: Float
    var corners: (Float, Float, Float, Float)

    static let fields: [ElementType.Field] = [
        .field("mass", \FieldedParticle.mass),
        .field("charge", \FieldedParticle.charge),
        .field("velocity", \FieldedParticle.velocity),
        .field("spin", \FieldedParticle.spin),
        .field("corners", \FieldedParticle.corners, of: Float.self),
    ]

    init(_ index: Int) {
        let x = Float(index)
        mass = 1.5 + Double(index)
        charge = Int32(index % 7) - 3
        velocity = SIMD3(x, -x, 0.25)
        spin = x / 8
        corners = (x, x + 1, x + 2, x + 3)
    }

    static func == (a: FieldedParticle, b: FieldedParticle) -> Bool {
        a.mass == b.mass && a.charge == b.charge && a.velocity == b.velocity && a.spin == b.spin
            && [a.corners.0, a.corners.1, a.corners.2, a.corners.3] == [
                b.corners.0, b.corners.1, b.corners.2, b.corners.3,
            ]
    }
}

/// `FieldedParticle`'s layout with one field renamed: a restore from `FieldedParticle` data must name it.
struct RenamedParticle: StructuredElement {
    var weight: Double
    var charge: Int32
    var velocity: SIMD3<Float>
    var spin: Float
    var corners: (Float, Float, Float, Float)

    static let fields: [ElementType.Field] = [
        .field("weight", \RenamedParticle.weight),
        .field("charge", \RenamedParticle.charge),
        .field("velocity", \RenamedParticle.velocity),
        .field("spin", \RenamedParticle.spin),
        .field("corners", \RenamedParticle.corners, of: Float.self),
    ]
}

/// Declares two fields over the same bytes.
struct OverlappingFields: StructuredElement {
    var a: Double
    static let fields: [ElementType.Field] = [.field("a", \OverlappingFields.a), .field("b", \OverlappingFields.a)]
}

struct ParticleState<Element: BitwiseCopyable>: Checkpointable {
    var particles: [Element]

    init(_ particles: [Element]) { self.particles = particles }

    func save(to writer: inout SnapshotWriter) throws { try writer.write(particles, as: "particles") }

    init(from reader: SnapshotReader) throws { particles = try reader.read([Element].self, "particles") }
}

@Suite("Structured elements")
struct StructuredElementTests {
    static let particles = (0..<300).map(FieldedParticle.init)

    @Test("Key paths give the fields' offsets, scalars and counts")
    func fieldsFromKeyPaths() {
        let type = ElementType.of(FieldedParticle.self)
        #expect(type.scalar == .opaque)
        #expect(type.size == 64)
        #expect(
            type.fields == [
                ElementType.Field(name: "mass", offset: 0, scalar: .float64),
                ElementType.Field(name: "charge", offset: 8, scalar: .int32),
                ElementType.Field(name: "velocity", offset: 16, scalar: .float32, count: 3),
                ElementType.Field(name: "spin", offset: 32, scalar: .float32),
                ElementType.Field(name: "corners", offset: 36, scalar: .float32, count: 4),
            ]
        )
        #expect(ElementType.of(Double.self).fields == nil)
        #expect(ElementType.of(SIMD3<Float>.self).fields == nil)
    }

    @Test("Round trip: the fields are recorded in the manifest and shown by the reader")
    func roundTrip() throws {
        try withTemporaryDirectory { directory in
            let manifest = try Checkpointer(directory: directory, configuration: testConfiguration())
                .save(ParticleState(Self.particles), step: 4)
            #expect(manifest.shards[0].entries[0].fields == FieldedParticle.fields)
            let restored = try Checkpointer(directory: directory, configuration: testConfiguration())
                .restoreLatest(ParticleState<FieldedParticle>.self)
            #expect(restored?.state.particles == Self.particles)
            let info = try CheckpointDirectory(path: directory).openSnapshot(step: 4).info("particles")
            #expect(info.elementType.fields == FieldedParticle.fields)
            try CheckpointDirectory(path: directory).verify(step: 4)
        }
    }

    @Test("A restore into a type whose fields differ names the field")
    func mismatchNamesTheField() throws {
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration())
                .save(ParticleState(Self.particles), step: 1)
            let error = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).openSnapshot(step: 1).read([RenamedParticle].self, "particles")
            }
            #expect(error.code == .typeMismatch)
            #expect(error.message.contains("'mass'"), "\(error)")
        }
    }

    @Test("A checkpoint without fields (as older writers wrote) restores as before")
    func checkpointWithoutFields() throws {
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration())
                .save(ParticleState(Self.particles), step: 1)
            // The shard holds no fields: a manifest without them is exactly what an older build wrote.
            try AuthenticationTests.forgeManifest(directory, step: 1) { manifest in
                manifest.shards[0].entries[0].fields = nil
            }
            let text = try String(contentsOfFile: directory + "/ckpt-000000000001/manifest.json", encoding: .utf8)
            #expect(!text.contains("\"fields\""))
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1)
            #expect(try reader.info("particles").elementType.fields == nil)
            #expect(try reader.read([FieldedParticle].self, "particles") == Self.particles)
        }
    }

    @Test(
        "Invalid field declarations are refused",
        arguments: [
            ([], "declares no fields"),
            ([ElementType.Field(name: "", offset: 0, scalar: .float64)], "printable ASCII"),
            ([ElementType.Field(name: "a\nb", offset: 0, scalar: .float64)], "printable ASCII"),
            ([ElementType.Field(name: String(repeating: "n", count: 65), offset: 0, scalar: .float64)], "printable"),
            (
                [
                    ElementType.Field(name: "a", offset: 0, scalar: .float32),
                    ElementType.Field(name: "a", offset: 4, scalar: .float32),
                ], "twice"
            ),
            ([ElementType.Field(name: "a", offset: -1, scalar: .float64)], "no stored offset"),
            ([ElementType.Field(name: "a", offset: 0, scalar: .opaque)], "not a number"),
            ([ElementType.Field(name: "a", offset: 0, scalar: .float32, count: 0)], "invalid count"),
            ([ElementType.Field(name: "a", offset: 12, scalar: .float64)], "outside"),
            ([ElementType.Field(name: "a", offset: 0, scalar: .float32, count: Int.max)], "invalid count"),
            (
                [
                    ElementType.Field(name: "a", offset: 0, scalar: .float64),
                    ElementType.Field(name: "b", offset: 4, scalar: .float32),
                ], "overlap"
            ),
            (
                (0...256).map { ElementType.Field(name: "f\($0)", offset: 0, scalar: .uint8) },
                "more than the 256"
            ),
        ] as [([ElementType.Field], String)]
    )
    func invalidDeclarations(fields: [ElementType.Field], problem: String) throws {
        let message = try #require(ElementType.fieldsProblem(fields, size: 16))
        #expect(message.contains(problem), "\(message)")
        var writer = SnapshotWriter()
        let type = ElementType(scalar: .opaque, size: 16, typeName: "Test.Bad", fields: fields)
        let error = try #require(throws: CheckpointError.self) {
            try writer.add("bad", .raw, type, shape: nil, count: 0, ArraySource(array: [UInt8]()))
        }
        #expect(error.code == .invalidFields)
        #expect(writer.entries.isEmpty)
    }

    @Test("A key path without a stored offset gives a field the save refuses")
    func computedProperty() {
        struct Computed { var a: Double; var twice: Double { a * 2 } }
        let field = ElementType.Field.field("twice", \Computed.twice)
        #expect(field.offset == -1)
        #expect(ElementType.fieldsProblem([field], size: 8)?.contains("no stored offset") == true)
    }

    @Test("A save with invalid fields throws before anything is written")
    func saveRefusesInvalidFields() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            let error = try #require(throws: CheckpointError.self) {
                try checkpointer.save(ParticleState([OverlappingFields(a: 1)]), step: 1)
            }
            #expect(error.code == .invalidFields, "\(error)")
            #expect(error.message.contains("overlap"), "\(error)")
            #expect(try CheckpointDirectory(path: directory).committedSteps().isEmpty)
        }
    }

    /// Manifests whose fields a hostile writer edited: each must be refused as damaged, never trap.
    static let hostileEdits: [(String, @Sendable (inout Manifest.Entry) -> Void)] = [
        ("past the element", { $0.fields?[0].offset = 60 }),
        ("overlapping", { $0.fields?[1].offset = 4 }),
        ("too many", { entry in entry.fields = (0...256).map { .init(name: "f\($0)", offset: 0, scalar: .uint8) } }),
        ("a long name", { $0.fields?[0].name = String(repeating: "x", count: 65) }),
        ("a control character", { $0.fields?[0].name = "ma\u{7}ss" }),
        ("a negative offset", { $0.fields?[0].offset = -8 }),
        ("an overflowing count", { $0.fields?[2].count = Int.max / 2 }),
        ("an empty list", { $0.fields = [] }),
        ("a duplicate name", { $0.fields?[1].name = "mass" }),
        ("an opaque scalar", { $0.fields?[0].scalar = .opaque }),
        ("another entry's name", { $0.name = "nothing" }),
    ]

    @Test("Hostile fields in a manifest are refused as damaged", arguments: 0..<11)
    func hostileManifest(edit: Int) throws {
        try withTemporaryDirectory { directory in
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
                try checkpointer.save(ParticleState(Self.particles), step: 1)
                try checkpointer.save(ParticleState(Self.particles), step: 2)
            }
            try AuthenticationTests.forgeManifest(directory, step: 2) { manifest in
                Self.hostileEdits[edit].1(&manifest.shards[0].entries[0])
            }
            let error = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).openSnapshot(step: 2)
            }
            #expect(error.isCorruption, "\(Self.hostileEdits[edit].0): \(error)")
            // A restore falls back past it.
            let restored = try Checkpointer(directory: directory, configuration: testConfiguration())
                .restoreLatest(ParticleState<FieldedParticle>.self)
            #expect(restored?.step == 1, "\(Self.hostileEdits[edit].0)")
        }
    }

    @Test("Fields recorded for an entry of numbers are refused")
    func fieldsOnNumbers() throws {
        try withTemporaryDirectory { directory in
            try Checkpointer(directory: directory, configuration: testConfiguration())
                .save(ParticleState([Double](repeating: 1, count: 8)), step: 1)
            try AuthenticationTests.forgeManifest(directory, step: 1) { manifest in
                manifest.shards[0].entries[0].fields = [.init(name: "x", offset: 0, scalar: .float64)]
            }
            let error = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).openSnapshot(step: 1)
            }
            #expect(error.code == .corruptData, "\(error)")
        }
    }

    @Test("The Python reader returns a structured array and refuses hostile fields")
    func pythonReader() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            try checkpointer.save(ParticleState(Self.particles), step: 1)
            try checkpointer.finish()
            let script = """
                import json, sys
                sys.path.insert(0, sys.argv[1])
                import ckpt_read
                a = ckpt_read.read_array(sys.argv[2], "particles")
                print(json.dumps({"names": list(a.dtype.names), "itemsize": a.dtype.itemsize, "shape": list(a.shape),
                                  "mass": a["mass"].tolist(), "charge": a["charge"].tolist(),
                                  "velocity": a["velocity"].tolist(), "spin": a["spin"].tolist(),
                                  "corners": a["corners"].tolist()}))
                """
            let scripts = PythonReaderTests.script.deletingLastPathComponent().path
            let output = try python(script, [scripts, directory])
            struct Loaded: Decodable {
                var names: [String]
                var itemsize: Int
                var shape: [Int]
                var mass: [Double]
                var charge: [Int32]
                var velocity: [[Float]]
                var spin: [Float]
                var corners: [[Float]]
            }
            let loaded = try JSONDecoder().decode(Loaded.self, from: Data(output.utf8))
            #expect(loaded.names == ["mass", "charge", "velocity", "spin", "corners"])
            #expect(loaded.itemsize == 64)
            #expect(loaded.shape == [300])
            #expect(loaded.mass == Self.particles.map(\.mass))
            #expect(loaded.charge == Self.particles.map(\.charge))
            #expect(loaded.velocity == Self.particles.map { [$0.velocity.x, $0.velocity.y, $0.velocity.z] })
            #expect(loaded.spin == Self.particles.map(\.spin))
            #expect(loaded.corners == Self.particles.map { [$0.corners.0, $0.corners.1, $0.corners.2, $0.corners.3] })

            // The command line prints the fields and the first elements by name.
            let summary = try python(
                "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                [PythonReaderTests.script.path, directory]
            )
            #expect(summary.contains("\"velocity\""), "\(summary)")
            #expect(summary.contains("\"itemsize\": 64"), "\(summary)")

            try AuthenticationTests.forgeManifest(directory, step: 1) { manifest in
                manifest.shards[0].entries[0].fields?[0].offset = 60
            }
            let refused = try pythonStatus(PythonReaderTests.script.path, [directory, "--step", "1"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("fields of 'particles'"), "\(refused.stderr)")
        }
    }

    /// Runs `python3 -c script arguments…`; a missing python3 or NumPy ends the test (fails under CI).
    private func python(_ script: String, _ arguments: [String]) throws -> String {
        let result = try pythonStatus("-c", [script] + arguments)
        if result.status == 127 { try toolUnavailable("python3 is not installed") }
        if result.stderr.contains("No module named 'numpy'") || result.stderr.contains("read_array needs NumPy") {
            try toolUnavailable("NumPy is not installed for python3")
        }
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdout
    }

    private func pythonStatus(
        _ first: String,
        _ arguments: [String]
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", first] + arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        let diagnostics = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: text, as: UTF8.self),
            String(decoding: diagnostics, as: UTF8.self)
        )
    }
}
