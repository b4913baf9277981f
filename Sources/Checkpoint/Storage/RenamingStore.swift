/// A store on a POSIX file system that commits by renaming: shards and manifest are written into
/// a temporary directory (`.ckpt-STEP.PID.RANDOM.tmp`), synced, and renamed into place
/// (`ckpt-STEP`); the parent directory is synced last.
///
/// Crash safety: until the rename the checkpoint is a temporary directory that restarts ignore
/// and remove. A checkpoint of a step that is already committed replaces it atomically
/// (`renameat2(RENAME_EXCHANGE)`), and the previous version is deleted only once the new one is
/// durable.
struct RenamingStore: FileSystemStore {
    let directory: CheckpointDirectory
    let permissions: StorePermissions

    init(directory: CheckpointDirectory, permissions: StorePermissions) {
        self.directory = directory
        self.permissions = permissions
    }

    func removeUnfinished() throws(CheckpointError) -> [String] {
        var removed: [String] = []
        for name in try Syscalls.listDirectory(path) where CheckpointLayout.isTemporary(name) {
            try Syscalls.removeTree(path + "/" + name)
            removed.append(name)
        }
        return removed
    }

    func committedSteps() throws(CheckpointError) -> [Step] { try directory.committedSteps() }

    /// A committed checkpoint of `step` stays until the new one replaces it atomically, restorable or not.
    func begin(step: Step, replacingUnrestorable: Bool) throws(CheckpointError) -> StagingArea {
        StagingArea(step: step, location: try makeTemporary(step: step))
    }

    func commit(
        _ area: StagingArea,
        manifest: Manifest,
        reached: (StoreCommitPoint) throws(CheckpointError) -> Void
    ) throws(CheckpointError) {
        let temporary = area.location
        let checksum = try writeManifest(manifest, in: area, permissions: permissions.file)
        try reached(.manifestWritten)
        try CheckpointDirectory.writeFileSynced(
            temporary + "/" + Manifest.checksumFileName,
            checksum,
            permissions: permissions.file
        )
        try reached(.checksumWritten)
        try Syscalls.syncDirectory(temporary)
        try reached(.synced)
        let destination = directory.path(for: manifest.step)
        guard Syscalls.exists(destination) else {
            try Syscalls.rename(temporary, to: destination)
            try reached(.published)
            do { try Syscalls.syncDirectory(path) } catch {
                // The rename may not survive a power loss: withdraw the checkpoint, so that a failed
                // fsync never leaves a commit behind (a crash before the withdrawal is harmless: the
                // checkpoint is complete and verified).
                try? withdraw(step: manifest.step)
                throw error
            }
            try reached(.parentSynced)
            return
        }
        guard try Syscalls.exchange(temporary, destination) else {
            // Without an atomic exchange, replacing would leave a window with neither version
            // committed. Keep the committed one: it captured the same step.
            try Syscalls.removeTree(temporary)
            throw CheckpointError(
                .ioFailure,
                "checkpoint \(manifest.step) already exists and this file system cannot replace a directory atomically (no RENAME_EXCHANGE); the existing one was kept",
                path: destination
            )
        }
        try reached(.published)
        do { try Syscalls.syncDirectory(path) } catch {
            // Not durable: put the previous version back (`temporary` holds it now), durably if
            // the file system lets us; the previous version was never deleted.
            if (try? Syscalls.exchange(temporary, destination)) == true { try? Syscalls.syncDirectory(path) }
            throw error
        }
        try reached(.parentSynced)
        // The new version is durable: only now does the previous one go. A crash before this
        // leaves it as a temporary directory, which the next start removes.
        try? Syscalls.removeTree(temporary)
    }

    func abandon(_ area: StagingArea) {
        try? Syscalls.removeTree(area.location)
    }

    /// Renamed out of the committed namespace (atomic), synced, then removed.
    func delete(step: Step) throws(CheckpointError) {
        let retired = try makeTemporary(step: step)
        // Whatever fails, the temporary directory does not outlive this call (if removing it
        // fails too, the next start removes it).
        defer { try? Syscalls.removeTree(retired) }
        try Syscalls.rename(directory.path(for: step), to: retired + "/old")
        try Syscalls.syncDirectory(path)
    }

    /// Moves a committed checkpoint out of the committed namespace and removes it, without
    /// syncing (used when syncing is what failed).
    private func withdraw(step: Step) throws(CheckpointError) {
        let retired = try makeTemporary(step: step)
        defer { try? Syscalls.removeTree(retired) }
        try Syscalls.rename(directory.path(for: step), to: retired + "/old")
    }

    /// Creates a fresh temporary directory for a checkpoint of `step`.
    private func makeTemporary(step: Step) throws(CheckpointError) -> String {
        let name =
            CheckpointLayout.temporaryPrefix + zeroPadded(step.rawValue, width: 12) + "."
            + String(Syscalls.processID) + "." + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            + CheckpointLayout.temporarySuffix
        let temporary = path + "/" + name
        try Syscalls.makeDirectory(temporary, permissions: permissions.directory)
        return temporary
    }
}
