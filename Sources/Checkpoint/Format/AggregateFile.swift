/// An aggregated file: the shards of the ranks of one node, each a region byte-for-byte a normal
/// shard, and a checksummed table of the regions (Documentation/FileFormat.md, "Aggregated files").
///
/// ```
/// header  "CKPTAGG\0", u16 major, u16 minor, u32 0            16 bytes
/// regions each rank's shard, in rank order
/// table   per region: u32 rank, u32 0, u64 offset, u64 length, 32 bytes SHA-256 of the region
/// footer  u64 table offset, u32 region count, u32 0, 32 bytes SHA-256 of the table, "CKPTAGGE"
/// ```
enum AggregateFile {
    static let magic: [UInt8] = Array("CKPTAGG\0".utf8)
    static let endMagic: [UInt8] = Array("CKPTAGGE".utf8)
    static let majorVersion: UInt16 = 1
    static let minorVersion: UInt16 = 0
    static let headerSize = 16
    static let entrySize = 56
    static let footerSize = 56
    /// More regions than any node holds ranks: bounds the table before it is read.
    static let maximumRegions = 1 << 16

    /// One rank's region.
    struct Region: Codable, Sendable, Hashable {
        var rank: Int
        var offset: Int
        var length: Int
        var sha256: [UInt8]
    }

    /// The file name of node `node`'s aggregated file, e.g. `node-00001.agg`.
    static func fileName(node: Int) -> String {
        "node-" + String(repeating: "0", count: max(0, 5 - String(node).count)) + String(node) + ".agg"
    }

    /// Whether `name` is an aggregated file's name (`node-` and five or more digits, `.agg`).
    static func isFileName(_ name: String) -> Bool {
        guard name.hasPrefix("node-"), name.hasSuffix(".agg") else { return false }
        let digits = name.dropFirst(5).dropLast(4)
        return (5...9).contains(digits.count) && digits.allSatisfy { $0 >= "0" && $0 <= "9" }
            && fileName(node: Int(digits) ?? -1) == name
    }

    static func header() -> [UInt8] {
        var builder = ByteBuilder()
        builder.append(contentsOf: magic)
        builder.append(majorVersion)
        builder.append(minorVersion)
        builder.append(UInt32(0))
        return builder.bytes
    }

    /// The table and footer that end a file whose regions end at `tableOffset`.
    static func trailer(_ regions: [Region], tableOffset: Int) -> [UInt8] {
        var table = ByteBuilder()
        for region in regions {
            table.append(UInt32(region.rank))
            table.append(UInt32(0))
            table.append(UInt64(region.offset))
            table.append(UInt64(region.length))
            table.append(contentsOf: region.sha256)
        }
        var footer = ByteBuilder()
        footer.append(UInt64(tableOffset))
        footer.append(UInt32(regions.count))
        footer.append(UInt32(0))
        footer.append(contentsOf: sha256(table.bytes))
        footer.append(contentsOf: endMagic)
        return table.bytes + footer.bytes
    }

    /// Reads and checks the table of an aggregated file: magic, version, the table's checksum, and
    /// that every region lies between the header and the table, in order, without overlap. Reads
    /// only the header, the footer and the table (whose size is bounded before it is read).
    /// - Throws: `badMagic`, `unsupportedFormatVersion`, `truncated` or `corruptData`, or what
    ///   reading the source throws.
    static func readTable(_ source: any ByteSource) throws(CheckpointError) -> [Region] {
        let path = source.path
        let size = try source.size()
        guard size >= headerSize + footerSize else {
            throw CheckpointError(
                .truncated,
                "aggregated file is \(size) bytes, smaller than a header and footer",
                path: path
            )
        }
        let header = try read(source, 0, headerSize)
        guard Array(header[0..<8]) == magic else {
            throw CheckpointError(.badMagic, "not a swift-checkpoint aggregated file (wrong magic bytes)", path: path)
        }
        var cursor = ByteCursor(Array(header[8...]), path: path)
        let major = try cursor.u16()
        let minor = try cursor.u16()
        guard major == majorVersion else {
            throw CheckpointError(
                .unsupportedFormatVersion,
                "aggregated file uses format \(major).\(minor); this build reads \(majorVersion).x",
                path: path
            )
        }
        let footer = try read(source, size - footerSize, footerSize)
        guard Array(footer[(footerSize - 8)...]) == endMagic else {
            throw CheckpointError(.truncated, "aggregated file has no footer; it was cut short", path: path)
        }
        cursor = ByteCursor(footer, path: path)
        let tableOffset = try cursor.u64()
        let count = Int(try cursor.u32())
        _ = try cursor.u32()
        let digest = try cursor.bytes(32)
        guard count <= maximumRegions, tableOffset >= UInt64(headerSize),
            tableOffset + UInt64(count * entrySize) == UInt64(size - footerSize)
        else {
            throw CheckpointError(.corruptData, "aggregated file's footer is inconsistent with its size", path: path)
        }
        let table = try read(source, Int(tableOffset), count * entrySize)
        guard sha256(table) == digest else {
            throw CheckpointError(.corruptData, "aggregated file's region table fails its checksum", path: path)
        }
        cursor = ByteCursor(table, path: path)
        var regions: [Region] = []
        var end = headerSize
        for _ in 0..<count {
            let rank = Int(try cursor.u32())
            _ = try cursor.u32()
            let offset = try cursor.u64()
            let length = try cursor.u64()
            let hash = try cursor.bytes(32)
            guard offset == UInt64(end), length <= tableOffset - offset, regions.last.map({ $0.rank < rank }) ?? true
            else {
                throw CheckpointError(.corruptData, "aggregated file's region table is inconsistent", path: path)
            }
            regions.append(Region(rank: rank, offset: Int(offset), length: Int(length), sha256: hash))
            end = Int(offset + length)
        }
        guard end == Int(tableOffset) else {
            throw CheckpointError(.corruptData, "aggregated file's regions do not end at its table", path: path)
        }
        return regions
    }

    private static func read(_ source: any ByteSource, _ offset: Int, _ count: Int) throws(CheckpointError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in try source.read(into: buffer, at: offset) }
        }
        return bytes
    }
}

/// The bytes of one region of a larger source, read by seeking: a rank's shard inside an
/// aggregated file reads like a file of its own, and nothing outside the region is read.
final class RegionSource: ByteSource {
    let base: any ByteSource
    let offset: Int
    let length: Int

    /// - Throws: `truncated` when the source ends before the region does.
    init(_ base: any ByteSource, offset: Int, length: Int) throws(CheckpointError) {
        guard offset >= 0, length >= 0, offset <= Int.max - length, try base.size() >= offset + length else {
            throw CheckpointError(
                .truncated,
                "the file ends before its region at \(offset) (\(length) bytes); it was cut short",
                path: base.path
            )
        }
        self.base = base
        self.offset = offset
        self.length = length
    }

    var path: String { base.path + "@" + String(offset) }

    func size() throws(CheckpointError) -> Int { length }

    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws(CheckpointError) {
        guard position >= 0, position <= length, buffer.count <= length - position else {
            throw CheckpointError(.truncated, "read past the end of the region", path: path)
        }
        try base.read(into: buffer, at: offset + position)
    }
}

/// A sink that keeps what is written in memory: a shard encoded for its node's aggregator.
final class MemorySink: ByteSink {
    private let buffer = Locked<[UInt8]>([])
    let path: String

    init(path: String) { self.path = path }

    var bytes: [UInt8] { buffer.withLock { $0 } }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        buffer.withLock { $0.append(contentsOf: bytes) }
    }

    func sync() throws(CheckpointError) {}

    func close() {}
}
