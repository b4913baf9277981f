@_spi(Tools) import Checkpoint
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Zarr v3 store (a directory tree) being written: into a temporary directory beside the
/// destination, which ``commit()`` renames into place only when everything was written, so a
/// failure never leaves a partial store.
///
/// Node paths are `/`-separated names below the root (`temperature`, `rank-0/counts`). Every group,
/// the root and the intermediate ones, gets its own `zarr.json` (Zarr v3 has no implicit groups).
final class ZarrStore {
    /// Where the store appears on ``commit()``.
    let destination: String
    /// The directory being written.
    let temporary: String
    /// Where an existing store is moved while the new one takes its place (with `force`).
    private let replaced: String
    /// Whether an existing store at `destination` may be replaced.
    let force: Bool
    private var committed = false
    private var groups: Set<String> = []
    private var arrays: Set<String> = []

    /// Creates the temporary directory beside `destination`.
    /// - Throws: Bad input when `destination` exists (without `force`), is a directory that is not a Zarr
    ///   store, or its folder does not exist; a failure when the directory cannot be created.
    init(destination: String, force: Bool) throws(ToolError) {
        try Self.checkDestination(destination, force: force)
        self.destination = destination
        self.force = force
        let url = URL(fileURLWithPath: destination)
        let base =
            url.deletingLastPathComponent().path + "/." + url.lastPathComponent
            + ".ckpt-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        temporary = base + ".tmp"
        replaced = base + ".old"
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw Self.problem("cannot create the output directory", error, path: destination)
        }
    }

    deinit {
        if !committed { try? FileManager.default.removeItem(atPath: temporary) }
    }

    /// Throws unless a store may be written at `path`: nothing there, or (with `force`) a file or a
    /// directory holding a `zarr.json` (so that `--force` never deletes an unrelated directory).
    static func checkDestination(_ path: String, force: Bool) throws(ToolError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard force else { throw ToolError.badInput("the output exists; pass --force to replace it", path: path) }
        if isDirectory.boolValue && !FileManager.default.fileExists(atPath: path + "/zarr.json") {
            throw ToolError.badInput(
                "the output is a directory that is not a Zarr store (it has no zarr.json); "
                    + "name a new path, or remove the directory yourself",
                path: path
            )
        }
    }

    /// Writes a group's `zarr.json` (the root's for `path` ""), and those of the groups above it.
    func group(_ path: String, attributes: [String: JSONValue] = [:]) throws(ToolError) {
        try makeParents(of: path)
        try createNode(path, isGroup: true)
        try write(["zarr_format": 3, "node_type": "group", "attributes": .object(attributes)], at: path)
    }

    /// Writes an array: its `zarr.json` and every chunk of `data` (its row-major bytes), zstd-compressed.
    /// - Parameter progress: Advanced by the uncompressed bytes of each chunk written.
    func array(_ path: String, _ array: ZarrArray, data: [UInt8], progress: ProgressBar) throws(ToolError) {
        guard data.count == array.byteCount else {
            throw ToolError.failure(
                "'\(path)' has \(data.count) bytes but its shape \(array.shape) of \(array.dataType) needs \(array.byteCount)"
            )
        }
        try makeParents(of: path)
        try createNode(path, isGroup: false)
        try write(array.metadata, at: path)
        let folder = temporary + "/" + path
        do {
            try array.forEachChunk(of: data) { key, chunk in
                let frame = try ZstdFrame.compress(chunk, level: ZarrArray.compressionLevel)
                let file = folder + "/" + key
                try FileManager.default.createDirectory(
                    atPath: (file as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true
                )
                try Data(frame).write(to: URL(fileURLWithPath: file))
                progress.advance(by: chunk.count)
            }
        } catch let error as ToolError {
            throw error
        } catch {
            throw Self.problem("cannot write the chunks of '\(path)'", error, path: destination)
        }
    }

    /// Moves the finished store into place, replacing an existing one with `force`.
    func commit() throws(ToolError) {
        try Self.checkDestination(destination, force: force)
        let manager = FileManager.default
        if manager.fileExists(atPath: destination) {
            let old = replaced
            guard rename(destination, old) == 0 else {
                throw ToolError.failure("cannot move the old output aside: \(String(cString: strerror(errno)))")
            }
            guard rename(temporary, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                _ = rename(old, destination)
                throw ToolError.failure("cannot move the store into place: \(reason)", path: destination)
            }
            try? manager.removeItem(atPath: old)
        } else {
            guard rename(temporary, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                throw ToolError.failure("cannot move the store into place: \(reason)", path: destination)
            }
        }
        committed = true
    }

    /// Records a node, refusing a path that is already an array or a group, or that Zarr reserves.
    private func createNode(_ path: String, isGroup: Bool) throws(ToolError) {
        if path.split(separator: "/").contains(where: { $0.hasPrefix("__") }) {
            throw ToolError.badInput("'\(path)' cannot be a Zarr node: names starting with '__' are reserved")
        }
        guard !arrays.contains(path), !(groups.contains(path) && !isGroup) else {
            throw ToolError.badInput(
                "two entries map to the Zarr node '\(path)' (an entry is named like a group or another "
                    + "entry's parent); export cannot represent both"
            )
        }
        if isGroup { groups.insert(path) } else { arrays.insert(path) }
    }

    /// Writes the groups above `path` that do not exist yet.
    private func makeParents(of path: String) throws(ToolError) {
        let components = path.split(separator: "/").dropLast()
        for count in 0...components.count {
            let parent = components.prefix(count).joined(separator: "/")
            guard !groups.contains(parent) else { continue }
            try createNode(parent, isGroup: true)
            try write(["zarr_format": 3, "node_type": "group", "attributes": [:]], at: parent)
        }
    }

    /// Writes `metadata` as the `zarr.json` of the node at `path`.
    private func write(_ metadata: JSONValue, at path: String) throws(ToolError) {
        let folder = path.isEmpty ? temporary : temporary + "/" + path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(try metadata.encoded()).write(to: URL(fileURLWithPath: folder + "/zarr.json"))
        } catch let error as ToolError {
            throw error
        } catch {
            throw Self.problem("cannot write the metadata of '\(path)'", error, path: destination)
        }
    }

    private static func problem(_ what: String, _ error: any Error, path: String) -> ToolError {
        if let error = error as? CheckpointError { return .failure("\(what): \(error.oneLine)", path: path) }
        let reason = (error as NSError).localizedDescription
        if (error as NSError).code == NSFileNoSuchFileError || (error as NSError).code == NSFileWriteNoPermissionError {
            return .badInput("\(what): \(reason)", path: path)
        }
        return .failure("\(what): \(reason)", path: path)
    }
}
