#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Every POSIX call of the library lives in System/: the file and directory calls in this file,
// processes in Syscalls+Process.swift, signals in Syscalls+Signals.swift. Each wrapper retries
// `EINTR`, loops over partial reads and writes, and turns `errno` into a `CheckpointError` that
// names the path (CheckpointError+System.swift). Scripts/check-layers fails when a file outside
// System/ imports the C library.

/// An open file descriptor and the path it was opened from (for error messages).
///
/// Closed by ``close()`` or when released. Concurrent `pread`s on one descriptor are safe.
final class OpenFile: @unchecked Sendable {
    let descriptor: Int32
    let path: String
    private var isOpen = true

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    /// Opens an existing file for reading.
    static func openForReading(_ path: String) throws(CheckpointError) -> OpenFile {
        try StorageFaults.check(.open, "open", path: path)
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .system("open", errno: errno, path: path) }
        return OpenFile(descriptor: fd, path: path)
    }

    /// Creates a new file, failing if it exists, with the given permission bits.
    static func createExclusive(_ path: String, permissions: UInt16) throws(CheckpointError) -> OpenFile {
        try StorageFaults.check(.open, "create", path: path)
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(permissions)) }
        guard fd >= 0 else { throw .system("create", errno: errno, path: path) }
        return OpenFile(descriptor: fd, path: path)
    }

    /// Opens an existing file for writing (tests use it to reach `/dev/full`).
    static func openForWritingForTests(_ path: String) throws(CheckpointError) -> OpenFile {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .system("open", errno: errno, path: path) }
        return OpenFile(descriptor: fd, path: path)
    }

    /// The file's size in bytes.
    func size() throws(CheckpointError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .system("stat", errno: errno, path: path) }
        return Int(info.st_size)
    }

    /// Writes all of `bytes` at the current position.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        try StorageFaults.check(.write, "write", path: path)
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = write(descriptor, base, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw .system("write", errno: errno, path: path)
            }
            remaining -= written
            base += written
        }
    }

    /// Reads exactly `buffer.count` bytes at `offset`; a short file is ``CheckpointError/Code/truncated``.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CheckpointError) {
        try StorageFaults.check(.read, "read", path: path)
        guard var base = buffer.baseAddress else { return }
        var remaining = buffer.count
        var position = offset
        while remaining > 0 {
            let count = pread(descriptor, base, remaining, off_t(position))
            if count < 0 {
                if errno == EINTR { continue }
                throw .system("read", errno: errno, path: path)
            }
            if count == 0 {
                throw CheckpointError(
                    .truncated,
                    "file ends at byte \(position) but \(remaining) more bytes were expected",
                    path: path
                )
            }
            remaining -= count
            position += count
            base += count
        }
    }

    /// Forces the file's data and metadata to stable storage.
    func sync() throws(CheckpointError) {
        try StorageFaults.check(.sync, "fsync", path: path)
        guard retryingEINTR({ fsync(descriptor) }) == 0 else { throw .system("fsync", errno: errno, path: path) }
    }

    /// Closes the descriptor. Errors from `close` after a successful `fsync` cannot lose data; they are ignored.
    func close() {
        if isOpen { _ = Glibc.close(descriptor) }
        isOpen = false
    }

    deinit { close() }
}

/// Directory-level system calls.
@usableFromInline
enum Syscalls {
    /// Creates a directory with the given permission bits; an existing directory is fine when `allowExisting`.
    static func makeDirectory(_ path: String, permissions: UInt16, allowExisting: Bool = false) throws(CheckpointError)
    {
        try StorageFaults.check(.makeDirectory, "mkdir", path: path)
        if mkdir(path, mode_t(permissions)) == 0 { return }
        let number = errno
        if number == EEXIST && allowExisting && isDirectory(path) { return }
        if number == EEXIST && !isDirectory(path) {
            throw CheckpointError(
                .invalidConfiguration,
                "a file is in the way: '\(path)' exists but is not a directory; move or remove it, or choose another directory",
                path: path,
                underlying: SystemError(errno: number, operation: "mkdir")
            )
        }
        let parent = parentDirectory(of: path)
        if number == ENOENT && parent != path && isDirectory(parent) {
            // The parent is there, yet the file system says no such file: a virtual file system
            // such as /proc or /sys, which cannot hold the directories a checkpoint needs.
            throw CheckpointError(
                .invalidConfiguration,
                "cannot create a directory in '\(parent)': it exists, but its file system does not allow new directories (a virtual file system such as /proc?); choose a directory on a disk or shared file system",
                path: path,
                underlying: SystemError(errno: number, operation: "mkdir")
            )
        }
        throw .system("mkdir", errno: number, path: path)
    }

    /// Creates a directory and its missing parents.
    static func makeDirectories(_ path: String, permissions: UInt16) throws(CheckpointError) {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path && !parent.isEmpty && !isDirectory(parent) {
            try makeDirectories(parent, permissions: permissions)
        }
        try makeDirectory(path, permissions: permissions, allowExisting: true)
    }

