/// The byte-shuffle filter, as in Blosc and HDF5.
///
/// For `n` elements of `width` bytes, byte `j` of element `i` moves to position `j * n + i`: all
/// first bytes, then all second bytes, and so on. The high bytes of neighbouring floating-point
/// values (sign, exponent, leading mantissa) are similar, so grouping them gives zstd long runs
/// to work with.
enum ByteShuffle {
    /// Shuffles `source` into `destination` (same size, a multiple of `width`).
    static func shuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(source.count == destination.count && width > 0 && source.count % width == 0)
        let count = source.count / width
        guard count > 0, width > 1 else {
            if let base = source.baseAddress, source.count > 0 {
                destination.baseAddress!.copyMemory(from: base, byteCount: source.count)
            }
            return
        }
        let input = source.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let output = destination.baseAddress!.assumingMemoryBound(to: UInt8.self)
        switch width {
        case 8: transpose8(input, output, count: count, shuffling: true)
        case 4: transpose4(input, output, count: count, shuffling: true)
        case 2: shuffle(input, output, count: count, width: 2)
        default: shuffle(input, output, count: count, width: width)
        }
    }

    /// Reverses ``shuffle(_:into:width:)``.
    static func unshuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int)
    {
        precondition(source.count == destination.count && width > 0 && source.count % width == 0)
        let count = source.count / width
        guard count > 0, width > 1 else {
            if let base = source.baseAddress, source.count > 0 {
                destination.baseAddress!.copyMemory(from: base, byteCount: source.count)
            }
            return
        }
        let input = source.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let output = destination.baseAddress!.assumingMemoryBound(to: UInt8.self)
        switch width {
        case 8: transpose8(input, output, count: count, shuffling: false)
        case 4: transpose4(input, output, count: count, shuffling: false)
        case 2: unshuffle(input, output, count: count, width: 2)
        default: unshuffle(input, output, count: count, width: width)
        }
    }

    // Widths 8 and 4 (doubles, 64- and 32-bit integers, floats): groups of 8 (or 4) elements form an
    // 8 × 8 (4 × 4) byte matrix whose rows are elements and whose columns are the bytes that go to
    // each stream; it is transposed in registers by swapping ever larger blocks between rows
    // (1-byte, 2-byte, then 4-byte), so every load and store moves a whole word. Shuffling reads
    // rows from the elements and writes them to the streams; unshuffling does the reverse, with the
    // same transpose (it is its own inverse). Leftover elements go through the byte loops below.

    /// Shuffles (or, `shuffling` false, unshuffles) `count` 8-byte elements. (Written out per width
    /// rather than generic over the vector type: the generic version restored 5–10 % slower.)
    @inline(__always)
    private static func transpose8(
        _ input: UnsafePointer<UInt8>,
        _ output: UnsafeMutablePointer<UInt8>,
        count: Int,
        shuffling: Bool
    ) {
        let source = UnsafeRawPointer(input)
        let target = UnsafeMutableRawPointer(output)
        let groups = count / 8
        for group in 0..<groups {
            var rows = SIMD8<UInt64>()
            for row in 0..<8 {
                let offset = shuffling ? (group &* 8 &+ row) &* 8 : row &* count &+ group &* 8
                rows[row] = source.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            }
            rows = transposed8x8(rows)
            for row in 0..<8 {
                let offset = shuffling ? row &* count &+ group &* 8 : (group &* 8 &+ row) &* 8
                target.storeBytes(of: rows[row], toByteOffset: offset, as: UInt64.self)
            }
        }
        if shuffling {
            shuffle(input, output, count: count, width: 8, from: groups * 8)
        } else {
            unshuffle(input, output, count: count, width: 8, from: groups * 8)
        }
    }

    /// Shuffles (or unshuffles) `count` 4-byte elements.
    @inline(__always)
    private static func transpose4(
        _ input: UnsafePointer<UInt8>,
        _ output: UnsafeMutablePointer<UInt8>,
        count: Int,
        shuffling: Bool
    ) {
        let source = UnsafeRawPointer(input)
        let target = UnsafeMutableRawPointer(output)
        let groups = count / 4
        for group in 0..<groups {
            var rows = SIMD4<UInt32>()
            for row in 0..<4 {
                let offset = shuffling ? (group &* 4 &+ row) &* 4 : row &* count &+ group &* 4
                rows[row] = source.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            }
            rows = transposed4x4(rows)
            for row in 0..<4 {
                let offset = shuffling ? row &* count &+ group &* 4 : (group &* 4 &+ row) &* 4
                target.storeBytes(of: rows[row], toByteOffset: offset, as: UInt32.self)
            }
        }
        if shuffling {
            shuffle(input, output, count: count, width: 4, from: groups * 4)
        } else {
            unshuffle(input, output, count: count, width: 4, from: groups * 4)
        }
    }

    /// The transpose of an 8 × 8 byte matrix whose row `i` is `rows[i]` (byte `j` in bits `8j…8j+7`).
    @inline(__always)
    static func transposed8x8(_ rows: SIMD8<UInt64>) -> SIMD8<UInt64> {
        var (r0, r1, r2, r3, r4, r5, r6, r7) = (rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6], rows[7])
        // Swap the off-diagonal 1-byte blocks of rows (0, 1), (2, 3)…, then the 2-byte blocks of
        // rows (0, 2), (1, 3)…, then the 4-byte blocks of rows (0, 4), (1, 5)….
        let bytes: UInt64 = 0x00FF_00FF_00FF_00FF
        exchange(&r0, &r1, bytes, 8)
        exchange(&r2, &r3, bytes, 8)
        exchange(&r4, &r5, bytes, 8)
        exchange(&r6, &r7, bytes, 8)
        let pairs: UInt64 = 0x0000_FFFF_0000_FFFF
        exchange(&r0, &r2, pairs, 16)
        exchange(&r1, &r3, pairs, 16)
        exchange(&r4, &r6, pairs, 16)
        exchange(&r5, &r7, pairs, 16)
        let halves: UInt64 = 0x0000_0000_FFFF_FFFF
        exchange(&r0, &r4, halves, 32)
        exchange(&r1, &r5, halves, 32)
        exchange(&r2, &r6, halves, 32)
        exchange(&r3, &r7, halves, 32)
        return SIMD8(r0, r1, r2, r3, r4, r5, r6, r7)
    }

    /// The transpose of a 4 × 4 byte matrix whose row `i` is `rows[i]`.
    @inline(__always)
    static func transposed4x4(_ rows: SIMD4<UInt32>) -> SIMD4<UInt32> {
        var (r0, r1, r2, r3) = (rows[0], rows[1], rows[2], rows[3])
        exchange(&r0, &r1, UInt32(0x00FF_00FF), 8)
        exchange(&r2, &r3, UInt32(0x00FF_00FF), 8)
        exchange(&r0, &r2, UInt32(0x0000_FFFF), 16)
        exchange(&r1, &r3, UInt32(0x0000_FFFF), 16)
        return SIMD4(r0, r1, r2, r3)
    }

    /// Swaps the blocks `mask` selects in `b` with those `shift` bits higher in `a`.
    @inline(__always)
    private static func exchange<Word: FixedWidthInteger>(_ a: inout Word, _ b: inout Word, _ mask: Word, _ shift: Word)
    {
        let t = ((a >> shift) ^ b) & mask
        b ^= t
        a ^= t << shift
    }

    // The callers pass literal widths so each call is specialized and the inner loop unrolled.
    // Blocks of elements keep both sides of the transpose in cache. `first` skips the elements
    // the transposing paths already moved.
    @inline(__always)
    private static func shuffle(
        _ input: UnsafePointer<UInt8>,
        _ output: UnsafeMutablePointer<UInt8>,
        count: Int,
        width: Int,
        from first: Int = 0
    ) {
        let block = 4096
        var start = first
        while start < count {
            let end = min(start + block, count)
            for byte in 0..<width {
                let stream = output + byte * count
                var element = start
                while element < end {
                    stream[element] = input[element &* width &+ byte]
                    element &+= 1
                }
            }
            start = end
        }
    }

    @inline(__always)
    private static func unshuffle(
        _ input: UnsafePointer<UInt8>,
        _ output: UnsafeMutablePointer<UInt8>,
        count: Int,
        width: Int,
        from first: Int = 0
    ) {
        let block = 4096
        var start = first
        while start < count {
            let end = min(start + block, count)
            for byte in 0..<width {
                let stream = input + byte * count
                var element = start
                while element < end {
                    output[element &* width &+ byte] = stream[element]
                    element &+= 1
                }
            }
            start = end
        }
    }
}

