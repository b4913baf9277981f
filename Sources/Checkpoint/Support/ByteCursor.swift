/// Appends little-endian fixed-width integers and length-prefixed strings.
struct ByteBuilder {
    private(set) var bytes: [UInt8] = []

    mutating func append<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(contentsOf other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }

    /// A `u16` byte length, then the UTF-8 bytes.
    mutating func appendString16(_ string: String) {
        let utf8 = Array(string.utf8)
        append(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}

/// Reads little-endian fixed-width integers from a byte array, checking every length first.
struct ByteCursor {
    private let bytes: [UInt8]
    private var position = 0
    let path: String

    init(_ bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    mutating func u8() throws(CheckpointError) -> UInt8 { try integer() }
    mutating func u16() throws(CheckpointError) -> UInt16 { try integer() }
    mutating func u32() throws(CheckpointError) -> UInt32 { try integer() }
    mutating func u64() throws(CheckpointError) -> UInt64 { try integer() }

    mutating func bytes(_ count: Int) throws(CheckpointError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw corrupt("needs \(count) bytes, \(remaining) remain") }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// A `u16` byte length (at most `limit`), then that many bytes of UTF-8.
    mutating func string16(limit: Int) throws(CheckpointError) -> String {
        let count = Int(try u16())
        guard count <= limit else { throw corrupt("a string of \(count) bytes exceeds the limit of \(limit)") }
        let raw = try bytes(count)
        guard let string = String(validating: raw, as: UTF8.self) else { throw corrupt("a string is not valid UTF-8") }
        return string
    }

    func corrupt(_ what: String) -> CheckpointError {
        CheckpointError(.corruptData, "shard index is damaged: \(what) (at byte \(position) of the index)", path: path)
    }

    private mutating func integer<Integer: FixedWidthInteger>() throws(CheckpointError) -> Integer {
        let size = MemoryLayout<Integer>.size
        guard size <= remaining else { throw corrupt("needs \(size) bytes, \(remaining) remain") }
        var value = Integer.zero
        for index in 0..<size {
            value |= Integer(bytes[position + index]) << (8 * index)
        }
        position += size
        return value
    }
}
