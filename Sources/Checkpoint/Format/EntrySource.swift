import Foundation

/// Where the bytes of an entry being saved come from. Holding a source keeps the memory alive
/// (arrays are retained, not copied: they are copy-on-write).
protocol EntrySource: Sendable {
    var byteCount: Int { get }
    func withBytes<Result>(
        _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
    ) throws(CheckpointError) -> Result
}

struct ArraySource<Element: BitwiseCopyable>: EntrySource, @unchecked Sendable {
    let array: [Element]
    var byteCount: Int { array.count * MemoryLayout<Element>.stride }
    func withBytes<Result>(
        _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
    ) throws(CheckpointError) -> Result {
        try withTypedThrows { try array.withUnsafeBytes { try body($0) } }
    }
}

struct ContiguousArraySource<Element: BitwiseCopyable>: EntrySource, @unchecked Sendable {
    let array: ContiguousArray<Element>
    var byteCount: Int { array.count * MemoryLayout<Element>.stride }
    func withBytes<Result>(
        _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
    ) throws(CheckpointError) -> Result {
        try withTypedThrows { try array.withUnsafeBytes { try body($0) } }
    }
}

/// Memory the application owns; it must stay valid and unchanged until the save returns.
struct PointerSource: EntrySource, @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    var byteCount: Int { bytes.count }
    func withBytes<Result>(
        _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
    ) throws(CheckpointError) -> Result {
        try body(bytes)
    }
}

/// Bytes the library produced itself (encoded `Codable` values, scalars).
struct BytesSource: EntrySource {
    let bytes: [UInt8]
    var byteCount: Int { bytes.count }
    func withBytes<Result>(
        _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
    ) throws(CheckpointError) -> Result {
        try withTypedThrows { try bytes.withUnsafeBytes { try body($0) } }
    }
}

/// An entry collected for a snapshot, not yet encoded: its description and where its bytes are.
struct PendingEntry: Sendable {
    var name: String
    var encoding: EntryEncoding
    var elementType: ElementType
    var shape: [Int]
    var source: any EntrySource
    /// Where this rank's block lies in a distributed array (see `SnapshotWriter+Blocks.swift`).
    var block: BlockLayout? = nil
}
