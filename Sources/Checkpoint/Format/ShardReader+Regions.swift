extension ShardReader {
    /// Decodes only the chunks of `record` that hold bytes of `runs`, and copies those bytes to
    /// where `runs` puts them in `destination`.
    ///
    /// Every chunk read is verified (SHA-256 of its stored bytes) before any of its bytes is used,
    /// as in ``decode(_:into:threads:)``. A chunk that one run covers whole is decoded straight into
    /// place; one that holds parts of several runs, or only part of one, is decoded into a scratch
    /// buffer and its parts copied out. Chunks are decoded in parallel; different chunks never write
    /// the same destination bytes.
    /// - Returns: The number of chunks decoded (for tests and statistics).
    @discardableResult
    func decode(
        _ record: EntryRecord,
        runs: BlockRuns,
        into destination: UnsafeMutableRawBufferPointer,
        threads: Int
    ) throws(CheckpointError) -> Int {
        guard runs.count > 0, runs.length > 0 else { return 0 }
        var needed: [(chunk: Int, start: Int)] = []
        var start = 0
        for (index, chunk) in record.chunks.enumerated() {
            let end = start + chunk.rawSize
            let first = runs.firstRun(endingAfter: start)
            if first < runs.count, runs.run(first).source < end { needed.append((index, start)) }
            start = end
        }
        guard !needed.isEmpty else { return 0 }
        let scratchSize = needed.map { record.chunks[$0.chunk].rawSize }.max() ?? 0
        let lanes = max(1, min(threads, needed.count))
        let workers = try (0..<lanes).map { _ throws(CheckpointError) in
            try RegionDecoder(
                decoder: ChunkDecoder(
                    for: needed.map { record.chunks[$0.chunk] },
                    of: record,
                    checksum: chunkChecksum
                ),
                scratchSize: scratchSize
            )
        }
        try ParallelWork.run(count: needed.count, workers: workers) { (worker, item) throws(CheckpointError) in
            let (index, chunkStart) = needed[item]
            let chunk = record.chunks[index]
            let chunkEnd = chunkStart + chunk.rawSize
            let first = runs.firstRun(endingAfter: chunkStart)
            let (source, target) = runs.run(first)
            if source <= chunkStart, source + runs.length >= chunkEnd {
                let place = target + (chunkStart - source)
                let slice = UnsafeMutableRawBufferPointer(rebasing: destination[place..<place + chunk.rawSize])
                try worker.decoder.decode(chunk, of: record, from: self.source(for: chunk), into: slice)
                return
            }
            let scratch = UnsafeMutableRawBufferPointer(rebasing: worker.scratch[..<chunk.rawSize])
            try worker.decoder.decode(chunk, of: record, from: self.source(for: chunk), into: scratch)
            var next = first
            while next < runs.count {
                let (source, target) = runs.run(next)
                if source >= chunkEnd { break }
                let low = max(source, chunkStart)
                let high = min(source + runs.length, chunkEnd)
                let place = target + (low - source)
                UnsafeMutableRawBufferPointer(rebasing: destination[place..<place + high - low])
                    .copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: scratch[(low - chunkStart)..<(high - chunkStart)])
                    )
                next += 1
            }
        }
        return needed.count
    }
}

/// One lane's chunk decoder and a buffer for chunks that are only partly needed.
final class RegionDecoder {
    let decoder: ChunkDecoder
    let scratch: UnsafeMutableRawBufferPointer

    init(decoder: ChunkDecoder, scratchSize: Int) {
        self.decoder = decoder
        scratch = Syscalls.allocateWorkingBuffer(byteCount: scratchSize)
    }

    deinit { scratch.deallocate() }
}
