/// One fuzzer input: a mode byte, then the bytes that mode reads.
///
/// Checksums stop almost every random mutation at the first SHA-256 check, so some modes repair
/// them first: that is how mutations reach the index parser, the zstd decoder and the
/// unshuffle filter behind the checks.
struct FuzzInput {
    enum Mode: UInt8, CaseIterable {
        /// The bytes are a shard file, read and decoded as a restore would.
        case shard = 0
        /// The bytes are a shard file whose index and chunk checksums are recomputed first.
        case shardWithRepairedChecksums = 1
        /// The bytes are a shard index of the format version the first byte selects (even: 1.0,
        /// odd: 2.0) over a data region of a size given by the next 4 bytes.
        case index = 2
        /// The bytes are one stored chunk; the first 6 bytes give its claimed size, codec and filter.
        case chunk = 3
        /// The bytes are manifest.json, with a correct checksum line.
        case manifest = 4
        /// The bytes are manifest.json, a zero byte, then the checksum line.
        case manifestAndChecksum = 5
        /// The bytes are an incremental (2.0) shard and the older shard it uses: a 4-byte length,
        /// the older shard, then the shard.
        case incrementalPair = 6
        /// As ``incrementalPair``, with both shards' checksums recomputed first.
        case incrementalPairWithRepairedChecksums = 7
        /// An incremental shard and a set of older shards it uses: a count byte (low 2 bits + 1
        /// bases; the top bit: recompute every checksum, each base's index digest going to the base
        /// record of the same position), then each base as a 4-byte length and its bytes, then the
        /// shard. The reader opens the bases in the order of the shard's base table.
        case incrementalSet = 8
        /// The bytes are manifest.json, with a correct checksum line and a correct seal under
        /// ``FuzzInput/key``, read with that key as a restore with it would (and its lineage digest taken).
        case sealedManifest = 9
        /// The bytes are manifest.json, a zero byte, then its seal file; the checksum line is correct
        /// and the manifest is read with ``FuzzInput/key``.
        case manifestAndSeal = 10
        /// The bytes are manifest.json (read with a correct checksum line), a zero byte, then rank 0's
        /// shard: the shard is opened and the manifest's element fields are checked against its
        /// index and attached to its records (rules M19, M20).
        case manifestAndShard = 11
        /// The bytes are an aggregated file: its region table is read and checked, then every region
        /// is read as a shard through a window onto the file, as a restore reads its region.
        case aggregatedFile = 12
    }

    /// The key sealed inputs are read with.
    static let key = try! Authentication.Key(secret: Array("swift-checkpoint fuzzing key, not a secret".utf8))

    let mode: Mode
    let body: [UInt8]

    init(_ bytes: [UInt8]) {
        mode = Mode(rawValue: (bytes.first ?? 0) % UInt8(Mode.allCases.count))!
        body = Array(bytes.dropFirst())
    }

    init(mode: Mode, body: [UInt8]) {
        self.mode = mode
        self.body = body
    }

    /// The input as a corpus file.
    var bytes: [UInt8] { [mode.rawValue] + body }

