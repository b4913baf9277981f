import Crypto
import Dispatch

/// How a shard's entries are filtered and compressed.
struct EncodingOptions: Sendable {
    var compressionLevel: Int?
    var threads: Int
    var chunkSize: Int
    var filter: FilterPolicy
    var permissions: UInt16
    /// Write a 2.x shard: record each chunk's raw digest, and reference unchanged chunks of the base.
    var incremental = false
    /// The checksum of each chunk's stored bytes in a self-contained shard (3.0 for XXH3-128, 1.0
    /// for SHA-256); incremental shards always use SHA-256.
    var checksum: ChecksumAlgorithm = .sha256

    /// The format these options write.
    var version: ShardFormat.Version { ShardFormat.version(incremental: incremental, checksum: checksum) }
    /// The checksum the chunk records hold.
    var chunkChecksum: ChecksumAlgorithm { version.chunkChecksum }
}

/// What writing a shard produced, for the manifest.
struct ShardSummary: Sendable {
    var fileSize: Int
    var indexDigest: [UInt8]
    var entries: [EntryRecord]
    var encodeSeconds: Double
    var writeSeconds: Double
    var syncSeconds: Double
    /// The format written.
    var version: ShardFormat.Version = ShardFormat.selfContainedVersion
    /// The shards whose chunks this one uses (2.x).
    var bases: [ShardBase] = []
    /// Stored bytes of the chunks held by `bases` rather than written.
    var referencedBytes = 0

    /// The shard's index, as written.
    var index: ShardIndex { ShardIndex(entries: entries, bases: bases, version: version) }
}

/// The shuffle or the delta filter for an integer array: whichever stores the array's first
/// chunk (at most 1 MiB of it) in fewer bytes, the delta filter only when it saves at least 3 %.
/// Costs two compressions of the sample; `output` is a free output slot.
private func smallerFilter(
    sampling source: UnsafeRawBufferPointer,
    width: Int,
    chunkRaw: Int,
    encoder: ChunkEncoder,
    output: UnsafeMutableRawBufferPointer
) throws(CheckpointError) -> Filter {
    let count = min(source.count, chunkRaw, 1 << 20) / width * width
    guard count > 0 else { return .shuffle }
    let sample = UnsafeRawBufferPointer(rebasing: source[..<count])
    let shuffled = try encoder.encode(sample, filter: .shuffle, width: width, into: output).storedSize
    let delta = try encoder.encode(sample, filter: .delta, width: width, into: output).storedSize
    return delta * 100 <= shuffled * 97 ? .delta : .shuffle
}

/// Writes one shard: header, chunks (filtered, compressed and hashed in parallel, written in
/// order), index, footer, then syncs.
///
/// It writes only into a ``ByteSink``, in order; the overload that takes a path creates the file.
///
/// Incremental (`options.incremental`): each chunk's raw bytes are hashed first; a chunk whose raw
/// digest, size and filter are in `base` is not filtered, compressed or written again, but recorded
/// as a reference to the shard that holds it.
enum ShardWriter {
    /// Creates the shard file at `path` (it must not exist) with `options.permissions`, writes the
    /// shard into it, syncs and closes it.
    static func write(
        _ entries: [PendingEntry],
        to path: String,
        options: EncodingOptions,
        base: ChunkBase? = nil
    ) throws(CheckpointError) -> ShardSummary {
        let file = try OpenFile.createExclusive(path, permissions: options.permissions)
        defer { file.close() }
        return try write(entries, to: file, options: options, base: base)
    }

