import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The options of commands that write a file: `-o FILE` and `--force`.
struct OutputFileOptions: ParsableArguments {
    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: ArgumentHelp("The file to write.", valueName: "file")
    )
    var path: String

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    func validate() throws {
        guard !path.isEmpty else { throw ValidationError("-o needs a file name") }
    }

    /// Fails early, before any work, when the file exists and may not be replaced.
    func checkWritable() throws(ToolError) {
        try OutputFile.checkDestination(path, force: force)
    }
}

/// Writes a file so that it appears whole or not at all: into a temporary file beside it, then
/// renamed (or, when existing files must be kept, hard-linked) into place.
enum OutputFile {
    /// Throws when `path` names a directory, or a file that exists and `force` is false.
    static func checkDestination(_ path: String, force: Bool) throws(ToolError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR {
            throw ToolError.badInput("the output is a directory; name a file", path: path)
        }
        if !force {
            throw ToolError.badInput("the output file exists; pass --force to replace it", path: path)
        }
    }

    /// Writes `parts`, one after the other, to `path`, advancing `progress` by the bytes written.
    /// - Throws: ``ToolError`` when the file exists (without `force`), its folder is missing, or writing fails.
    static func write(
        _ parts: [[UInt8]],
        to path: String,
        force: Bool,
        progress: ProgressBar? = nil
    ) throws(ToolError) {
        try checkDestination(path, force: force)
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary =
            (folder.isEmpty ? "" : folder + "/") + "." + name + ".ckpt-\(getpid())-"
            + String(UInt32.random(in: 0...UInt32.max), radix: 16) + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw failure("cannot create the output file", errno: errno, path: path) }
        var closed = false
        defer {
            if !closed { _ = close(descriptor) }
            unlink(temporary)
        }
        let piece = 4 << 20
        for part in parts {
            let failed: Int32? = part.withUnsafeBytes { buffer -> Int32? in
                var offset = 0
                while offset < buffer.count {
                    let result = writeSome(descriptor, buffer.baseAddress! + offset, min(piece, buffer.count - offset))
                    if result < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    offset += result
                    progress?.advance(by: result)
                }
                return nil
            }
            if let failed { throw failure("cannot write the output file", errno: failed, path: path) }
        }
        closed = true
        guard close(descriptor) == 0 else { throw failure("cannot write the output file", errno: errno, path: path) }
        if force {
            guard rename(temporary, path) == 0 else {
                throw failure("cannot move the output file into place", errno: errno, path: path)
            }
            return
        }
        // link() fails when the destination exists, so a file that appeared meanwhile is never replaced.
        if link(temporary, path) != 0 {
            let number = errno
            if number == EEXIST {
                throw ToolError.badInput("the output file exists; pass --force to replace it", path: path)
            }
            // File systems without hard links: the check above is the best we can do.
            guard access(path, F_OK) != 0, rename(temporary, path) == 0 else {
                throw failure("cannot move the output file into place", errno: number, path: path)
            }
        }
    }

    private static func failure(_ what: String, errno number: Int32, path: String) -> ToolError {
        let reason = String(cString: strerror(number))
        switch number {
        case ENOENT, ENOTDIR:
            return .badInput("\(what): its folder does not exist", path: path)
        case EEXIST:
            return .badInput("the output file exists; pass --force to replace it", path: path)
        case EISDIR:
            return .badInput("the output is a directory; name a file", path: path)
        default:
            return .failure("\(what): \(reason)", path: path)
        }
    }
}

/// `write(2)`, outside ``OutputFile`` whose own `write` would hide it.
private func writeSome(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
