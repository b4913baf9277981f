import CXXHash
import Crypto

/// XXH3-128 of a byte buffer, in its canonical (big-endian) form: 16 bytes.
func xxh3_128(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    let hash = XXH3_128bits(bytes.baseAddress, bytes.count)
    var canonical = XXH128_canonical_t()
    XXH128_canonicalFromHash(&canonical, hash)
    return withUnsafeBytes(of: canonical.digest) { Array($0) }
}

/// SHA-256 of a byte buffer.
func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    var hasher = SHA256()
    hasher.update(bufferPointer: bytes)
    return Array(hasher.finalize())
}

/// SHA-256 of a byte array.
func sha256(_ bytes: [UInt8]) -> [UInt8] {
    bytes.withUnsafeBytes { sha256($0) }
}

/// Lower-case hexadecimal.
func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
