import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs mounted for a trial (needs root), and the space bookkeeping on it.
struct TmpfsMount {
    let path: String

    /// Mounts a tmpfs of `megabytes` at `path` (created if needed).
    /// - Throws: ``HarnessError`` saying why when the mount is refused (say, not root).
    init(at path: String, megabytes: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(megabytes)m,mode=0700") == 0 else {
            let reason = String(cString: strerror(errno))
            throw HarnessError(
                "cannot mount a tmpfs (\(reason)); run as root to test a full disk"
            )
        }
        self.path = path
    }

    /// Bytes an unprivileged writer can still allocate.
    var freeBytes: Int {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Fills the file system with a ballast file until `bytesLeft` (rounded to pages) remain free.
    func fill(leaving bytesLeft: Int, name: String = "ballast") {
        let ballast = path + "/" + name
        guard let handle = FileHandle(forWritingAtPath: ballast) ?? create(ballast) else { return }
        defer { try? handle.close() }
        let block = Data(count: 1 << 20)
        while freeBytes > bytesLeft {
            let chunk = min(block.count, max(4096, freeBytes - bytesLeft))
            do { try handle.write(contentsOf: block.prefix(chunk)) } catch { return }
        }
    }

    /// Removes the ballast file again.
    func freeUp(name: String = "ballast") { try? FileManager.default.removeItem(atPath: path + "/" + name) }

    private func create(_ path: String) -> FileHandle? {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return FileHandle(forWritingAtPath: path)
    }

    /// Unmounts the tmpfs.
    func unmount() { Self.unmountAll(under: path) }

    /// Unmounts every file system mounted at or below `path` (lazily: even if still busy).
    static func unmountAll(under path: String) {
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        let points = table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { return nil }
            // Spaces and the like are octal-escaped in the table; trial paths have none.
            let point = String(fields[1])
            return point == path || point.hasPrefix(prefix) ? point : nil
        }
        for point in points.sorted(by: { $0.count > $1.count }) { umount2(point, Int32(MNT_DETACH)) }
    }
}
