import Foundation

/// Collects the named entries of one snapshot.
///
/// A ``Checkpointable`` type writes its state here in ``Checkpointable/save(to:)``. Arrays and
/// buffers of `BitwiseCopyable` elements are recorded by reference and later written as raw
/// bytes in bulk (arrays are retained, not copied); `Codable` values are encoded as JSON.
///
/// ```swift
/// func save(to writer: inout SnapshotWriter) throws {
///     try writer.write(temperature, as: "temperature", shape: [ny, nx])
///     try writer.write(value: time, as: "time")
///     try writer.encode(parameters, as: "parameters")
/// }
/// ```
public struct SnapshotWriter: Sendable {
    typealias Pending = PendingEntry

    private(set) var entries: [Pending] = []
    private var names: Set<String> = []
    private var prefix = ""

    /// Creates an empty writer.
    public init() {}

    /// The names written so far, in order.
    public var entryNames: [String] { entries.map(\.name) }

    /// Writes an array of `BitwiseCopyable` elements as raw bytes.
    ///
    /// The array is retained, not copied (it is copy-on-write), and compressed when the snapshot is written.
    /// - Parameters:
    ///   - array: The elements.
    ///   - name: The entry's name (see ``EntryName``).
    ///   - shape: The array's dimensions, row-major; the product must equal `array.count`. Defaults to `[count]`.
    /// - Throws: ``CheckpointError`` with code `invalidName`, `duplicateName` or `shapeMismatch`.
    public mutating func write<Element: BitwiseCopyable>(
        _ array: [Element],
        as name: String,
        shape: [Int]? = nil
    ) throws(CheckpointError) {
        try add(name, .raw, .of(Element.self), shape: shape, count: array.count, ArraySource(array: array))
    }

    /// Writes a `ContiguousArray` of `BitwiseCopyable` elements as raw bytes. See ``write(_:as:shape:)-([Element],_,_)``.
    public mutating func write<Element: BitwiseCopyable>(
        _ array: ContiguousArray<Element>,
        as name: String,
        shape: [Int]? = nil
    ) throws(CheckpointError) {
        try add(name, .raw, .of(Element.self), shape: shape, count: array.count, ContiguousArraySource(array: array))
    }

    /// Writes memory the application owns as raw bytes.
    ///
    /// The memory must stay valid and unchanged until the save that uses this writer returns.
    public mutating func write<Element: BitwiseCopyable>(
        _ buffer: UnsafeBufferPointer<Element>,
        as name: String,
        shape: [Int]? = nil
    ) throws(CheckpointError) {
        let bytes = UnsafeRawBufferPointer(buffer)
        try add(name, .raw, .of(Element.self), shape: shape, count: buffer.count, PointerSource(bytes: bytes))
    }

    /// Writes memory the application owns as raw bytes. See ``write(_:as:shape:)-(UnsafeBufferPointer<Element>,_,_)``.
    public mutating func write<Element: BitwiseCopyable>(
        _ buffer: UnsafeMutableBufferPointer<Element>,
        as name: String,
        shape: [Int]? = nil
    ) throws(CheckpointError) {
        try write(UnsafeBufferPointer(buffer), as: name, shape: shape)
    }

    /// Writes one `BitwiseCopyable` value (an `Int`, a `Double`, a plain struct) as raw bytes, bit-exact.
    public mutating func write<Value: BitwiseCopyable>(value: Value, as name: String) throws(CheckpointError) {
        let bytes = withUnsafeBytes(of: value) { Array($0) }
        try add(name, .raw, .of(Value.self), shape: [], count: 1, BytesSource(bytes: bytes))
    }

    /// Encodes a `Codable` value as JSON (non-finite floating-point values included).
    ///
    /// Fine for parameters and metadata; for large numeric arrays use ``write(_:as:shape:)-([Element],_,_)``,
    /// which is orders of magnitude faster.
    /// - Throws: ``CheckpointError`` with code `encodingFailed` when the value's `encode(to:)` fails.
    public mutating func encode<Value: Encodable>(_ value: Value, as name: String) throws(CheckpointError) {
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONCoding.encoder.encode(value))
        } catch {
            throw CheckpointError(.encodingFailed, "could not encode '\(prefix + name)' as JSON", underlying: error)
        }
        try add(name, .json, .codable(Value.self), shape: [bytes.count], count: bytes.count, BytesSource(bytes: bytes))
    }

    /// Writes a nested ``Checkpointable`` value; its entries are named `name/…`.
    public mutating func write(_ child: some Checkpointable, as name: String) throws {
        try EntryName.validate(prefix + name)
        let saved = prefix
        prefix = prefix + name + "/"
        defer { prefix = saved }
        try child.save(to: &self)
    }

    /// Bytes of application-owned memory (buffers) among the entries: what staging must copy.
    var ownedMemoryBytes: Int {
        entries.reduce(0) { $0 + ($1.source is PointerSource ? $1.source.byteCount : 0) }
    }

    /// Replaces references to application-owned memory by private copies, so the application may
    /// change that memory while the checkpoint is written in the background. Arrays stay shared
    /// (copy-on-write).
    mutating func copyOwnedMemory(pool: StagingPool) {
        for index in entries.indices {
            if let pointer = entries[index].source as? PointerSource {
                let storage = pool.take(count: pointer.bytes.count)
                entries[index].source = StagedCopySource(copying: pointer.bytes, into: storage)
            }
        }
    }

    /// The staging buffers of copied entries, to give back to the pool once written.
    var stagedStorage: [StagedBytes] {
        entries.compactMap { ($0.source as? StagedCopySource)?.storage }
    }

    mutating func add(
        _ localName: String,
        _ encoding: EntryEncoding,
        _ type: ElementType,
        shape: [Int]?,
        count: Int,
        _ source: any EntrySource,
        block: BlockLayout? = nil
    ) throws(CheckpointError) {
        let name = prefix + localName
        try EntryName.validate(name)
        let shape = shape ?? [count]
        guard shape.count <= ShardFormat.maximumDimensions, shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(.shapeMismatch, "shape \(shape) of '\(name)' is invalid")
        }
        let product = shape.reduce(1, *)
        guard product == count else {
            throw CheckpointError(
                .shapeMismatch,
                "shape \(shape) of '\(name)' holds \(product) elements but \(count) were given"
            )
        }
        if let fields = type.fields, let problem = ElementType.fieldsProblem(fields, size: type.size) {
            throw CheckpointError(
                .invalidFields,
                "\(PrintableText.escaped(type.typeName)), the element type of '\(name)', \(problem); fix its StructuredElement.fields"
            )
        }
        guard names.insert(name).inserted else {
            throw CheckpointError(
                .duplicateName,
                "entry '\(name)' was written twice; give each piece of state its own name"
            )
        }
        entries.append(
            Pending(name: name, encoding: encoding, elementType: type, shape: shape, source: source, block: block)
        )
    }
}
