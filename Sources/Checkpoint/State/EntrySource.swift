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

/// Standard-library `withUnsafeBytes` methods rethrow untyped errors; this restores the type.
@inline(__always)
func withTypedThrows<Result>(_ body: () throws -> Result) throws(CheckpointError) -> Result {
    do { return try body() } catch let error as CheckpointError { throw error } catch {
        throw CheckpointError(.ioFailure, "unexpected error: \(error)")
    }
}

/// A private copy of memory the application owns, made when an asynchronous checkpoint is staged.
struct StagedCopySource: EntrySource, @unchecked Sendable {
    let storage: StagedBytes
    var byteCount: Int { storage.bytes.count }

    init(copying bytes: UnsafeRawBufferPointer, into storage: StagedBytes) {
        precondition(storage.bytes.count == bytes.count)
        self.storage = storage
        if bytes.count > 0 { storage.bytes.copyMemory(from: bytes) }
    }

    func withBytes<Result>(
        _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
    ) throws(CheckpointError) -> Result {
        try body(UnsafeRawBufferPointer(storage.bytes))
    }
}
