/// Where the bytes of a shard are read from, at any offset: a file, or memory.
///
/// The shard reader reads only through this, so the fuzzer, a network transfer and the file
/// system feed it the same way. Concurrent reads at different offsets must be safe.
protocol ByteSource: AnyObject, Sendable {
    /// Names the source in error messages (a path, or a description).
    var path: String { get }
    /// The total number of bytes.
    func size() throws(CheckpointError) -> Int
    /// Reads exactly `buffer.count` bytes at `offset`; a short source is ``CheckpointError/Code/truncated``.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CheckpointError)
}

/// Where the bytes of a shard go, in order: a file in a staging area, an upload.
protocol ByteSink: AnyObject, Sendable {
    /// Names the sink in error messages.
    var path: String { get }
    /// Appends all of `bytes`.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError)
    /// Makes everything written so far durable.
    func sync() throws(CheckpointError)
    /// Releases the sink; after a successful ``sync()`` nothing can be lost.
    func close()
    /// Starts writing the given bytes to storage without waiting (advisory; no durability promise).
    func startWriteback(from offset: Int, count: Int)
}

extension ByteSink {
    /// Sinks without storage behind them have nothing to start.
    func startWriteback(from offset: Int, count: Int) {}
}

extension OpenFile: ByteSource, ByteSink {}

/// Bytes in memory as a ``ByteSource``.
final class MemoryByteSource: ByteSource {
    let path: String
    let bytes: [UInt8]

    init(_ bytes: [UInt8], name: String = "memory") {
        self.bytes = bytes
        path = name
    }

    func size() -> Int { bytes.count }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CheckpointError) {
        guard offset >= 0, offset <= bytes.count, buffer.count <= bytes.count - offset else {
            throw CheckpointError(
                .truncated,
                "ends at byte \(bytes.count) but \(buffer.count) bytes were expected at byte \(offset)",
                path: path
            )
        }
        guard buffer.count > 0 else { return }
        bytes.withUnsafeBytes { all in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[offset..<offset + buffer.count]))
        }
    }
}
