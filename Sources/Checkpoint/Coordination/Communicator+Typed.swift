import Foundation

// Typed collectives over the byte primitives. Arrays of `BitwiseCopyable` elements travel as their
// raw bytes (native byte order: every rank must run on the same architecture, as MPI jobs do);
// `Codable` values travel as JSON. Sender and receiver must use the same element type or value
// type, as with MPI datatypes; a message whose size does not fit the type is reported, not guessed.
//
// The array overloads are disfavoured so that an array literal (`send([21], …)`) still means bytes,
// as it did before they existed; `Codable` values take a `value:` label, so that an array of
// `Double`s (which is `Codable` too) always travels raw.

extension Communicator {
    // MARK: Arrays of BitwiseCopyable elements

    /// Sends an array of `BitwiseCopyable` elements to rank `destination` as raw bytes; buffered:
    /// returns without waiting for the receive.
    ///
    /// ```swift
    /// try communicator.send(field[lastRow], to: right, tag: 1)   // [Double]
    /// ```
    /// - Parameters:
    ///   - values: The elements (no per-element encoding: one copy of their bytes).
    ///   - destination: The receiving rank.
    ///   - tag: Matches the receive; messages with one tag between two ranks arrive in order.
    /// - Throws: What ``send(_:to:tag:)`` throws for bytes (`invalidConfiguration` for a rank that
    ///   does not exist, `peerFailed`, `timedOut`).
    @_disfavoredOverload
    public func send<Element: BitwiseCopyable>(_ values: [Element], to destination: Int, tag: Int) throws {
        try send(Self.bytes(of: values), to: destination, tag: tag)
    }

    /// Receives an array of `BitwiseCopyable` elements that rank `source` sent with
    /// `send(_:to:tag:)`.
    ///
    /// ```swift
    /// let halo = try communicator.receive([Double].self, from: left, tag: 1)
    /// ```
    /// - Parameters:
    ///   - type: The array type, e.g. `[Double].self`; the sender's element type.
    ///   - source: The sending rank.
    ///   - tag: The tag the sender used.
    /// - Returns: The elements, in the sender's order.
    /// - Throws: `typeMismatch` when the message is not a whole number of elements; what
    ///   ``receive(from:tag:)`` throws.
    @_disfavoredOverload
    public func receive<Element: BitwiseCopyable>(
        _ type: [Element].Type,
        from source: Int,
        tag: Int
    ) throws -> [Element] {
        try Self.elements(of: receive(from: source, tag: tag), from: "rank \(source)")
    }

    /// Sends `values` to `destination` and receives an array from `source` (each may be `nil`);
    /// safe against deadlock whatever the order neighbours call it in: the halo exchange of a ring or grid.
    ///
    /// ```swift
    /// let halo = try communicator.exchange(send: [values.last!], to: right, receiveFrom: left, tag: 7)
    /// ```
    /// - Returns: The received elements, or `nil` when `source` is `nil`.
    /// - Throws: What `send(_:to:tag:)` and
    ///   ``receive(_:from:tag:)->[Element]`` throw.
    @_disfavoredOverload
    public func exchange<Element: BitwiseCopyable>(
        send values: [Element],
        to destination: Int?,
        receiveFrom source: Int?,
        tag: Int
    ) throws -> [Element]? {
        try exchange(send: Self.bytes(of: values), to: destination, receiveFrom: source, tag: tag).map {
            try Self.elements(of: $0, from: "rank \(source ?? -1)")
        }
    }

    /// Returns `root`'s array on every rank (the argument is ignored on other ranks).
    ///
    /// - Throws: `typeMismatch` when the ranks disagree on the element type's size; what
    ///   ``broadcast(_:root:)`` throws for bytes.
    @_disfavoredOverload
    public func broadcast<Element: BitwiseCopyable>(_ values: [Element], root: Int) throws -> [Element] {
        try Self.elements(of: broadcast(rank == root ? Self.bytes(of: values) : [], root: root), from: "rank \(root)")
    }

    /// Collects every rank's array on `root`, in rank order; other ranks get `nil`.
    ///
    /// The arrays may differ in length.
    /// - Throws: `typeMismatch` when a rank's message is not a whole number of elements; what
    ///   ``gather(_:root:)`` throws for bytes.
    @_disfavoredOverload
    public func gather<Element: BitwiseCopyable>(_ values: [Element], root: Int) throws -> [[Element]]? {
        try gather(Self.bytes(of: values), root: root)?.enumerated().map { rank, bytes in
            try Self.elements(of: bytes, from: "rank \(rank)")
        }
    }

    /// Every rank's array, in rank order, on every rank.
    ///
    /// The arrays may differ in length.
    /// - Throws: `typeMismatch` when a rank's message is not a whole number of elements; what
    ///   ``allgather(_:)-([UInt8])`` throws.
    @_disfavoredOverload
    public func allgather<Element: BitwiseCopyable>(_ values: [Element]) throws -> [[Element]] {
        try allgather(Self.bytes(of: values)).enumerated().map { rank, bytes in
            try Self.elements(of: bytes, from: "rank \(rank)")
        }
    }

