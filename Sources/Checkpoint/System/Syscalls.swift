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

    /// Creates a new file, failing if anything (a link included) is already there, with the given
    /// permission bits; `readable` opens it for reading too.
    static func createExclusive(
        _ path: String,
        permissions: UInt16,
        readable: Bool = false
    ) throws(CheckpointError) -> OpenFile {
        try StorageFaults.check(.open, "create", path: path)
        let access = readable ? O_RDWR : O_WRONLY
        let fd = retryingEINTR { open(path, access | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(permissions)) }
        guard fd >= 0 else { throw .system("create", errno: errno, path: path) }
        return OpenFile(descriptor: fd, path: path)
    }

    /// Creates an anonymous file (`memfd_create`): it has no name in any directory, so no other
    /// process can open, replace or read it; it lives in memory until its last descriptor closes.
    /// - Parameter name: A label for `/proc/PID/fd` listings.
    /// - Throws: ``CheckpointError/Code/ioFailure`` when the system has no anonymous files.
    static func createAnonymous(_ name: String) throws(CheckpointError) -> OpenFile {
        #if os(Linux)
        guard let memfdCreate = memfdCreateFunction else {
            throw CheckpointError(.ioFailure, "this system cannot create anonymous files (memfd_create)", path: name)
        }
        let allowSealing: UInt32 = 0
        let closeOnExec: UInt32 = 1
        let fd = retryingEINTR { memfdCreate(name, closeOnExec | allowSealing) }
        guard fd >= 0 else { throw .system("memfd_create", errno: errno, path: name) }
        return OpenFile(descriptor: fd, path: name)
        #else
        throw CheckpointError(.ioFailure, "anonymous files need Linux", path: name)
        #endif
    }

    #if os(Linux)
    private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>?, UInt32) -> Int32
    /// glibc declares `memfd_create` only under `_GNU_SOURCE`, which Swift's Glibc module does not
    /// set; look the symbol up instead (glibc 2.27 and later have it).
    private static let memfdCreateFunction: MemfdCreate? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memfd_create") else { return nil }
        return unsafeBitCast(symbol, to: MemfdCreate.self)
    }()
    #endif

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

    /// Asks the kernel to start writing `count` bytes from `offset` to storage now, without waiting
    /// and without any durability promise (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`), so the
    /// disk works while the writer computes the next bytes and the final ``sync()`` has less left
    /// to wait for. Advisory: a failure (a file system that does not support it) is ignored.
    func startWriteback(from offset: Int, count: Int) {
        guard count > 0 else { return }
        _ = retryingEINTR { linuxSyncFileRange(descriptor, Int64(offset), Int64(count), syncFileRangeWrite) }
    }

    /// Closes the descriptor. Errors from `close` after a successful `fsync` cannot lose data; they are ignored.
    func close() {
        if isOpen { _ = Glibc.close(descriptor) }
        isOpen = false
    }

    deinit { close() }
}

/// glibc's `sync_file_range(2)`, which Swift's Glibc module does not import (it is declared only
/// under `_GNU_SOURCE`).
@_silgen_name("sync_file_range")
private func linuxSyncFileRange(_ descriptor: Int32, _ offset: Int64, _ count: Int64, _ flags: UInt32) -> Int32

/// `SYNC_FILE_RANGE_WRITE` from `<fcntl.h>`: start writeback of the range's dirty pages.
private let syncFileRangeWrite: UInt32 = 2

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

    /// Checks that `path` is a directory this process can read and write, and that no other user
    /// can write (see ``checkPrivateDirectory(_:groupMayWrite:)``).
    static func checkWritableDirectory(_ path: String, groupMayWrite: Bool) throws(CheckpointError) {
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
        try checkPrivateDirectory(path, groupMayWrite: groupMayWrite)
    }

    /// Checks that no other user can plant or replace files in the directory at `path` (following
    /// links), the way OpenSSH's StrictModes checks a home directory: its owner is this process's
    /// effective user or root, and neither others (sticky bit or
    /// not: the sticky bit stops removal, not creation) nor, unless `groupMayWrite`, its group can
    /// write it. A group may write it only when this process belongs to that group.
    /// - Throws: ``CheckpointError/Code/invalidConfiguration`` naming the fix; the `stat` failure.
    static func checkPrivateDirectory(_ path: String, groupMayWrite: Bool) throws(CheckpointError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .system("stat", errno: errno, path: path) }
        let mode = UInt32(info.st_mode) & 0o7777
        let octal = "0" + String(mode, radix: 8)
        let user = geteuid()
        let othersMayWrite = mode & 0o002 != 0
        let groupWrites = mode & 0o020 != 0
        // Root owns the system's directories; the mode checks below keep them to root alone (or,
        // shared on purpose, to their group).
        guard info.st_uid == user || info.st_uid == 0 else {
            throw CheckpointError(
                .invalidConfiguration,
                "the directory belongs to another user (uid \(info.st_uid)), who could plant or replace checkpoints in it; use a directory of your own (mkdir -m 700 DIR)",
                path: path
            )
        }
        guard !othersMayWrite else {
            throw CheckpointError(
                .invalidConfiguration,
                "the directory is writable by every user (mode \(octal)), who could plant checkpoints in it (the sticky bit does not stop that); run 'chmod go-w \(path)', or create a private directory (mkdir -m 700 DIR)",
                path: path
            )
        }
        guard !groupWrites || groupMayWrite else {
            throw CheckpointError(
                .invalidConfiguration,
                "the directory is writable by its group (mode \(octal)), whose members could plant checkpoints in it; run 'chmod g-w \(path)', or share it on purpose with configuration.directorySharing = .group",
                path: path
            )
        }
        guard !groupWrites || isMember(ofGroup: info.st_gid) else {
            throw CheckpointError(
                .invalidConfiguration,
                "the directory is writable by a group this user is not a member of (gid \(info.st_gid)); run 'chmod g-w \(path)', or give the directory a group of yours (chgrp)",
                path: path
            )
        }
    }

    /// Whether this process's effective or supplementary groups include `group`.
    private static func isMember(ofGroup group: gid_t) -> Bool {
        if getegid() == group { return true }
        let count = getgroups(0, nil)
        guard count > 0 else { return false }
        var groups = [gid_t](repeating: 0, count: Int(count))
        let filled = getgroups(count, &groups)
        return filled > 0 && groups.prefix(Int(filled)).contains(group)
    }

    /// Takes an exclusive advisory lock on `path` (created if missing) without waiting.
    /// - Returns: The descriptor holding the lock; closing it releases the lock.
    /// - Throws: ``CheckpointError/Code/invalidConfiguration`` when another process holds it.
    static func lockExclusively(_ path: String, permissions: UInt16) throws(CheckpointError) -> Int32 {
        // Never through a symbolic link: whoever planted one would have this process create or lock
        // a file of their choosing.
        let fd = retryingEINTR { open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode_t(permissions)) }
        guard fd >= 0 else {
            let number = errno
            if number == ELOOP { throw notARegularFile(path, "a symbolic link") }
            throw .system("open lock file", errno: number, path: path)
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            throw notARegularFile(path, "not a regular file")
        }
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

    private static func notARegularFile(_ path: String, _ what: String) -> CheckpointError {
        CheckpointError(
            .invalidConfiguration,
            "the lock file is \(what); remove it (someone who can write the checkpoint directory may have planted it) and keep the directory private",
            path: path
        )
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
func retryingEINTR(_ call: () -> Int32) -> Int32 {
    while true {
        let result = call()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}
