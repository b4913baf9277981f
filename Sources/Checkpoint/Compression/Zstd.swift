import CZstd

// Every libzstd call of the library lives in this file. Each result is checked with
// `ZSTD_isError` and turned into a `CheckpointError`.

/// A zstd compression context, reused across chunks by one worker.
final class ZstdCompressor {
    private let context: OpaquePointer

    /// Creates a context that writes standard frames with the content size at `level`, and an
    /// XXH64 content checksum unless `contentChecksum` is false (a chunk whose stored bytes carry a
    /// checksum of their own needs none: it would only cost a pass over the data each way).
    init(level: Int, contentChecksum: Bool = true) throws(CheckpointError) {
        guard let context = ZSTD_createCCtx() else {
            throw CheckpointError(.compressionFailed, "zstd could not allocate a compression context")
        }
        self.context = context
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)), "set level \(level)")
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, contentChecksum ? 1 : 0), "set checksums")
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1), "enable content size")
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The largest frame `compress` can produce for `size` input bytes.
    static func bound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    /// Compresses `source` into one zstd frame in `destination`.
    /// - Returns: The frame's size in bytes.
    func compress(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) -> Int {
        let result = ZSTD_compress2(
            context,
            destination.baseAddress,
            destination.count,
            source.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
            source.count
        )
        try check(result, "compress")
        return result
    }

    private func check(_ code: Int, _ what: String) throws(CheckpointError) {
        if ZSTD_isError(code) != 0 {
            throw CheckpointError(
                .compressionFailed,
                "zstd failed to \(what): \(String(cString: ZSTD_getErrorName(code)))"
            )
        }
    }
}

/// A zstd decompression context, reused across chunks by one worker.
final class ZstdDecompressor {
    private let context: OpaquePointer

    /// Creates a context. It does not verify a frame's XXH64 content checksum: every caller checks
    /// the chunk's stored bytes, frame included, against the chunk record's own checksum before
    /// decoding (rule C1), so a second check would only cost a pass over the decoded data.
    init() throws(CheckpointError) {
        guard let context = ZSTD_createDCtx() else {
            throw CheckpointError(.ioFailure, "zstd could not allocate a decompression context")
        }
        self.context = context
        let ignored = ZSTD_DCtx_setParameter(context, ckpt_zstd_d_force_ignore_checksum(), 1)
        if ZSTD_isError(ignored) != 0 {
            ZSTD_freeDCtx(context)
            throw CheckpointError(
                .ioFailure,
                "zstd could not skip content checksums: \(String(cString: ZSTD_getErrorName(ignored)))"
            )
        }
    }

    deinit { ZSTD_freeDCtx(context) }

    /// The content size the zstd frame at the start of `frame` declares in its header, or `nil` when
    /// it is not a frame or declares none. Reads only the header: nothing is decoded or allocated.
    static func declaredContentSize(_ frame: UnsafeRawBufferPointer) -> UInt64? {
        guard let base = frame.baseAddress else { return nil }
        let declared = ZSTD_getFrameContentSize(base, frame.count)
        guard declared != ckpt_zstd_contentsize_error(), declared != ckpt_zstd_contentsize_unknown() else { return nil }
        return declared
    }

    /// Decompresses exactly one frame from `source`, which must decode to exactly `destination.count` bytes.
    ///
    /// The frame's declared content size, its compressed extent and the decoded size are all checked
    /// before or after decoding, so a damaged frame can never write past `destination` or leave it
    /// partly filled without an error. The frame's content checksum is not verified (see ``init()``).
    func decompress(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) {
        guard let sourceBase = source.baseAddress else {
            throw CheckpointError(.corruptData, "empty zstd frame")
        }
        let declared = ZSTD_getFrameContentSize(sourceBase, source.count)
        if declared == ckpt_zstd_contentsize_error() || declared == ckpt_zstd_contentsize_unknown() {
            throw CheckpointError(.corruptData, "chunk is not a zstd frame with a declared size")
        }
        guard declared == UInt64(destination.count) else {
            throw CheckpointError(
                .corruptData,
                "zstd frame declares \(declared) bytes but the index says \(destination.count)"
            )
        }
        let extent = ZSTD_findFrameCompressedSize(sourceBase, source.count)
        guard ZSTD_isError(extent) == 0, extent == source.count else {
            throw CheckpointError(.corruptData, "zstd frame does not span its chunk exactly")
        }
        let target = destination.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!
        let produced = ZSTD_decompressDCtx(context, target, destination.count, sourceBase, source.count)
        if ZSTD_isError(produced) != 0 {
            throw CheckpointError(
                .corruptData,
                "zstd could not decode a chunk: \(String(cString: ZSTD_getErrorName(produced)))"
            )
        }
        guard produced == destination.count else {
            throw CheckpointError(
                .corruptData,
                "zstd frame decoded to \(produced) bytes, expected \(destination.count)"
            )
        }
    }
}

/// Facts about the linked libzstd.
enum Zstd {
    /// The library's version, e.g. `"1.5.4"`.
    static var versionString: String { String(cString: ZSTD_versionString()) }
    /// The valid range of compression levels.
    static var levels: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }
}

/// Standard zstd frames for tools outside the library, such as `ckpt export`'s Zarr chunks.
///
/// Not API: `@_spi(Tools)` may change in any release.
@_spi(Tools) public enum ZstdFrame {
    /// Compresses `bytes` into one standard zstd frame that declares its content size and ends
    /// with an XXH64 content checksum, as any zstd decoder (libzstd, numcodecs) reads it.
    /// - Parameters:
    ///   - bytes: The data.
    ///   - level: The compression level, clamped to the levels the linked libzstd supports.
    /// - Returns: The frame.
    /// - Throws: `compressionFailed` when zstd fails.
    public static func compress(_ bytes: UnsafeRawBufferPointer, level: Int) throws(CheckpointError) -> [UInt8] {
        let levels = Zstd.levels
        let compressor = try ZstdCompressor(level: min(max(level, levels.lowerBound), levels.upperBound))
        var frame = [UInt8](repeating: 0, count: ZstdCompressor.bound(bytes.count))
        let size = try withTypedThrows {
            try frame.withUnsafeMutableBytes { destination in try compressor.compress(bytes, into: destination) }
        }
        frame.removeLast(frame.count - size)
        return frame
    }
}