    /// Feeds the input to the reader its mode selects. Errors are the expected outcome; a crash,
    /// a hang or an outsized allocation is what the fuzzer looks for.
    /// - Returns: The error that rejected the input, or `nil` when it was read completely.
    @discardableResult
    func run() -> (any Error)? {
        do {
            switch mode {
            case .shard: try readShard(body)
            case .shardWithRepairedChecksums: try readShard(Self.repairingChecksums(body))
            case .index:
                var cursor = ByteCursor(body, path: "fuzz")
                let version =
                    try cursor.u8() % 2 == 0 ? ShardFormat.selfContainedVersion : ShardFormat.incrementalVersion
                let dataSize = Int(try cursor.u32())
                _ = try ShardIndex(
                    decoding: Array(body.dropFirst(5)),
                    dataRange: ShardFormat.headerSize..<ShardFormat.headerSize + dataSize,
                    path: "fuzz",
                    version: version
                )
            case .incrementalPair: try readPair(repairing: false)
            case .incrementalPairWithRepairedChecksums: try readPair(repairing: true)
            case .incrementalSet: try readSet()
            case .chunk: try decodeChunk()
            case .manifest:
                let line = Array((hexString(sha256(body)) + "  " + Manifest.fileName + "\n").utf8)
                Self.useNumbers(of: try Manifest.decode(body, checksumLine: line, path: "fuzz"))
            case .sealedManifest:
                let authentication = Authentication(signingKey: Self.key)
                let manifest = try Manifest.decode(
                    body,
                    checksumLine: Self.checksumLine(body),
                    authentication: authentication,
                    seal: { authentication.seal(body) },
                    path: "fuzz"
                )
                Self.useNumbers(of: manifest)
                _ = try manifest.lineageDigest()
            case .manifestAndSeal:
                let end = body.firstIndex(of: 0) ?? body.endIndex
                let manifest = Array(body[..<end])
                let seal = Array(body[end...].dropFirst())
                Self.useNumbers(
                    of: try Manifest.decode(
                        manifest,
                        checksumLine: Self.checksumLine(manifest),
                        authentication: Authentication(signingKey: Self.key),
                        seal: { seal },
                        path: "fuzz"
                    )
                )
            case .manifestAndShard:
                let end = body.firstIndex(of: 0) ?? body.endIndex
                let manifest = try Manifest.decode(
                    Array(body[..<end]),
                    checksumLine: Self.checksumLine(Array(body[..<end])),
                    path: "fuzz"
                )
                let shard = Array(body[end...].dropFirst())
                let reader = try ShardReader(source: MemoryByteSource(shard, name: "fuzz shard"), baseSource: nil)
                let described = try reader.adoptingFields(of: manifest.shards.first?.entries ?? [])
                for entry in described.index.entries {
                    _ = entry.elementType.fields.map { ElementType.fieldsProblem($0, size: entry.elementType.size) }
                }
            case .aggregatedFile:
                let file = MemoryByteSource(body, name: "fuzz aggregated file")
                for region in try AggregateFile.readTable(file) {
                    let window = try RegionSource(file, offset: region.offset, length: region.length)
                    let reader = try ShardReader(source: window, baseSource: nil)
                    if Self.isSmallEnough(reader) { try reader.verifyAll(threads: 1) }
                }
            case .manifestAndChecksum:
                let newline = body.firstIndex(of: 0) ?? body.endIndex
                Self.useNumbers(
                    of: try Manifest.decode(
                        Array(body[..<newline]),
                        checksumLine: Array(body[newline...].dropFirst()),
                        path: "fuzz"
                    )
                )
            }
        } catch {
            // A clear error is the right answer to bad input.
            return error
        }
        return nil
    }

    /// A correct checksum line for `manifest`.
    private static func checksumLine(_ manifest: [UInt8]) -> [UInt8] {
        Array((hexString(sha256(manifest)) + "  " + Manifest.fileName + "\n").utf8)
    }

    /// Does with a decoded manifest's numbers what `ckpt list`, `inspect`, `report` and `verify` do
    /// (totals, per-shard and per-entry sums, ratios): a decoded manifest must never make them trap.
    private static func useNumbers(of manifest: Manifest) {
        var total = manifest.rawBytes &+ manifest.storedBytes &+ (manifest.incremental?.referencedBytes ?? 0)
        for shard in manifest.shards {
            total &+= shard.entries.reduce(0) { $0 + $1.rawBytes }
            total &+= shard.entries.reduce(0) { $0 + $1.storedBytes }
            total &+= shard.entries.reduce(0) { $0 + $1.chunks }
            total &+= shard.storedBytes &+ (shard.referencedBytes ?? 0)
            for entry in shard.entries { total &+= entry.shape.reduce(1, *) }
        }
        let timings = manifest.timings
        let seconds = [timings.stageSeconds, timings.encodeSeconds, timings.writeSeconds, timings.syncSeconds]
        total &+= seconds.allSatisfy { $0.isFinite && $0 >= 0 } ? 0 : Int.max
        withExtendedLifetime(total) {}
    }

