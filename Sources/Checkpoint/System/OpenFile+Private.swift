#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension OpenFile {
    /// Reads a whole secret file (a key), refusing one that another user owns or that group or
    /// others can read or write: a key anyone else can read authenticates nothing.
    ///
    /// The file is checked through its open descriptor, so swapping it after the check is useless.
    /// - Throws: `notFound`, `permissionDenied`; `invalidConfiguration` when it is not a regular
    ///   file, is not private, or is larger than `limit` bytes.
    static func readPrivateFile(_ path: String, limit: Int) throws(CheckpointError) -> [UInt8] {
        let file = try openForReading(path)
        defer { file.close() }
        var info = stat()
        guard fstat(file.descriptor, &info) == 0 else { throw .system("stat", errno: errno, path: path) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw CheckpointError(.invalidConfiguration, "key file is not a regular file", path: path)
        }
        guard info.st_uid == geteuid() else {
            throw CheckpointError(
                .invalidConfiguration,
                "key file is owned by user \(info.st_uid), not by this user (\(geteuid())); copy it to a file of your own with mode 0600",
                path: path
            )
        }
        guard info.st_mode & 0o077 == 0 else {
            throw CheckpointError(
                .invalidConfiguration,
                "key file is readable or writable by others (mode \(String(info.st_mode & 0o777, radix: 8))); run 'chmod 600' on it",
                path: path
            )
        }
        let size = Int(info.st_size)
        guard size <= limit else {
            throw CheckpointError(
                .invalidConfiguration,
                "key file is \(size) bytes, more than a key's \(limit); point at the key file itself",
                path: path
            )
        }
        var bytes = [UInt8](repeating: 0, count: size)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in try file.read(into: buffer, at: 0) }
        }
        return bytes
    }
}