    // MARK: Codable values

    /// Sends a `Codable` value (JSON-encoded) to rank `destination`; buffered.
    ///
    /// ```swift
    /// try communicator.send(value: settings, to: 0, tag: 2)   // any Codable value
    /// ```
    /// - Throws: `encodingFailed` when the value cannot be encoded; what ``send(_:to:tag:)`` throws.
    public func send<Value: Codable>(value: Value, to destination: Int, tag: Int) throws {
        try send(Self.encoded(value), to: destination, tag: tag)
    }

    /// Receives a `Codable` value that rank `source` sent with ``send(value:to:tag:)``.
    ///
    /// - Returns: The decoded value.
    /// - Throws: `decodingFailed` when the message is not a `Value`; what ``receive(from:tag:)`` throws.
    public func receive<Value: Codable>(value type: Value.Type, from source: Int, tag: Int) throws -> Value {
        try Self.decoded(Value.self, from: receive(from: source, tag: tag), sender: "rank \(source)")
    }

    /// Returns `root`'s value on every rank (the argument is ignored on other ranks).
    ///
    /// ```swift
    /// let settings = try communicator.broadcast(value: communicator.isRoot ? Settings(file: path) : Settings(), root: 0)
    /// ```
    /// - Throws: `encodingFailed` or `decodingFailed`; what ``broadcast(_:root:)`` throws for bytes.
    public func broadcast<Value: Codable>(value: Value, root: Int) throws -> Value {
        try broadcastFromRoot(rank == root ? value : nil, root: root)
    }

    /// Collects every rank's value on `root`, in rank order; other ranks get `nil`.
    ///
    /// - Throws: `encodingFailed` or `decodingFailed`; what ``gather(_:root:)`` throws for bytes.
    public func gather<Value: Codable>(value: Value, root: Int) throws -> [Value]? {
        try gather(Self.encoded(value), root: root)?.enumerated().map { rank, bytes in
            try Self.decoded(Value.self, from: bytes, sender: "rank \(rank)")
        }
    }

    /// Every rank's value, in rank order, on every rank.
    ///
    /// ```swift
    /// let loads = try communicator.allgather(value: Load(cells: cells.count, seconds: elapsed))   // [Load], one per rank
    /// ```
    /// - Throws: `encodingFailed` or `decodingFailed`; what ``allgather(_:)-([UInt8])`` throws.
    public func allgather<Value: Codable>(value: Value) throws -> [Value] {
        if size == 1 { return [value] }
        return try allgather(Self.encoded(value)).enumerated().map { rank, bytes in
            try Self.decoded(Value.self, from: bytes, sender: "rank \(rank)")
        }
    }

    /// The default ``Communicator/broadcastValue(_:root:)``: JSON bytes, decoded on every rank.
    public func broadcastValue<Value: Codable & Sendable>(_ value: Value?, root: Int) throws -> Value {
        try broadcastFromRoot(value, root: root)
    }

    /// Broadcasts a `Codable` value from `root`, which alone needs one (`nil` elsewhere).
    func broadcastFromRoot<Value: Codable>(_ value: Value?, root: Int) throws -> Value {
        var bytes: [UInt8] = []
        if rank == root {
            guard let value else { preconditionFailure("the root of a broadcast has no value") }
            bytes = try Self.encoded(value)
        }
        return try Self.decoded(Value.self, from: broadcast(bytes, root: root), sender: "rank \(root)")
    }

    // MARK: Wire forms

    private static func bytes<Element: BitwiseCopyable>(of values: [Element]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    private static func elements<Element: BitwiseCopyable>(
        of bytes: [UInt8],
        from sender: String
    ) throws(CheckpointError) -> [Element] {
        let stride = MemoryLayout<Element>.stride
        guard stride > 0 else { return [] }
        guard bytes.count % stride == 0 else {
            throw CheckpointError(
                .typeMismatch,
                "\(sender) sent \(bytes.count) bytes, not a whole number of \(Element.self) (\(stride) bytes each); "
                    + "send and receive the same element type"
            )
        }
        return [Element](unsafeUninitializedCapacity: bytes.count / stride) { buffer, count in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            count = bytes.count / stride
        }
    }

    static func encoded<Value: Encodable>(_ value: Value) throws(CheckpointError) -> [UInt8] {
        do {
            return Array(try JSONCoding.encoder.encode(value))
        } catch {
            throw CheckpointError(.encodingFailed, "could not encode a \(Value.self) to send", underlying: error)
        }
    }

    static func decoded<Value: Decodable>(
        _ type: Value.Type,
        from bytes: [UInt8],
        sender: String
    ) throws(CheckpointError) -> Value {
        do {
            return try JSONCoding.decoder.decode(Value.self, from: Data(bytes))
        } catch {
            throw CheckpointError(
                .decodingFailed,
                "\(sender) sent something that is not a \(Value.self); send and receive the same type",
                underlying: error
            )
        }
    }
}