    /// The largest chunk the fuzzer lets a reader decode. A chunk's raw size is the state the index
    /// declares: the memory bound allows a reader to allocate it, so larger claims (up to the
    /// format's 1 GiB) are only opened and checked, which keeps every allocation under the fuzzer's
    /// `-malloc_limit_mb` unless the reader allocates more than it declares.
    static let largestDecodedChunk = 64 << 20

    /// Opens `bytes` as a shard, from memory, and decodes every entry (raw digests checked too).
    /// A shard that uses older shards' chunks is incomplete here: none is given.
    private func readShard(_ bytes: [UInt8]) throws {
        let reader = try ShardReader(source: MemoryByteSource(bytes, name: "fuzz shard"), baseSource: nil)
        guard Self.isSmallEnough(reader) else { return }
        try reader.verifyAll(threads: 1)
    }

    /// Opens the shard from memory with the older shard, also in memory, as every base, and
    /// decodes every entry (raw digests checked too).
    private func readPair(repairing: Bool) throws {
        var cursor = ByteCursor(body, path: "fuzz")
        let baseLength = Int(try cursor.u32())
        guard baseLength <= body.count - 4 else { return }
        var base = Array(body[4..<4 + baseLength])
        var shard = Array(body[(4 + baseLength)...])
        if repairing {
            base = Self.repairingChecksums(base)
            shard = Self.repairingChecksums(shard, baseDigests: Self.indexDigest(of: base).map { [$0] })
        }
        let baseSource = MemoryByteSource(base, name: "fuzz base shard")
        let reader = try ShardReader(source: MemoryByteSource(shard, name: "fuzz shard")) { _ in baseSource }
        guard Self.isSmallEnough(reader) else { return }
        try reader.verifyAll(threads: 1)
    }

    /// Whether every chunk of the shard declares at most ``largestDecodedChunk`` raw bytes.
    private static func isSmallEnough(_ reader: ShardReader) -> Bool {
        reader.index.entries.allSatisfy { $0.chunks.allSatisfy { $0.rawSize <= largestDecodedChunk } }
    }

    /// Opens the shard with a set of older shards, handed out in the order the reader asks for
    /// them, and decodes every entry (raw digests checked too).
    private func readSet() throws {
        var cursor = ByteCursor(body, path: "fuzz")
        let header = try cursor.u8()
        var bases: [[UInt8]] = []
        for _ in 0..<Int(header & 3) + 1 {
            let length = Int(try cursor.u32())
            guard length <= cursor.remaining else { return }
            bases.append(try cursor.bytes(length))
        }
        var shard = try cursor.bytes(cursor.remaining)
        if header & 0x80 != 0 {
            bases = bases.map { Self.repairingChecksums($0) }
            shard = Self.repairingChecksums(shard, baseDigests: bases.map { Self.indexDigest(of: $0) ?? [] })
        }
        let sources = bases.enumerated().map { MemoryByteSource($1, name: "fuzz base shard \($0)") }
        var next = 0
        let reader = try ShardReader(source: MemoryByteSource(shard, name: "fuzz shard")) { _ in
            defer { next += 1 }
            return sources[next % sources.count]
        }
        guard Self.isSmallEnough(reader) else { return }
        try reader.verifyAll(threads: 1)
    }

    /// The index digest a shard's footer records (what a base table entry must name), if any.
    static func indexDigest(of shard: [UInt8]) -> [UInt8]? {
        guard shard.count >= ShardFormat.headerSize + ShardFormat.footerSize else { return nil }
        return Array(shard[(shard.count - ShardFormat.footerSize + 16)..<(shard.count - ShardFormat.footerSize + 48)])
    }