    /// Writes the shard into `sink`, from its first byte, and syncs it.
    ///
    /// When it returns or throws, nothing uses the sink any more; the caller closes it.
    static func write(
        _ entries: [PendingEntry],
        to sink: any ByteSink,
        options: EncodingOptions,
        base: ChunkBase? = nil
    ) throws(CheckpointError) -> ShardSummary {
        let version = options.version
        let checksum = options.chunkChecksum
        let base = options.incremental ? base : nil
        var header = ByteBuilder()
        header.append(contentsOf: ShardFormat.magic)
        header.append(version.major)
        header.append(version.minor)
        header.append(UInt32(0))
        try withTypedThrows { try header.bytes.withUnsafeBytes { bytes in try sink.writeAll(bytes) } }

        let output = OrderedOutput(sink: sink, offset: ShardFormat.headerSize)
        // After a failure, writes queued earlier may still be running.
        defer { output.drain() }
        var records: [EntryRecord] = []
        var clock = Stopwatch()
        var encodeSeconds = 0.0
        let largestChunk = entries.map { chunkRawSize(for: $0, options: options) }.max() ?? 0
        let encoders = try (0..<max(1, options.threads)).map { _ throws(CheckpointError) in
            try ChunkEncoder(level: options.compressionLevel, scratchSize: largestChunk, checksum: checksum)
        }
        // Two sets of output slots: one is encoded into while the other is being written.
        let window = max(1, options.threads * 2)
        let slotSets = (0..<2).map { _ in Slots(count: window, capacity: ZstdCompressor.bound(largestChunk)) }
        var windowNumber = 0
        for entry in entries {
            var (filter, width) = options.filter.choice(for: entry)
            let chunkRaw = chunkRawSize(for: entry, options: options)
            let firstChunk = output.chunkCount
            try entry.source.withBytes { (source) throws(CheckpointError) in
                if version.allowsDelta && options.filter.triesDelta(for: entry) {
                    filter = try smallerFilter(
                        sampling: source,
                        width: width,
                        chunkRaw: chunkRaw,
                        encoder: encoders[0],
                        output: slotSets[windowNumber % 2].buffer(0)
                    )
                }
                let chunkCount = (source.count + chunkRaw - 1) / chunkRaw
                var first = 0
                while first < chunkCount {
                    let count = min(window, chunkCount - first)
                    let slots = slotSets[windowNumber % 2]
                    windowNumber += 1
                    clock.restart()
                    try ParallelWork.run(count: count, workers: encoders) { (encoder, slot) throws(CheckpointError) in
                        let start = (first + slot) * chunkRaw
                        let raw = UnsafeRawBufferPointer(rebasing: source[start..<min(start + chunkRaw, source.count)])
                        guard options.incremental else {
                            slots.results[slot] = try encoder.encode(
                                raw,
                                filter: filter,
                                width: width,
                                into: slots.buffer(slot)
                            )
                            return
                        }
                        let rawDigest = sha256(raw)
                        if let stored = base?.lookup(
                            rawDigest: rawDigest,
                            rawSize: raw.count,
                            filter: filter,
                            filterWidth: width
                        ) {
                            slots.results[slot] = ChunkEncoder.Result(
                                storedSize: stored.storedSize,
                                rawSize: raw.count,
                                codec: stored.codec,
                                digest: stored.digest,
                                rawDigest: rawDigest,
                                reference: stored
                            )
                            return
                        }
                        var result = try encoder.encode(
                            raw,
                            filter: filter,
                            width: width,
                            into: slots.buffer(slot),
                            rawDigest: rawDigest
                        )
                        result.rawDigest = rawDigest
                        slots.results[slot] = result
                    }
                    encodeSeconds += clock.elapsed
                    // The previous window must be on disk before its slots are reused, and before
                    // this entry's memory may be released.
                    try output.waitForWrites()
                    output.write(slots, count: count)
                    first += count
                }
                try output.waitForWrites()
            }
            records.append(
                EntryRecord(
                    name: entry.name,
                    encoding: entry.encoding,
                    elementType: entry.elementType,
                    filter: filter,
                    filterWidth: width,
                    shape: entry.shape,
                    rawSize: entry.source.byteCount,
                    chunks: Array(output.chunks[firstChunk...])
                )
            )
        }
        try output.waitForWrites()
        let offset = output.offset
        var writeSeconds = output.writeSeconds
        clock.restart()
        // Number the holders this shard actually uses by ascending step (the index's base table).
        var bases: [ShardBase] = []
        var referencedBytes = 0
        if let base {
            let used = Set(records.lazy.flatMap(\.chunks).compactMap(\.base))
            let order = used.sorted { base.holders[$0].step < base.holders[$1].step }
            let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
            bases = order.map {
                ShardBase(step: base.holders[$0].step.rawValue, indexDigest: base.holders[$0].indexDigest)
            }
            for entry in records.indices {
                for chunk in records[entry].chunks.indices {
                    guard let holder = records[entry].chunks[chunk].base else { continue }
                    records[entry].chunks[chunk].base = position[holder]
                    referencedBytes += records[entry].chunks[chunk].storedSize
                }
            }
        }
        let index = ShardIndex(entries: records, bases: bases, version: version).encoded()
        let digest = sha256(index)
        var footer = ByteBuilder()
        footer.append(UInt64(offset))
        footer.append(UInt64(index.count))
        footer.append(contentsOf: digest)
        footer.append(contentsOf: ShardFormat.footerMagic)
        try withTypedThrows { try index.withUnsafeBytes { bytes in try sink.writeAll(bytes) } }
        try withTypedThrows { try footer.bytes.withUnsafeBytes { bytes in try sink.writeAll(bytes) } }
        writeSeconds += clock.elapsed
        clock.restart()
        try sink.sync()
        let syncSeconds = clock.elapsed
        return ShardSummary(
            fileSize: offset + index.count + ShardFormat.footerSize,
            indexDigest: digest,
            entries: records,
            encodeSeconds: encodeSeconds,
            writeSeconds: writeSeconds,
            syncSeconds: syncSeconds,
            version: version,
            bases: bases,
            referencedBytes: referencedBytes
        )
    }
}