    /// Whether `path` names a directory (following symbolic links).
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether anything exists at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The size in bytes of the file at `path` (following symbolic links).
    /// - Throws: The `stat` failure as a ``CheckpointError`` (``CheckpointError/Code/notFound`` when
    ///   nothing is there).
    static func fileSize(_ path: String) throws(CheckpointError) -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .system("stat", errno: errno, path: path) }
        return Int(info.st_size)
    }

    /// Atomically renames `source` to `destination` (which must not be a non-empty directory).
    static func rename(_ source: String, to destination: String) throws(CheckpointError) {
        try StorageFaults.check(.rename, "rename to \(destination)", path: source)
        guard Glibc.rename(source, destination) == 0 else {
            throw .system("rename to \(destination)", errno: errno, path: source)
        }
    }

    /// Atomically swaps two existing paths with `renameat2(RENAME_EXCHANGE)`.
    /// - Returns: `false` when the file system does not support the exchange.
    static func exchange(_ first: String, _ second: String) throws(CheckpointError) -> Bool {
        try StorageFaults.check(.rename, "rename (exchange) with \(second)", path: first)
        #if os(Linux)
        guard let renameat2 = renameat2Function else { return false }
        let renameExchange: UInt32 = 1 << 1
        if renameat2(AT_FDCWD, first, AT_FDCWD, second, renameExchange) == 0 { return true }
        let number = errno
        if number == EINVAL || number == ENOSYS || number == ENOTSUP { return false }
        throw .system("rename (exchange) with \(second)", errno: number, path: first)
        #else
        return false
        #endif
    }

    #if os(Linux)
    private typealias Renameat2 =
        @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32
    /// glibc declares `renameat2` only under `_GNU_SOURCE`, which Swift's Glibc module does not set;
    /// look the symbol up instead (glibc 2.28 and later have it).
    private static let renameat2Function: Renameat2? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: Renameat2.self)
    }()
    #endif

    /// `fsync`s a directory so that renames and creations inside it are durable.
    static func syncDirectory(_ path: String) throws(CheckpointError) {
        try StorageFaults.check(.syncDirectory, "fsync directory", path: path)
        let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw .system("open directory", errno: errno, path: path) }
        defer { _ = Glibc.close(fd) }
        guard retryingEINTR({ fsync(fd) }) == 0 else {
            let number = errno
            // Some file systems refuse fsync on directories; the rename is then as durable as they make it.
            if number == EINVAL || number == EBADF { return }
            throw .system("fsync directory", errno: number, path: path)
        }
    }

    /// Names in a directory, without `.` and `..`.
    static func listDirectory(_ path: String) throws(CheckpointError) -> [String] {
        guard let dir = opendir(path) else { throw .system("open directory", errno: errno, path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a file or a directory tree. A missing path is not an error.
    static func removeTree(_ path: String) throws(CheckpointError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw .system("stat", errno: errno, path: path)
        }
        try StorageFaults.check(.remove, "remove", path: path)
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try listDirectory(path) {
                try removeTree(path + "/" + name)
            }
            guard rmdir(path) == 0 || errno == ENOENT else { throw .system("rmdir", errno: errno, path: path) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw .system("unlink", errno: errno, path: path) }
        }
    }

    /// Checks that `path` is a directory this process can read and write.
    static func checkWritableDirectory(_ path: String) throws(CheckpointError) {
        guard isDirectory(path) else {
            if exists(path) {
                throw CheckpointError(
                    .invalidConfiguration,
                    "the checkpoint directory is a file, not a directory; move or remove it, or choose another directory",
                    path: path
                )
            }
            throw CheckpointError(
                .notFound,
                "checkpoint directory does not exist; create it or set configuration.createDirectory",
                path: path
            )
        }
        guard access(path, R_OK | W_OK | X_OK) == 0 else { throw .system("access", errno: errno, path: path) }
    }

    /// Takes an exclusive advisory lock on `path` (created if missing) without waiting.
    /// - Returns: The descriptor holding the lock; closing it releases the lock.
    /// - Throws: ``CheckpointError/Code/invalidConfiguration`` when another process holds it.
    static func lockExclusively(_ path: String, permissions: UInt16) throws(CheckpointError) -> Int32 {
        let fd = retryingEINTR { open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode_t(permissions)) }
        guard fd >= 0 else { throw .system("open lock file", errno: errno, path: path) }
        // Another process may hold the lock only for an instant: a child forked by this process
        // keeps a copy of the descriptor until it executes its program. Retry briefly.
        var attempts = 0
        while retryingEINTR({ flock(fd, LOCK_EX | LOCK_NB) }) != 0 {
            let number = errno
            if number == EWOULDBLOCK && attempts < 100 {
                attempts += 1
                usleep(10_000)
                continue
            }
            _ = Glibc.close(fd)
            if number == EWOULDBLOCK {
                throw CheckpointError(
                    .invalidConfiguration,
                    "another checkpointer is using this directory; give each job its own checkpoint directory or stop the other one",
                    path: path
                )
            }
            throw .system("flock", errno: number, path: path)
        }
        return fd
    }

    /// Closes a descriptor (releasing any lock it holds).
    static func closeDescriptor(_ fd: Int32) { _ = Glibc.close(fd) }

    /// The number of processors online (at least 1): the default number of threads.
    @usableFromInline static var onlineProcessorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The machine's physical memory in bytes (`Int.max` when the system does not say): no single
    /// allocation a reader makes from a file's claims can succeed beyond it.
    static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }

    /// Ends this process at once with `SIGKILL`, as a crash would (the fault-injection seam).
    static func killThisProcess() -> Never {
        _ = kill(getpid(), SIGKILL)
        _exit(137)
    }

    /// The process id, used to name temporary directories.
    static var processID: Int32 { getpid() }

    /// The host name, recorded in manifests.
    static var hostName: String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let status = buffer.withUnsafeMutableBufferPointer { pointer in
            pointer.withMemoryRebound(to: CChar.self) { gethostname($0.baseAddress!, 255) }
        }
        guard status == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The directory part of a path (`"."` for a bare name).
    static func parentDirectory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }
}

@inline(__always)
private func retryingEINTR(_ call: () -> Int32) -> Int32 {
    while true {
        let result = call()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}
