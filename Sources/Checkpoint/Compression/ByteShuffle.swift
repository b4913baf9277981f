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
        case 8: shuffle(input, output, count: count, width: 8)
        case 4: shuffle(input, output, count: count, width: 4)
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
        case 8: unshuffle(input, output, count: count, width: 8)
        case 4: unshuffle(input, output, count: count, width: 4)
        case 2: unshuffle(input, output, count: count, width: 2)
        default: unshuffle(input, output, count: count, width: width)
        }
    }

    // The callers pass literal widths so each call is specialized and the inner loop unrolled.
    // Blocks of elements keep both sides of the transpose in cache.
    @inline(__always)
    private static func shuffle(
        _ input: UnsafePointer<UInt8>,
        _ output: UnsafeMutablePointer<UInt8>,
        count: Int,
        width: Int
    ) {
        let block = 4096
        var start = 0
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
        width: Int
    ) {
        let block = 4096
        var start = 0
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
