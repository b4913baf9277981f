import Testing

@testable import Checkpoint

/// The byte shuffle against its definition (byte `j` of element `i` at `j * n + i`), for the
/// transposing fast paths (widths 8 and 4) and the byte loops alike, including element counts that
/// leave a partial group.
@Suite("Byte shuffle")
struct ByteShuffleTests {
    @Test("Shuffle and unshuffle match the definition and invert each other", arguments: [1, 2, 3, 4, 5, 8, 12, 16])
    func definition(width: Int) {
        var random = SplitMix64(seed: UInt64(width))
        for count in [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099] {
            let bytes = (0..<count * width).map { _ in UInt8.random(in: 0...255, using: &random) }
            var expected = [UInt8](repeating: 0, count: bytes.count)
            for element in 0..<count {
                for byte in 0..<width { expected[byte * count + element] = bytes[element * width + byte] }
            }
            var shuffled = [UInt8](repeating: 0, count: bytes.count)
            bytes.withUnsafeBytes { source in
                shuffled.withUnsafeMutableBytes { ByteShuffle.shuffle(source, into: $0, width: width) }
            }
            #expect(shuffled == expected, "width \(width), \(count) elements")
            var restored = [UInt8](repeating: 0, count: bytes.count)
            shuffled.withUnsafeBytes { source in
                restored.withUnsafeMutableBytes { ByteShuffle.unshuffle(source, into: $0, width: width) }
            }
            #expect(restored == bytes, "width \(width), \(count) elements")
        }
    }

    @Test("The 8 × 8 and 4 × 4 byte transposes")
    func transposes() {
        // Row r holds bytes 8r, 8r + 1, … 8r + 7 (byte c of row r is 8r + c).
        var rows = SIMD8<UInt64>()
        for row in 0..<8 {
            var word: UInt64 = 0
            for column in 0..<8 { word |= UInt64(row * 8 + column) << UInt64(8 * column) }
            rows[row] = word
        }
        let columns = ByteShuffle.transposed8x8(rows)
        for row in 0..<8 {
            for column in 0..<8 {
                #expect(UInt8(truncatingIfNeeded: columns[column] >> (8 * row)) == UInt8(row * 8 + column))
            }
        }
        #expect(ByteShuffle.transposed8x8(columns) == rows)
        let small = SIMD4<UInt32>(0x0302_0100, 0x0706_0504, 0x0B0A_0908, 0x0F0E_0D0C)
        #expect(ByteShuffle.transposed4x4(small) == SIMD4(0x0C08_0400, 0x0D09_0501, 0x0E0A_0602, 0x0F0B_0703))
    }
}