/// The delta step of ``Filter/delta``: little-endian unsigned integers of 1, 2, 4 or 8 bytes, each
/// replaced by its difference from the one before (modulo 2^(8·width)); the first keeps its value.
enum Delta {
    /// Writes the differences of `source`'s integers into `destination` (same size).
    static func encode(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(source.count == destination.count && source.count % width == 0)
        switch width {
        case 8: encode(source, destination, as: UInt64.self)
        case 4: encode(source, destination, as: UInt32.self)
        case 2: encode(source, destination, as: UInt16.self)
        default:
            precondition(width == 1, "delta width \(width)")
            encode(source, destination, as: UInt8.self)
        }
    }

    /// Adds the differences in `buffer` up, in place (the inverse of ``encode(_:into:width:)``).
    static func decode(_ buffer: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(buffer.count % width == 0)
        switch width {
        case 8: decode(buffer, as: UInt64.self)
        case 4: decode(buffer, as: UInt32.self)
        case 2: decode(buffer, as: UInt16.self)
        default:
            precondition(width == 1, "delta width \(width)")
            decode(buffer, as: UInt8.self)
        }
    }

    @inline(__always)
    private static func encode<Word: FixedWidthInteger & UnsignedInteger>(
        _ source: UnsafeRawBufferPointer,
        _ destination: UnsafeMutableRawBufferPointer,
        as: Word.Type
    ) {
        let size = MemoryLayout<Word>.size
        var previous: Word = 0
        for index in 0..<source.count / size {
            let value = Word(littleEndian: source.loadUnaligned(fromByteOffset: index &* size, as: Word.self))
            destination.storeBytes(of: (value &- previous).littleEndian, toByteOffset: index &* size, as: Word.self)
            previous = value
        }
    }

