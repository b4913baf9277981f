/// Reusable staging buffers, at most `limit` bytes kept.
final class StagingPool: Sendable {
    private let spare = Locked<[StagedBytes]>([])
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    /// A buffer of exactly `count` bytes: a kept one when available, else a new one.
    func take(count: Int) -> StagedBytes {
        spare.withLock { spare in
            if let index = spare.firstIndex(where: { $0.bytes.count == count }) { return spare.remove(at: index) }
            return StagedBytes(count: count)
        }
    }

    /// Keeps buffers for the next checkpoint, up to the limit.
    func recycle(_ buffers: [StagedBytes]) {
        spare.withLock { spare in
            var kept = spare.reduce(0) { $0 + $1.bytes.count }
            for buffer in buffers where kept + buffer.bytes.count <= limit {
                spare.append(buffer)
                kept += buffer.bytes.count
            }
        }
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
