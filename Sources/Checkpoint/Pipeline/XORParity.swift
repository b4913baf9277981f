import Crypto

/// The XOR parity of a redundancy set (``Checkpointer/Configuration/Redundancy/xorSetSize``): the
/// arithmetic, as pure functions, and the parity file's header.
///
/// Each of the `S` members' shards is padded with zeros to the set's largest and split into `S - 1`
/// parts of ``partSize(lengths:)`` bytes. Member `i`'s parity is the XOR of part
/// ``part(of:heldBy:setSize:)`` `(i - j - 1) mod S` of every other member `j`: each part of each
/// shard is in exactly one parity, none in its own member's, so one lost member's parts are rebuilt
/// from the other members' shards and parities. Documentation/FileFormat.md specifies the file.
enum XORParity {
    /// The parity file of `rank`, beside its shard in the node-local checkpoint folder.
    static func fileName(rank: Int) -> String { "xor-" + zeroPadded(UInt64(rank), width: 5) + ".parity" }

    static let magic: [UInt8] = Array("CKPTXOR1".utf8)
    static let version: UInt32 = 1
    /// The most members a parity file may name (a bound before anything is allocated).
    static let maximumSetSize = 4096
    /// Header bytes before the members; each member adds ``memberBytes``.
    static let fixedHeaderBytes = 32
    static let memberBytes = 48
    static let checksumBytes = 32

    // MARK: Arithmetic

    /// The part of member `member`'s shard that member `holder`'s parity holds (positions in the set).
    static func part(of member: Int, heldBy holder: Int, setSize: Int) -> Int {
        precondition(member != holder)
        return ((holder - member - 1) % setSize + setSize) % setSize
    }

    /// The member whose parity holds part `part` of member `member` (the inverse of ``part(of:heldBy:setSize:)``).
    static func holder(ofPart part: Int, of member: Int, setSize: Int) -> Int { (member + part + 1) % setSize }

    /// The bytes of each part: the largest shard divided into `setSize - 1` parts, rounded up.
    static func partSize(lengths: [Int]) -> Int {
        let parts = lengths.count - 1
        return ((lengths.max() ?? 0) + parts - 1) / parts
    }