    @inline(__always)
    private static func decode<Word: FixedWidthInteger & UnsignedInteger>(
        _ buffer: UnsafeMutableRawBufferPointer,
        as: Word.Type
    ) {
        let size = MemoryLayout<Word>.size
        var sum: Word = 0
        for index in 0..<buffer.count / size {
            sum &+= Word(littleEndian: buffer.loadUnaligned(fromByteOffset: index &* size, as: Word.self))
            buffer.storeBytes(of: sum.littleEndian, toByteOffset: index &* size, as: Word.self)
        }
    }
}

// The delta step fused with the shuffle for 8- and 4-byte integers: one pass instead of two over
// the chunk, each way. The differences of a group of elements are taken (or, decoding, added up)
// in registers around the same transpose the shuffle uses.
extension Delta {
    /// Whether ``encodeShuffled(_:into:width:)`` and ``decodeShuffled(_:into:width:)`` take `width`.
    static func fusesShuffle(width: Int) -> Bool { width == 8 || width == 4 }

    /// Writes the shuffled differences of `source`'s integers into `destination`: the bytes
    /// ``encode(_:into:width:)`` followed by ``ByteShuffle/shuffle(_:into:width:)`` produce, in one
    /// pass. `width` is 8 or 4.
    static func encodeShuffled(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer,
        width: Int
    ) {
        precondition(source.count == destination.count && fusesShuffle(width: width) && source.count % width == 0)
        guard let input = source.baseAddress, let output = destination.baseAddress else { return }
        let count = source.count / width
        let (done, last) =
            width == 8
            ? encodeShuffled8(input, output, count: count)
            : encodeShuffled4(input, output, count: count)
        var previous = last
        for element in done..<count {
            let value = loadInteger(input, at: element * width, width: width)
            storeStreams(value &- previous, output, element: element, count: count, width: width)
            previous = value
        }
    }

    /// Reverses ``encodeShuffled(_:into:width:)``: unshuffles `source` into `destination` and adds
    /// the differences up, in one pass. `width` is 8 or 4.
    static func decodeShuffled(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer,
        width: Int
    ) {
        precondition(source.count == destination.count && fusesShuffle(width: width) && source.count % width == 0)
        guard let input = source.baseAddress, let output = destination.baseAddress else { return }
        let count = source.count / width
        let (done, last) =
            width == 8
            ? decodeShuffled8(input, output, count: count)
            : decodeShuffled4(input, output, count: count)
        var sum = last
        let mask: UInt64 = width == 8 ? .max : 0xFFFF_FFFF
        for element in done..<count {
            var difference: UInt64 = 0
            for byte in 0..<width {
                let stream = input.load(fromByteOffset: byte * count + element, as: UInt8.self)
                difference |= UInt64(stream) << (8 * byte)
            }
            sum = (sum &+ difference) & mask
            for byte in 0..<width {
                output.storeBytes(
                    of: UInt8(truncatingIfNeeded: sum >> (8 * byte)),
                    toByteOffset: element * width + byte,
                    as: UInt8.self
                )
            }
        }
    }