    /// Decodes the body after a 6-byte header (u32 claimed raw size, codec and checksum, shuffle
    /// width) as one chunk.
    private func decodeChunk() throws {
        var cursor = ByteCursor(body, path: "fuzz")
        let rawSize = Int(try cursor.u32() % (1 << 22)) + 1
        let kind = try cursor.u8()
        let codec = kind % 2 == 0 ? ChunkCodec.zstd : .raw
        let checksum: ChecksumAlgorithm = kind & 2 == 0 ? .sha256 : .xxh3
        let width = Int(try cursor.u8() % 16) + 1
        let stored = Array(body.dropFirst(6))
        guard !stored.isEmpty, codec == .zstd || stored.count == rawSize, rawSize % width == 0 else { return }
        let chunk = ChunkRecord(
            offset: 0,
            storedSize: stored.count,
            rawSize: rawSize,
            codec: codec,
            digest: stored.withUnsafeBytes { checksum.field(of: $0) }
        )
        let record = EntryRecord(
            name: "fuzz",
            encoding: .raw,
            elementType: ElementType(scalar: .opaque, size: width, typeName: ""),
            filter: width == 1 ? .none : kind & 4 != 0 && [2, 4, 8].contains(width) ? .delta : .shuffle,
            filterWidth: width,
            shape: [rawSize / width],
            rawSize: rawSize,
            chunks: [chunk]
        )
        let decoder = try ChunkDecoder(storedCapacity: stored.count, unfilteredCapacity: rawSize, checksum: checksum)
        let target = UnsafeMutableRawBufferPointer.allocate(byteCount: rawSize, alignment: 64)
        defer { target.deallocate() }
        try decoder.decode(chunk, of: record, from: MemoryByteSource(stored, name: "fuzz chunk"), into: target)
    }

    /// Recomputes every chunk digest (and raw digest) and the index digest of a shard whose index
    /// still parses, or just the index digest when its footer is intact; other inputs are returned
    /// unchanged. Chunks in an older shard keep their digests; `baseDigests`, when given, become the
    /// base records' index digests, by position (cycling when there are fewer).
    static func repairingChecksums(_ bytes: [UInt8], baseDigests: [[UInt8]]? = nil) -> [UInt8] {
        let footerStart = bytes.count - ShardFormat.footerSize
        guard footerStart >= ShardFormat.headerSize else { return bytes }
        var cursor = ByteCursor(Array(bytes[footerStart...]), path: "fuzz")
        guard let offset64 = try? cursor.u64(), let length64 = try? cursor.u64(),
            offset64 >= UInt64(ShardFormat.headerSize), offset64 <= UInt64(footerStart),
            length64 == UInt64(footerStart) - offset64
        else { return bytes }
        let indexStart = Int(offset64)
        var header = ByteCursor(Array(bytes[8..<12]), path: "fuzz")
        let version = ShardFormat.Version(major: (try? header.u16()) ?? 1, minor: (try? header.u16()) ?? 0)
        var indexBytes = Array(bytes[indexStart..<footerStart])
        if var index = try? ShardIndex(
            decoding: indexBytes,
            dataRange: ShardFormat.headerSize..<indexStart,
            path: "fuzz",
            version: version
        ) {
            for entry in index.entries.indices {
                let record = index.entries[entry]
                for chunk in record.chunks.indices where record.chunks[chunk].base == nil {
                    let stored = record.chunks[chunk]
                    let data = Array(bytes[stored.offset..<stored.offset + stored.storedSize])
                    index.entries[entry].chunks[chunk].digest = data.withUnsafeBytes {
                        version.chunkChecksum.field(of: $0)
                    }
                    if stored.codec == .raw && stored.rawDigest != nil && record.filter == .none {
                        index.entries[entry].chunks[chunk].rawDigest = sha256(data)
                    }
                }
            }
            if let baseDigests, !baseDigests.isEmpty {
                for position in index.bases.indices {
                    index.bases[position].indexDigest = baseDigests[position % baseDigests.count]
                }
            }
            indexBytes = index.encoded()
        }
        var repaired = Array(bytes[..<indexStart]) + indexBytes
        var footer = ByteBuilder()
        footer.append(UInt64(indexStart))
        footer.append(UInt64(indexBytes.count))
        footer.append(contentsOf: sha256(indexBytes))
        footer.append(contentsOf: ShardFormat.footerMagic)
        repaired += footer.bytes
        return repaired
    }
}