    /// Copies `buffer.count` bytes of part `part` of a shard, from `offset` within the part, zero past its end.
    static func copyPart(
        _ shard: UnsafeRawBufferPointer,
        part: Int,
        partSize: Int,
        offset: Int,
        into buffer: UnsafeMutableRawBufferPointer
    ) {
        let start = part * partSize + offset
        let available = max(0, min(buffer.count, shard.count - start))
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if available > 0 { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: shard[start..<start + available])) }
    }

    /// `target ^= source`, byte for byte.
    static func combine(_ source: UnsafeRawBufferPointer, into target: UnsafeMutableRawBufferPointer) {
        precondition(source.count == target.count)
        var index = 0
        let words = source.count / 8
        while index < words {
            let word = source.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
            let old = target.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
            target.storeBytes(of: old ^ word, toByteOffset: index * 8, as: UInt64.self)
            index += 1
        }
        for byte in words * 8..<source.count { target[byte] ^= source[byte] }
    }

    /// Member `position`'s parity over whole shards in memory (the streaming stage computes the same).
    static func parity(position: Int, shards: [[UInt8]]) -> [UInt8] {
        let setSize = shards.count
        let size = partSize(lengths: shards.map(\.count))
        var parity = [UInt8](repeating: 0, count: size)
        var part = [UInt8](repeating: 0, count: size)
        for (member, shard) in shards.enumerated() where member != position {
            let index = Self.part(of: member, heldBy: position, setSize: setSize)
            shard.withUnsafeBytes { shard in
                part.withUnsafeMutableBytes { copyPart(shard, part: index, partSize: size, offset: 0, into: $0) }
            }
            part.withUnsafeBytes { part in parity.withUnsafeMutableBytes { combine(part, into: $0) } }
        }
        return parity
    }

    /// Rebuilds member `lost`'s shard of `length` bytes from every other member's shard and parity.
    static func rebuild(lost: Int, length: Int, shards: [[UInt8]], parities: [[UInt8]]) -> [UInt8] {
        let setSize = shards.count
        let size = parities.first { !$0.isEmpty }?.count ?? 0
        var rebuilt = [UInt8](repeating: 0, count: size * (setSize - 1))
        var part = [UInt8](repeating: 0, count: size)
        for index in 0..<setSize - 1 {
            let holder = holder(ofPart: index, of: lost, setSize: setSize)
            var sum = parities[holder]
            for member in 0..<setSize where member != lost && member != holder {
                let other = Self.part(of: member, heldBy: holder, setSize: setSize)
                shards[member].withUnsafeBytes { shard in
                    part.withUnsafeMutableBytes { copyPart(shard, part: other, partSize: size, offset: 0, into: $0) }
                }
                part.withUnsafeBytes { part in sum.withUnsafeMutableBytes { combine(part, into: $0) } }
            }
            rebuilt.replaceSubrange(index * size..<(index + 1) * size, with: sum)
        }
        return Array(rebuilt.prefix(length))
    }

    // MARK: File

    /// One member's record in a parity file: its shard's length and SHA-256.
    struct Member: Codable, Equatable, Sendable {
        var rank: Int
        var length: Int
        var sha256: [UInt8]
    }

    /// A parity file's header.
    struct Header: Equatable, Sendable {
        /// The position of the file's owner in ``members``.
        var position: Int
        var members: [Member]
        var partSize: Int

        var byteCount: Int { fixedHeaderBytes + memberBytes * members.count }
        /// The whole file's size: header, parity, checksum.
        var fileSize: Int { byteCount + partSize + checksumBytes }

        func encoded() -> [UInt8] {
            var builder = ByteBuilder()
            builder.append(contentsOf: magic)
            builder.append(version)
            builder.append(UInt32(members.count))
            builder.append(UInt32(position))
            builder.append(UInt32(0))
            builder.append(UInt64(partSize))
            for member in members {
                builder.append(UInt32(member.rank))
                builder.append(UInt32(0))
                builder.append(UInt64(member.length))
                builder.append(contentsOf: member.sha256)
            }
            return builder.bytes
        }

        /// Reads and checks a parity file's header and its checksum over the whole file.
        /// - Throws: ``CheckpointError/Code/corruptData`` for a file that is not a whole, intact parity file.
        static func read(_ source: any ByteSource) throws(CheckpointError) -> Header {
            let size = try source.size()
            func corrupt(_ why: String) -> CheckpointError {
                CheckpointError(.corruptData, "the XOR parity file is damaged: \(why)", path: source.path)
            }
            guard size >= fixedHeaderBytes + checksumBytes else { throw corrupt("it is truncated") }
            var fixed = [UInt8](repeating: 0, count: fixedHeaderBytes)
            try withTypedThrows { try fixed.withUnsafeMutableBytes { bytes in try source.read(into: bytes, at: 0) } }
            var cursor = ByteCursor(fixed, path: source.path)
            guard try cursor.bytes(8) == magic else { throw corrupt("it does not start with the parity magic") }
            guard try cursor.u32() == version else { throw corrupt("its version is not \(version)") }
            let count = Int(try cursor.u32())
            let position = Int(try cursor.u32())
            _ = try cursor.u32()
            let partSize = try cursor.u64()
            guard count >= 2, count <= maximumSetSize, position < count else { throw corrupt("its set is malformed") }
            let headerBytes = fixedHeaderBytes + memberBytes * count
            guard partSize <= UInt64(size), size == headerBytes + Int(partSize) + checksumBytes else {
                throw corrupt("its size does not match its header")
            }
            var rest = [UInt8](repeating: 0, count: memberBytes * count)
            try withTypedThrows {
                try rest.withUnsafeMutableBytes { bytes in
                    try source.read(into: bytes, at: fixedHeaderBytes)
                }
            }
            var members: [Member] = []
            var records = ByteCursor(rest, path: source.path)
            for _ in 0..<count {
                let rank = Int(try records.u32())
                _ = try records.u32()
                let length = try records.u64()
                guard length <= UInt64(partSize) * UInt64(count - 1) else {
                    throw corrupt("a member's length is too large")
                }
                members.append(Member(rank: rank, length: Int(length), sha256: try records.bytes(32)))
            }
            var hasher = SHA256()
            try forEachChunk(of: source, in: 0..<size - checksumBytes) { hasher.update(bufferPointer: $0) }
            var stored = [UInt8](repeating: 0, count: checksumBytes)
            try withTypedThrows {
                try stored.withUnsafeMutableBytes { bytes in
                    try source.read(into: bytes, at: size - checksumBytes)
                }
            }
            guard Array(hasher.finalize()) == stored else { throw corrupt("its checksum does not match") }
            return Header(position: position, members: members, partSize: Int(partSize))
        }
    }

    /// SHA-256 of a whole source, read in bounded parts.
    static func digest(of source: any ByteSource) throws(CheckpointError) -> [UInt8] {
        var hasher = SHA256()
        try forEachChunk(of: source, in: 0..<(try source.size())) { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize())
    }

    /// Calls `body` with consecutive parts of `range` of `source`, each at most ``FileExchange/partSize``.
    static func forEachChunk(
        of source: any ByteSource,
        in range: Range<Int>,
        _ body: (UnsafeRawBufferPointer) -> Void
    ) throws(CheckpointError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, min(range.count, FileExchange.partSize)),
            alignment: 64
        )
        defer { buffer.deallocate() }
        var offset = range.lowerBound
        while offset < range.upperBound {
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(buffer.count, range.upperBound - offset)])
            try source.read(into: part, at: offset)
            body(UnsafeRawBufferPointer(part))
            offset += part.count
        }
    }

    /// Reads `buffer.count` bytes of part `part` of a shard file of `length` bytes, from `offset` within
    /// the part, zero past the file's end.
    static func readPart(
        _ source: any ByteSource,
        length: Int,
        part: Int,
        partSize: Int,
        offset: Int,
        into buffer: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) {
        let start = part * partSize + offset
        let available = max(0, min(buffer.count, length - start))
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if available > 0 {
            try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<available]), at: start)
        }
    }
}