    /// Groups of 8 elements of 8 bytes. Returns the elements done and the last one's value.
    private static func encodeShuffled8(
        _ source: UnsafeRawPointer,
        _ target: UnsafeMutableRawPointer,
        count: Int
    ) -> (Int, UInt64) {
        var previous: UInt64 = 0
        for group in 0..<count / 8 {
            var rows = SIMD8<UInt64>()
            for row in 0..<8 {
                let value = UInt64(
                    littleEndian: source.loadUnaligned(fromByteOffset: (group &* 8 &+ row) &* 8, as: UInt64.self)
                )
                rows[row] = (value &- previous).littleEndian
                previous = value
            }
            rows = ByteShuffle.transposed8x8(rows)
            for row in 0..<8 {
                target.storeBytes(of: rows[row], toByteOffset: row &* count &+ group &* 8, as: UInt64.self)
            }
        }
        return (count / 8 * 8, previous)
    }

    /// Groups of 4 elements of 4 bytes. Returns the elements done and the last one's value.
    private static func encodeShuffled4(
        _ source: UnsafeRawPointer,
        _ target: UnsafeMutableRawPointer,
        count: Int
    ) -> (Int, UInt64) {
        var previous: UInt32 = 0
        for group in 0..<count / 4 {
            var rows = SIMD4<UInt32>()
            for row in 0..<4 {
                let value = UInt32(
                    littleEndian: source.loadUnaligned(fromByteOffset: (group &* 4 &+ row) &* 4, as: UInt32.self)
                )
                rows[row] = (value &- previous).littleEndian
                previous = value
            }
            rows = ByteShuffle.transposed4x4(rows)
            for row in 0..<4 {
                target.storeBytes(of: rows[row], toByteOffset: row &* count &+ group &* 4, as: UInt32.self)
            }
        }
        return (count / 4 * 4, UInt64(previous))
    }

    /// Groups of 8 elements of 8 bytes. Returns the elements done and the last one's value.
    private static func decodeShuffled8(
        _ source: UnsafeRawPointer,
        _ target: UnsafeMutableRawPointer,
        count: Int
    ) -> (Int, UInt64) {
        var sum: UInt64 = 0
        for group in 0..<count / 8 {
            var rows = SIMD8<UInt64>()
            for row in 0..<8 {
                rows[row] = source.loadUnaligned(fromByteOffset: row &* count &+ group &* 8, as: UInt64.self)
            }
            rows = ByteShuffle.transposed8x8(rows)
            for row in 0..<8 {
                sum &+= UInt64(littleEndian: rows[row])
                target.storeBytes(of: sum.littleEndian, toByteOffset: (group &* 8 &+ row) &* 8, as: UInt64.self)
            }
        }
        return (count / 8 * 8, sum)
    }

    /// Groups of 4 elements of 4 bytes. Returns the elements done and the last one's value.
    private static func decodeShuffled4(
        _ source: UnsafeRawPointer,
        _ target: UnsafeMutableRawPointer,
        count: Int
    ) -> (Int, UInt64) {
        var sum: UInt32 = 0
        for group in 0..<count / 4 {
            var rows = SIMD4<UInt32>()
            for row in 0..<4 {
                rows[row] = source.loadUnaligned(fromByteOffset: row &* count &+ group &* 4, as: UInt32.self)
            }
            rows = ByteShuffle.transposed4x4(rows)
            for row in 0..<4 {
                sum &+= UInt32(littleEndian: rows[row])
                target.storeBytes(of: sum.littleEndian, toByteOffset: (group &* 4 &+ row) &* 4, as: UInt32.self)
            }
        }
        return (count / 4 * 4, UInt64(sum))
    }

    /// The little-endian integer of `width` (8 or 4) bytes at `offset`.
    private static func loadInteger(_ base: UnsafeRawPointer, at offset: Int, width: Int) -> UInt64 {
        width == 8
            ? UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            : UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    /// Stores the `width` low bytes of `value` (modulo 2^(8·width)) into the streams at `element`.
    private static func storeStreams(
        _ value: UInt64,
        _ output: UnsafeMutableRawPointer,
        element: Int,
        count: Int,
        width: Int
    ) {
        for byte in 0..<width {
            output.storeBytes(
                of: UInt8(truncatingIfNeeded: value >> (8 * byte)),
                toByteOffset: byte * count + element,
                as: UInt8.self
            )
        }
    }
}
