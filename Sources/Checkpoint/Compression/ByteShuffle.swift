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