/// The chunk size of an entry: the configured size rounded down to whole elements.
private func chunkRawSize(for entry: PendingEntry, options: EncodingOptions) -> Int {
    let elementSize = entry.elementType.size
    return max(elementSize, options.chunkSize / elementSize * elementSize)
}

/// Writes encoded windows to the sink in order on a background queue, so the next window is
/// encoded while this one is written, and records where each chunk landed.
private final class OrderedOutput: @unchecked Sendable {
    private let sink: any ByteSink
    private let queue = DispatchQueue(label: "swift-checkpoint.shard-writer")
    private let pending = DispatchGroup()
    // Touched only on `queue`, or after `waitForWrites()`.
    private(set) var offset: Int
    private(set) var chunks: [ChunkRecord] = []
    private(set) var writeSeconds = 0.0
    private var failure: CheckpointError?

    init(sink: any ByteSink, offset: Int) {
        self.sink = sink
        self.offset = offset
    }

    var chunkCount: Int { chunks.count }

    /// Queues the first `count` slots for writing.
    func write(_ slots: Slots, count: Int) {
        pending.enter()
        queue.async { [self] in
            defer { pending.leave() }
            guard failure == nil else { return }
            let clock = Stopwatch()
            let windowStart = offset
            // Let the disk write this window while the next one is encoded: the final fsync then
            // waits only for what is left.
            defer { sink.startWriteback(from: windowStart, count: offset - windowStart) }
            do throws(CheckpointError) {
                for slot in 0..<count {
                    let result = slots.results[slot]
                    if let stored = result.reference {
                        // Stays where an older checkpoint stored it; `base` is the holder's number in
                        // the chunk base until the writer renumbers it for the index.
                        chunks.append(
                            ChunkRecord(
                                offset: stored.offset,
                                storedSize: stored.storedSize,
                                rawSize: result.rawSize,
                                codec: stored.codec,
                                digest: stored.digest,
                                rawDigest: result.rawDigest,
                                base: stored.holder
                            )
                        )
                        continue
                    }
                    try sink.writeAll(UnsafeRawBufferPointer(rebasing: slots.buffer(slot)[..<result.storedSize]))
                    chunks.append(
                        ChunkRecord(
                            offset: offset,
                            storedSize: result.storedSize,
                            rawSize: result.rawSize,
                            codec: result.codec,
                            digest: result.digest,
                            rawDigest: result.rawDigest
                        )
                    )
                    offset += result.storedSize
                }
            } catch {
                failure = error
            }
            writeSeconds += clock.elapsed
        }
    }

