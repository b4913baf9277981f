/// Which filter the writer applies to raw entries.
public struct FilterPolicy: Hashable, Sendable, CustomStringConvertible {
    enum Value: Hashable, Sendable {
        case automatic
        case none
        case shuffle
    }

    let value: Value

    /// Byte-shuffle arrays of known multi-byte numeric scalars (`Double`, `Float`, `Int32`, SIMD
    /// vectors of them…); leave other data unfiltered. The default: on smooth floating-point fields
    /// shuffling makes zstd both faster and smaller. Arrays of plain integers (`Int64`, `UInt32`…)
    /// get the ``Filter/delta`` filter instead when it stores a sample of them at least 3 % smaller
    /// (slowly changing counters and indices: a third of the shuffle's size), in shard format 3.x.
    public static let automatic = FilterPolicy(value: .automatic)
    /// Never filter.
    public static let none = FilterPolicy(value: .none)
    /// Shuffle every raw entry: numeric ones by scalar width, plain structs (up to 255 bytes) by their size.
    public static let shuffle = FilterPolicy(value: .shuffle)

    /// `"automatic"`, `"none"` or `"shuffle"`.
    public var description: String { "\(value)" }

    /// Whether the writer compares the delta filter with the shuffle for `entry`: arrays of plain
    /// integers of 2 to 8 bytes, under ``automatic``.
    func triesDelta(for entry: PendingEntry) -> Bool {
        guard value == .automatic, entry.encoding == .raw else { return false }
        let scalar = entry.elementType.scalar
        let integers: [ElementType.Scalar] = [.int16, .uint16, .int32, .uint32, .int64, .uint64]
        return integers.contains(scalar) && entry.elementType.size == scalar.size
    }

    func choice(for entry: PendingEntry) -> (Filter, width: Int) {
        guard entry.encoding == .raw, value != .none else { return (.none, 1) }
        let scalarSize = entry.elementType.scalar.size
        if scalarSize > 1 { return (.shuffle, scalarSize) }
        let size = entry.elementType.size
        if value == .shuffle && entry.elementType.scalar == .opaque && size > 1 && size <= 255 {
            return (.shuffle, size)
        }
        return (.none, 1)
    }
}
