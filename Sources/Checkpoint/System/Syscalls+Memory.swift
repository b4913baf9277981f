import Glibc

extension Syscalls {
    /// The size of a transparent huge page on x86-64 and arm64 with 4 KiB pages.
    private static let hugePageSize = 2 << 20

    /// Asks the kernel to back the whole 2 MiB pages inside `buffer` with transparent huge pages
    /// when they are first touched (`madvise(MADV_HUGEPAGE)`).
    ///
    /// For a large buffer that is about to be filled once, such as an entry being restored, this
    /// takes one page fault per 2 MiB instead of one per 4 KiB. Only advice: ignored where the
    /// kernel has transparent huge pages off, and pages already touched keep their size.
    static func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count >= 2 * hugePageSize else { return }
        let start = (Int(bitPattern: base) + hugePageSize - 1) & ~(hugePageSize - 1)
        let end = (Int(bitPattern: base) + buffer.count) & ~(hugePageSize - 1)
        guard end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(aligned, end - start, MADV_HUGEPAGE)
    }

    /// Allocates a working buffer of `byteCount` bytes (at least 1) that is filled whole, over and
    /// over, such as a chunk buffer of a save or restore: aligned to a huge page and advised to use
    /// them when it spans at least two (``adviseHugePages(_:)``), else aligned to a cache line.
    /// Release it with `deallocate()`.
    static func allocateWorkingBuffer(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        let count = max(1, byteCount)
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: count,
            alignment: count >= 2 * hugePageSize ? hugePageSize : 64
        )
        adviseHugePages(buffer)
        return buffer
    }
}
