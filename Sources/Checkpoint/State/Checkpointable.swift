/// State that can be saved into a snapshot and rebuilt from one.
///
/// Conform when you want control over how state is laid out: large numeric arrays go through
/// the raw path (``SnapshotWriter/write(_:as:shape:)-([Element],_,_)``), small parameters through `Codable`.
///
/// ```swift
/// struct Simulation: Checkpointable {
///     var field: [Double]
///     var time: Double
///
///     func save(to writer: inout SnapshotWriter) throws {
///         try writer.write(field, as: "field")
///         try writer.write(value: time, as: "time")
///     }
///
///     init(from reader: SnapshotReader) throws {
///         field = try reader.read([Double].self, "field")
///         time = try reader.read(Double.self, "time")
///     }
/// }
/// ```
///
/// A `Codable` type needs no conformance at all: ``Checkpointer`` saves it as one JSON entry.
/// Restoring builds a new value, so a failed restore never touches the value you hold.
public protocol Checkpointable {
    /// Writes this value's state as named entries.
    /// - Throws: Any error; the checkpoint is then abandoned and the error rethrown to the caller.
    func save(to writer: inout SnapshotWriter) throws

    /// Rebuilds a value from a verified snapshot.
    /// - Throws: Any error; restore then fails and nothing is applied.
    init(from reader: SnapshotReader) throws
}

/// Wraps a `Codable` value so that the ``Checkpointer`` can save it as one JSON entry named `"state"`.
struct CodableState<Value: Codable>: Checkpointable {
    static var entryName: String { "state" }
    var value: Value

    init(_ value: Value) { self.value = value }

    func save(to writer: inout SnapshotWriter) throws { try writer.encode(value, as: Self.entryName) }

    init(from reader: SnapshotReader) throws { value = try reader.decode(Value.self, Self.entryName) }
}
