#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Removal walks by descriptor. Whoever can write a checkpoint directory can swap one of its
// entries for a symbolic link at any instant (`renameat2(RENAME_EXCHANGE)`), so a path string that
// named a directory inside the tree when it was checked may name a folder anywhere when it is used.
// Here every step goes through the descriptor of a directory opened with `O_NOFOLLOW`: a name is
// looked up in that directory only, a link found on the way is unlinked itself (never its target),
// and the walk never leaves the file system the tree starts on.

extension Syscalls {
    /// How deep a tree ``removeTree(_:)`` walks. Checkpoint trees are a few levels deep
    /// (`.ckpt-…tmp/old/images/rank-00000/…`); the bound keeps a hostile tree from exhausting the
    /// stack or the descriptors.
    static let maximumRemovalDepth = 32

    /// Removes a file or a directory tree. A missing path is not an error.
    ///
    /// The parent of `path` is opened as given, or, when `root` is given and `path` lies below it,
    /// `root` is opened as given and the components between it and `path` are followed by
    /// descriptor without following links. The last component and everything below it are reached
    /// by descriptor and never through a symbolic link (a link is removed, its target left alone),
    /// so nothing outside the tree is deleted whatever is swapped in while it runs.
    /// - Parameters:
    ///   - path: The file or directory to remove.
    ///   - root: A directory above `path` that may be reached through links (the checkpoint
    ///     directory as configured); `nil`: the parent of `path`.
    /// - Throws: ``CheckpointError/Code/ioFailure`` for a tree deeper than ``maximumRemovalDepth`` or
    ///   one that crosses into another file system; the failing call's error otherwise.
    static func removeTree(_ path: String, within root: String? = nil) throws(CheckpointError) {
        try StorageFaults.check(.remove, "remove", path: path)
        var components = [lastComponent(of: path)]
        var start = parentDirectory(of: path)
        if let root, path.hasPrefix(root + "/") {
            components = path.dropFirst(root.count + 1).split(separator: "/").map(String.init)
            start = root
        }
        guard let name = components.last, !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
        else {
            throw CheckpointError(.invalidConfiguration, "refusing to remove '\(path)': it names no entry", path: path)
        }
        var descriptor = retryingEINTR { open(start, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard descriptor >= 0 else {
            if errno == ENOENT { return }
            throw .system("open directory", errno: errno, path: start)
        }
        defer { _ = Glibc.close(descriptor) }
        for component in components.dropLast() {
            let next = retryingEINTR {
                openat(descriptor, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            }
            guard next >= 0 else {
                // Gone, or not a directory (a link included): nothing of the tree is there to remove.
                if errno == ENOENT || errno == ENOTDIR || errno == ELOOP { return }
                throw .system("open directory", errno: errno, path: path)
            }
            _ = Glibc.close(descriptor)
            descriptor = next
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .system("stat", errno: errno, path: start) }
        try removeEntry(name, in: descriptor, path: path, device: info.st_dev, depth: 0)
    }

    /// Removes `name` from the directory open as `directory`: unlinks it, or empties it by
    /// descriptor and removes it when it is a directory (and not a link to one).
    private static func removeEntry(
        _ name: String,
        in directory: Int32,
        path: String,
        device: dev_t,
        depth: Int
    ) throws(CheckpointError) {
        // The entry can change kind between any two calls (a directory swapped for a link or a
        // file and back): each failure that says so sends the loop round again, a few times.
        for _ in 0..<8 {
            let child = retryingEINTR {
                openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            }
            if child < 0 {
                let number = errno
                switch number {
                case ENOENT:
                    return
                case ELOOP, ENOTDIR:
                    // A link, a file or anything else that is not a directory: unlink the entry itself.
                    if unlinkat(directory, name, 0) == 0 { return }
                    let unlinkError = errno
                    if unlinkError == ENOENT { return }
                    if unlinkError == EISDIR { continue }
                    throw .system("unlink", errno: unlinkError, path: path)
                default:
                    throw .system("open directory", errno: number, path: path)
                }
            }
            try emptyDirectory(child, path: path, device: device, depth: depth)
            if unlinkat(directory, name, AT_REMOVEDIR) == 0 { return }
            let number = errno
            switch number {
            case ENOENT: return
            case ENOTDIR, ENOTEMPTY, EEXIST: continue
            default: throw .system("rmdir", errno: number, path: path)
            }
        }
        throw CheckpointError(
            .ioFailure,
            "could not remove the entry: it kept changing while it was being removed (is another process writing the checkpoint directory?)",
            path: path
        )
    }

    /// Removes everything in the directory open as `descriptor`, and closes the descriptor.
    private static func emptyDirectory(
        _ descriptor: Int32,
        path: String,
        device: dev_t,
        depth: Int
    ) throws(CheckpointError) {
        defer { _ = Glibc.close(descriptor) }
        guard depth < maximumRemovalDepth else {
            throw CheckpointError(
                .ioFailure,
                "the directory tree is more than \(maximumRemovalDepth) levels deep, deeper than any checkpoint writes; it was not removed: check what is in it and remove it by hand",
                path: path
            )
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .system("stat", errno: errno, path: path) }
        guard info.st_dev == device else {
            throw CheckpointError(
                .ioFailure,
                "a file system is mounted inside the checkpoint tree; it was not removed: unmount it and remove the directory by hand",
                path: path
            )
        }
        for name in try listDirectory(descriptor: descriptor, path: path) {
            try removeEntry(name, in: descriptor, path: path + "/" + name, device: device, depth: depth + 1)
        }
    }

    /// Names in the directory open as `descriptor` (which stays open), without `.` and `..`.
    private static func listDirectory(descriptor: Int32, path: String) throws(CheckpointError) -> [String] {
        // `fdopendir` takes the descriptor it is given; it gets a duplicate.
        let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { throw .system("dup", errno: errno, path: path) }
        guard let stream = fdopendir(duplicate) else {
            let number = errno
            _ = Glibc.close(duplicate)
            throw .system("open directory", errno: number, path: path)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The last component of a path (`""` for `/`).
    static func lastComponent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }
}
