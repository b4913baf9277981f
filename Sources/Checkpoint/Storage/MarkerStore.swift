/// A store that commits by writing a marker last, the way object stores commit (they have no
/// rename): shards and manifest are written in place (`ckpt-STEP/`) and synced, then the
/// manifest's checksum file (`manifest.json.sha256`) is written as the commit marker.
///
/// A checkpoint without its marker is not committed: restarts skip it and the next start removes
/// it. Deleting removes the marker first (the checkpoint stops being committed at once), then the
/// files. A checkpoint of a step that is already committed is refused and the existing one kept:
/// replacing it in place would destroy it before its successor is durable. Only one the restart
/// found unrestorable is deleted first, to be written again.
///
/// On POSIX this store is a test of the pipeline's claim that a store without rename fits without
/// touching the protocol; an object-store implementation follows the same sequence.
struct MarkerStore: FileSystemStore {
    let directory: CheckpointDirectory
    let permissions: StorePermissions

    init(directory: CheckpointDirectory, permissions: StorePermissions) {
        self.directory = directory
        self.permissions = permissions
    }

    private func marker(_ step: Step) -> String { directory.path(for: step) + "/" + Manifest.checksumFileName }

    /// The size of a whole marker: the checksum line `writeManifest` writes (SHA-256 in hex, two
    /// spaces, the manifest's name, a newline).
    private static let markerSize = 64 + 2 + Manifest.fileName.utf8.count + 1

    /// Whether the checkpoint of `step` is committed: its marker is there, whole. A process killed
    /// while writing the marker leaves it empty or short: that checkpoint was never committed.
    private func isMarked(_ step: Step) -> Bool {
        (try? Syscalls.fileSize(marker(step))) == Self.markerSize
    }

    func removeUnfinished() throws(CheckpointError) -> [String] {
        var removed: [String] = []
        for name in try Syscalls.listDirectory(path) {
            let unmarked =
                CheckpointLayout.step(ofCommitted: name).map { !isMarked($0) } ?? false
            guard unmarked || CheckpointLayout.isTemporary(name) else { continue }
            try Syscalls.removeTree(path + "/" + name)
            removed.append(name)
        }
        if !removed.isEmpty { try Syscalls.syncDirectory(path) }
        return removed
    }

    /// Only checkpoints with their marker: one being written in place is not committed yet.
    func committedSteps() throws(CheckpointError) -> [Step] {
        try directory.committedSteps().filter(isMarked)
    }

    func begin(step: Step, replacingUnrestorable: Bool) throws(CheckpointError) -> StagingArea {
        let location = directory.path(for: step)
        if replacingUnrestorable && isMarked(step) {
            // Nothing can restore it (the restart skipped it): it may go before its successor is durable.
            try delete(step: step)
        }
        if Syscalls.exists(location) {
            guard !isMarked(step) else {
                throw CheckpointError(
                    .ioFailure,
                    "checkpoint \(step) is already committed and a marker store cannot replace it atomically (that needs a rename); the existing one was kept — save another step, or use the rename commit method",
                    path: location
                )
            }
            // An unmarked checkpoint of this step is what a crash left: never committed.
            try Syscalls.removeTree(location)
        }
        try Syscalls.makeDirectory(location, permissions: permissions.directory)
        return StagingArea(step: step, location: location)
    }

    func commit(
        _ area: StagingArea,
        manifest: Manifest,
        reached: (StoreCommitPoint) throws(CheckpointError) -> Void
    ) throws(CheckpointError) {
        let checksum = try writeManifest(manifest, in: area, permissions: permissions.file)
        try reached(.manifestWritten)
        // Everything the marker vouches for is durable before the marker exists.
        try Syscalls.syncDirectory(area.location)
        try Syscalls.syncDirectory(path)
        try reached(.synced)
        try CheckpointDirectory.writeFileSynced(marker(area.step), checksum, permissions: permissions.file)
        try reached(.published)
        do {
            try Syscalls.syncDirectory(area.location)
        } catch {
            // The marker may not survive a power loss: withdraw it, so that a failed fsync never
            // leaves a commit behind.
            try? Syscalls.removeTree(marker(area.step), within: path)
            throw error
        }
        try reached(.parentSynced)
    }

    func abandon(_ area: StagingArea) {
        // `begin` refuses a committed step, so a marker here is the one a failed `commit` wrote
        // (its sync failed, and so did withdrawing it): the save failed, so it goes first.
        try? Syscalls.removeTree(marker(area.step), within: path)
        try? Syscalls.removeTree(area.location)
    }

    func delete(step: Step) throws(CheckpointError) {
        let location = directory.path(for: step)
        try Syscalls.removeTree(marker(step), within: path)
        // Unmarked, the checkpoint is garbage: its files go even when the sync fails.
        defer { try? Syscalls.removeTree(location) }
        try Syscalls.syncDirectory(location)
    }
}
