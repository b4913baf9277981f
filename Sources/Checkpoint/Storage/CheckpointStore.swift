/// A checkpoint being written into a store and not yet committed.
///
/// The pipeline passes it around (rank 0 shares the shared level's with every rank) but never
/// looks inside: what `location` means is the store's business.
struct StagingArea: Codable, Sendable, Hashable {
    /// The step being checkpointed.
    var step: Step
    /// Where the store keeps the staged files (a directory, for the POSIX stores).
    var location: String
}

/// The points of one store's commit, in order. A store reaches those that apply to how it
/// commits: a renaming store all of them; a marker store has no rename and no separate checksum
/// step (its checksum file is the marker), so it reaches `manifestWritten`, `synced`, `published`
/// and `parentSynced`.
@_spi(Testing) public enum StoreCommitPoint: String, Hashable, Sendable, CaseIterable {
    /// The manifest is written into the staging area.
    case manifestWritten = "manifest-written"
    /// The manifest's checksum file is written (renaming store).
    case checksumWritten = "checksum-written"
    /// The staging area's files and directory are synced.
    case synced
    /// The checkpoint became visible: renamed into place, or its marker written.
    case published
    /// The parent directory is synced: the commit is durable.
    case parentSynced = "parent-synced"
}

/// A place checkpoints live: the shared directory, or a rank's node-local directory.
///
/// The commit pipeline writes through this protocol only: it begins a checkpoint, puts files into
/// it (streamed), commits it with its manifest, and deletes old ones. How a commit becomes atomic
/// is the store's business: ``RenamingStore`` renames a finished temporary directory into place;
/// ``MarkerStore`` writes in place and writes a commit marker last, as an object store must
/// (Documentation/Architecture.md, "Adding a store"). Every store lays committed checkpoints out
/// the same way, so reading goes through ``directory``.
protocol CheckpointStore: Sendable {
    /// The committed checkpoints, for listing and reading.
    var directory: CheckpointDirectory { get }

    /// Removes what crashed or interrupted runs left behind; returns the names removed.
    func removeUnfinished() throws(CheckpointError) -> [String]

    /// The steps of the committed checkpoints, oldest first (whether they verify is checked when
    /// they are read): what retention counts and restarts try.
    /// - Throws: When the store cannot be listed.
    func committedSteps() throws(CheckpointError) -> [Step]

    /// Begins a checkpoint of `step`.
    /// - Parameter replacingUnrestorable: The restart found the committed checkpoint of `step` (if
    ///   any) unrestorable, so a store that cannot replace it atomically may delete it first.
    /// - Throws: When the store cannot hold it (disk full, permissions, a marker store that already
    ///   holds this step committed and restorable).
    func begin(step: Step, replacingUnrestorable: Bool) throws(CheckpointError) -> StagingArea

    /// Creates a file of a staged checkpoint for streaming into; the caller syncs and closes it.
    func create(_ name: String, in area: StagingArea) throws(CheckpointError) -> any ByteSink

    /// Opens a file of a staged checkpoint for reading (a partner copy or a flush streams it on).
    func open(_ name: String, in area: StagingArea) throws(CheckpointError) -> any ByteSource

    /// Commits a staged checkpoint whose files are all written and synced: writes the manifest
    /// and makes the checkpoint visible atomically. Never removes a committed checkpoint of the
    /// same step before the new one is durable.
    /// - Parameter reached: Called at each point of the commit (the crash-test seam).
    func commit(
        _ area: StagingArea,
        manifest: Manifest,
        reached: (StoreCommitPoint) throws(CheckpointError) -> Void
    ) throws(CheckpointError)

    /// Removes a staged checkpoint that will not be committed. Nothing committed is touched.
    func abandon(_ area: StagingArea)

    /// Deletes a committed checkpoint: first out of the committed namespace (atomic), then its files.
    func delete(step: Step) throws(CheckpointError)
}

/// Permission bits a store creates files and directories with.
struct StorePermissions: Sendable, Hashable {
    var file: UInt16
    var directory: UInt16
}

extension CheckpointStore {
    /// Begins a checkpoint of `step`, never deleting a committed one first.
    func begin(step: Step) throws(CheckpointError) -> StagingArea {
        try begin(step: step, replacingUnrestorable: false)
    }

    /// Opens a file of a committed checkpoint for reading.
    func openCommitted(_ name: String, step: Step) throws(CheckpointError) -> any ByteSource {
        try OpenFile.openForReading(directory.path(for: step) + "/" + name)
    }

    /// Whether the committed checkpoint of `step` holds a file of `name` with `size` bytes.
    func holdsCommitted(_ name: String, step: Step, size: Int) -> Bool {
        guard let file = try? OpenFile.openForReading(directory.path(for: step) + "/" + name) else { return false }
        return (try? file.size()) == size
    }

    /// Writes the manifest, sealed when the store has a key, and returns its checksum line
    /// (`sha256sum -c` format) for the caller to write as the commit requires.
    ///
    /// The manifest records the key it is sealed with (or none): a copy committed again, a partner's
    /// or a flush, is sealed with this store's signing key.
    func writeManifest(
        _ manifest: Manifest,
        in area: StagingArea,
        permissions: UInt16
    ) throws(CheckpointError)
        -> [UInt8]
    {
        var manifest = manifest
        manifest.authentication = directory.authentication?.record
        let bytes = try manifest.encoded()
        try CheckpointDirectory.writeFileSynced(
            area.location + "/" + Manifest.fileName,
            bytes,
            permissions: permissions
        )
        if let authentication = directory.authentication {
            try CheckpointDirectory.writeFileSynced(
                area.location + "/" + Authentication.fileName,
                authentication.seal(bytes),
                permissions: permissions
            )
        }
        return Array((hexString(sha256(bytes)) + "  " + Manifest.fileName + "\n").utf8)
    }
}

/// A store whose staging areas are directories of a POSIX file system (both in-repo stores).
protocol FileSystemStore: CheckpointStore {
    var permissions: StorePermissions { get }
}

extension FileSystemStore {
    /// The store's directory.
    var path: String { directory.path }

    func create(_ name: String, in area: StagingArea) throws(CheckpointError) -> any ByteSink {
        try OpenFile.createExclusive(area.location + "/" + name, permissions: permissions.file)
    }

    func open(_ name: String, in area: StagingArea) throws(CheckpointError) -> any ByteSource {
        try OpenFile.openForReading(area.location + "/" + name)
    }
}
