import Foundation

/// One way to damage a committed checkpoint.
enum Corruption: String, CaseIterable {
    case flipBytes = "flip-bytes"
    case zeroBlock = "zero-block"
    case truncate
    case appendGarbage = "append-garbage"
    case deleteShard = "delete-shard"
    case staleShard = "stale-shard"
    case swapShards = "swap-shards"
    case deleteManifest = "delete-manifest"
    case corruptManifest = "corrupt-manifest"
    case corruptChecksum = "corrupt-checksum"

    /// Whether the case needs two ranks.
    var needsTwoRanks: Bool { self == .swapShards }

    /// Damages the checkpoint in `directory` (a `ckpt-…` folder of `ranks` shards); `previous` is
    /// an older committed checkpoint of the same run. Returns what was done, in words.
    func apply(to directory: String, ranks: Int, previous: String, using random: inout SplitMix64) throws -> String {
        let rank = Int.random(in: 0..<ranks, using: &random)
        let shard = directory + "/" + shardName(rank)
        switch self {
        case .flipBytes:
            var bytes = try readFile(shard)
            let (region, range) = Self.region(of: bytes, using: &random)
            let count = min(range.count, Int.random(in: 1...8, using: &random))
            var offsets = Set<Int>()
            while offsets.count < count { offsets.insert(Int.random(in: range, using: &random)) }
            // A non-zero XOR always changes the byte.
            for offset in offsets { bytes[offset] ^= UInt8.random(in: 1...255, using: &random) }
            try writeFile(shard, bytes)
            return "flipped \(count) byte(s) in the \(region) of \(shardName(rank)) at \(offsets.sorted())"
        case .zeroBlock:
            var bytes = try readFile(shard)
            let length = min(bytes.count, Int.random(in: 16...4096, using: &random))
            // A block that is zero already would change nothing: look for one that is not.
            for _ in 0..<64 {
                let start = Int.random(in: 0...(bytes.count - length), using: &random)
                guard bytes[start..<start + length].contains(where: { $0 != 0 }) else { continue }
                for offset in start..<start + length { bytes[offset] = 0 }
                try writeFile(shard, bytes)
                return "zeroed \(length) bytes of \(shardName(rank)) at \(start) (a lost write)"
            }
            throw HarnessError("\(shardName(rank)) has no non-zero block of \(length) bytes")
        case .truncate:
            let bytes = try readFile(shard)
            let length = Int.random(in: 0..<bytes.count, using: &random)
            try writeFile(shard, Array(bytes[..<length]))
            return "truncated \(shardName(rank)) from \(bytes.count) to \(length) bytes"
        case .appendGarbage:
            let bytes = try readFile(shard)
            let garbage = (0..<Int.random(in: 1...4096, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            try writeFile(shard, bytes + garbage)
            return "appended \(garbage.count) random bytes to \(shardName(rank))"
        case .deleteShard:
            try FileManager.default.removeItem(atPath: shard)
            return "deleted \(shardName(rank))"
        case .staleShard:
            // A rank whose state did not change between the checkpoints (heat's cold rows) has
            // byte-identical shards: replacing one with the other damages nothing. Pick a rank
            // whose shard differs, or damage the checkpoint another way.
            let differing = (0..<ranks).map { (rank + $0) % ranks }.first { candidate in
                let name = shardName(candidate)
                return (try? readFile(directory + "/" + name)) != (try? readFile(previous + "/" + name))
            }
            guard let stale = differing else {
                return try Corruption.flipBytes.apply(to: directory, ranks: ranks, previous: previous, using: &random)
            }
            let staleShard = directory + "/" + shardName(stale)
            try FileManager.default.removeItem(atPath: staleShard)
            try FileManager.default.copyItem(atPath: previous + "/" + shardName(stale), toPath: staleShard)
            return "replaced \(shardName(stale)) with the same rank's shard of the previous checkpoint"
        case .swapShards:
            precondition(ranks >= 2, "swapping needs two ranks")
            var other = Int.random(in: 0..<(ranks - 1), using: &random)
            if other >= rank { other += 1 }
            let otherShard = directory + "/" + shardName(other)
            // Two ranks with identical state have identical shards: swapping them changes nothing.
            if try readFile(shard) == readFile(otherShard) {
                return try Corruption.flipBytes.apply(to: directory, ranks: ranks, previous: previous, using: &random)
            }
            let scratch = shard + ".swap"
            try FileManager.default.moveItem(atPath: shard, toPath: scratch)
            try FileManager.default.moveItem(atPath: otherShard, toPath: shard)
            try FileManager.default.moveItem(atPath: scratch, toPath: otherShard)
            return "swapped the shards of ranks \(rank) and \(other)"
        case .deleteManifest:
            let alsoChecksum = random.chance(0.3)
            try FileManager.default.removeItem(atPath: directory + "/manifest.json")
            if alsoChecksum { try FileManager.default.removeItem(atPath: directory + "/manifest.json.sha256") }
            return alsoChecksum ? "deleted manifest.json and its .sha256" : "deleted manifest.json"
        case .corruptManifest:
            return try Self.damageText(directory + "/manifest.json", significant: nil, using: &random)
        case .corruptChecksum:
            let path = directory + "/manifest.json.sha256"
            if random.chance(0.2) {
                try FileManager.default.removeItem(atPath: path)
                return "deleted manifest.json.sha256"
            }
            // Only the digest counts: the format leaves the rest of the line ("  manifest.json\n")
            // uninterpreted, as sha256sum(1) does.
            return try Self.damageText(path, significant: 64, using: &random)
        }
    }

    /// Flips a byte in, truncates, or edits a digit of a text file (manifest or checksum), within
    /// its first `significant` bytes (all of them when `nil`).
    private static func damageText(_ path: String, significant: Int?, using random: inout SplitMix64) throws -> String {
        var bytes = try readFile(path)
        let name = (path as NSString).lastPathComponent
        let limit = min(bytes.count, significant ?? bytes.count)
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            let offset = Int.random(in: 0..<limit, using: &random)
            bytes[offset] ^= UInt8.random(in: 1...255, using: &random)
            try writeFile(path, bytes)
            return "flipped byte \(offset) of \(name)"
        case 1:
            let length = Int.random(in: 0..<limit, using: &random)
            try writeFile(path, Array(bytes[..<length]))
            return "truncated \(name) to \(length) of \(bytes.count) bytes"
        default:
            // A plausible edit: one digit changed into another (a number or a hex digit of a digest).
            let digits = bytes.indices.prefix(limit).filter {
                bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9")
            }
            guard let offset = digits.randomElement(using: &random) else {
                throw HarnessError("\(name) has no digit to change")
            }
            let old = bytes[offset]
            var new = old
            while new == old { new = UInt8(ascii: "0") + UInt8.random(in: 0...9, using: &random) }
            bytes[offset] = new
            try writeFile(path, bytes)
            return "changed digit \(offset) of \(name) from \(UnicodeScalar(old)) to \(UnicodeScalar(new))"
        }
    }

    /// A random region of a shard (header, chunk data, index or footer) and its byte range.
    static func region(of bytes: [UInt8], using random: inout SplitMix64) -> (String, Range<Int>) {
        let headerSize = 16
        let footerSize = 56
        guard bytes.count >= headerSize + footerSize else { return ("file", 0..<bytes.count) }
        func u64(at offset: Int) -> Int {
            Int(truncatingIfNeeded: (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) })
        }
        let footer = bytes.count - footerSize
        let indexOffset = u64(at: footer)
        let indexLength = u64(at: footer + 8)
        var regions = [("header", 0..<headerSize), ("footer", footer..<bytes.count)]
        if indexOffset >= headerSize, indexLength > 0, indexOffset <= footer - indexLength {
            regions.append(("index", indexOffset..<indexOffset + indexLength))
            if indexOffset > headerSize { regions.append(("chunk data", headerSize..<indexOffset)) }
        }
        return regions.randomElement(using: &random)!
    }
}

/// `rank-00003.snap`.
func shardName(_ rank: Int) -> String {
    let digits = String(rank)
    return "rank-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".snap"
}

func readFile(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

func writeFile(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