    /// Waits until every queued write finished.
    func drain() { pending.wait() }

    /// Waits until every queued write finished; throws the first write error.
    func waitForWrites() throws(CheckpointError) {
        pending.wait()
        if let failure { throw failure }
    }
}

/// Output buffers for one window of chunks, each large enough for the worst-case zstd frame.
private final class Slots: @unchecked Sendable {
    let storage: UnsafeMutableRawBufferPointer
    let capacity: Int
    /// One result per slot; workers write distinct slots, so no lock is needed.
    let results: UnsafeMutableBufferPointer<ChunkEncoder.Result>

    init(count: Int, capacity: Int) {
        self.capacity = capacity
        storage = Syscalls.allocateWorkingBuffer(byteCount: count * capacity)
        results = .allocate(capacity: max(1, count))
        results.initialize(repeating: .init(storedSize: 0, rawSize: 0, codec: .raw, digest: []))
    }

    func buffer(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[slot * capacity..<(slot + 1) * capacity])
    }

    deinit {
        storage.deallocate()
        results.deinitialize()
        results.deallocate()
    }
}

/// One worker's zstd context and shuffle buffer.
final class ChunkEncoder {
    struct Result {
        var storedSize: Int
        var rawSize: Int
        var codec: ChunkCodec
        var digest: [UInt8]
        /// The digest of the raw bytes (incremental shards only).
        var rawDigest: [UInt8]? = nil
        /// Set when the chunk is not written but refers to an older shard's copy.
        var reference: ChunkBase.Stored? = nil
    }

    private let compressor: ZstdCompressor?
    private let scratch: UnsafeMutableRawBufferPointer
    /// The checksum of the stored bytes each chunk record holds.
    private let checksum: ChecksumAlgorithm

    init(level: Int?, scratchSize: Int, checksum: ChecksumAlgorithm = .sha256) throws(CheckpointError) {
        // Shard format 3.x frames carry no content checksum: the XXH3-128 checksum of the stored
        // bytes covers them. Earlier formats keep it, as their readers expect (FileFormat.md 4.5).
        compressor = try level.map { (level) throws(CheckpointError) in
            try ZstdCompressor(level: level, contentChecksum: checksum == .sha256)
        }
        self.checksum = checksum
        scratch = Syscalls.allocateWorkingBuffer(byteCount: scratchSize)
    }

    deinit { scratch.deallocate() }

    /// Filters `raw`, compresses it into `output` and keeps the frame only if it is smaller.
    ///
    /// `rawDigest`, when known, is reused as the stored digest of an unfiltered chunk kept raw (when
    /// the checksum is SHA-256 too).
    func encode(
        _ raw: UnsafeRawBufferPointer,
        filter: Filter,
        width: Int,
        into output: UnsafeMutableRawBufferPointer,
        rawDigest: [UInt8]? = nil
    ) throws(CheckpointError) -> Result {
        var filtered = raw
        if filter.shuffles {
            // The delta filter's differences go through `output` before the frame is written there.
            let target = UnsafeMutableRawBufferPointer(rebasing: scratch[..<raw.count])
            filter.apply(raw, into: target, width: width, scratch: output)
            filtered = UnsafeRawBufferPointer(target)
        }
        if let compressor {
            let size = try compressor.compress(filtered, into: output)
            if size < raw.count {
                let stored = UnsafeRawBufferPointer(rebasing: output[..<size])
                return Result(storedSize: size, rawSize: raw.count, codec: .zstd, digest: checksum.field(of: stored))
            }
        }
        output.baseAddress!.copyMemory(from: filtered.baseAddress!, byteCount: filtered.count)
        let reusable = filter == .none && checksum == .sha256 ? rawDigest : nil
        let digest = reusable ?? checksum.field(of: filtered)
        return Result(storedSize: raw.count, rawSize: raw.count, codec: .raw, digest: digest)
    }
}
