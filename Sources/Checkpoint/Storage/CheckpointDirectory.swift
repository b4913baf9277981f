import Foundation

/// A directory of checkpoints on a POSIX file system (local disk, NFS, Lustre, GPFS).
///
/// ```
/// DIR/
///   ckpt-000000001200/          a committed checkpoint (step 1200)
///     manifest.json             written last
///     manifest.json.sha256      its checksum, `sha256sum -c` format
///     rank-00000.snap …         one shard per rank
///   .ckpt-000000001300.<pid>.tmp/   in flight, or left by a crash; removed at start
/// ```
///
/// Read-only uses (listing, inspecting, verifying, opening snapshots) need no lock and never
/// modify the directory; ``Checkpointer`` does the writing.
public struct CheckpointDirectory: Sendable {
    /// The directory's path.
    public let path: String
    /// The keys checkpoints must be sealed with to be read, and the key new ones are sealed with;
    /// `nil` reads checkpoints whether they are sealed or not, and seals nothing.
    public let authentication: Authentication?
    /// The run whose checkpoints are read, and that new ones record; `nil` reads any checkpoint.
    public let lineage: Lineage?

    /// Refers to a directory of checkpoints. Nothing is checked until it is used.
    /// - Parameters:
    ///   - path: The directory.
    ///   - authentication: With keys, every manifest read must be sealed by one of them
    ///     (``Checkpoint/Authentication``).
    ///   - lineage: With a run, every manifest read must belong to it and follow the checkpoint
    ///     before it in this directory (``Checkpoint/Lineage``).
    public init(path: String, authentication: Authentication? = nil, lineage: Lineage? = nil) {
        self.path = path
        self.authentication = authentication
        self.lineage = lineage
    }

    /// The shard file name of a rank, e.g. `rank-00003.snap`.
    public static func shardFileName(rank: Int) -> String { CheckpointLayout.shardFileName(rank: rank) }

    /// The path of the committed checkpoint for `step`.
    public func path(for step: Step) -> String { path + "/" + CheckpointLayout.committedName(step) }

    /// The steps of all committed checkpoint directories, oldest first.
    ///
    /// A directory counts when its name is `ckpt-<digits>`; whether its contents verify is
    /// checked by ``loadManifest(step:)`` and ``openSnapshot(step:rank:threads:)``.
    /// - Throws: `notFound` or `permissionDenied` for the directory itself.
    public func committedSteps() throws(CheckpointError) -> [Step] {
        guard Syscalls.isDirectory(path) else {
            if Syscalls.exists(path) {
                throw CheckpointError(
                    .notFound,
                    "not a directory; pass the directory that holds ckpt-* folders",
                    path: path
                )
            }
            throw CheckpointError(.notFound, "checkpoint directory does not exist", path: path)
        }
        return try Syscalls.listDirectory(path).compactMap(CheckpointLayout.step(ofCommitted:)).sorted()
    }

    /// Reads and checks the manifest of the checkpoint at `step`.
    ///
    /// With ``authentication``, the manifest's seal is checked before it is parsed; with ``lineage``,
    /// it must belong to the run and follow the checkpoint before it, when that one is still here.
    /// - Throws: `manifestInvalid` when it is missing, fails its checksum or is malformed;
    ///   `unsupportedFormatVersion` when it is newer than this build; `authenticationFailed` when a
    ///   key is configured and the checkpoint is not sealed by it; `lineageMismatch` when it is not
    ///   this run's.
    public func loadManifest(step: Step) throws(CheckpointError) -> Manifest {
        let manifest = try loadAuthenticatedManifest(step: step)
        if let lineage { try checkLineage(of: manifest, against: lineage) }
        return manifest
    }

    /// The manifest of `step`, checked against its checksum and seal, without lineage checks.
    func loadAuthenticatedManifest(step: Step) throws(CheckpointError) -> Manifest {
        let directory = path(for: step)
        let manifestPath = directory + "/" + Manifest.fileName
        let bytes: [UInt8]
        let checksum: [UInt8]
        do {
            bytes = try Self.readWholeFile(manifestPath, limit: 256 << 20)
            checksum = try Self.readWholeFile(directory + "/" + Manifest.checksumFileName, limit: 4096)
        } catch  where error.code == .notFound {
            throw CheckpointError(
                .manifestInvalid,
                "checkpoint has no manifest (or no checksum file); it is not committed",
                path: directory
            )
        }
        var manifest = try Manifest.decode(
            bytes,
            checksumLine: checksum,
            authentication: authentication,
            seal: { () throws(CheckpointError) in try Self.readSeal(directory + "/" + Authentication.fileName) },
            path: manifestPath
        )
        manifest.dumps = dumpRecords(step: step)
        guard manifest.step == step else {
            throw CheckpointError(
                .manifestInvalid,
                "manifest says step \(manifest.step) but its directory is for step \(step)",
                path: manifestPath
            )
        }
        return manifest
    }

    /// A manifest's seal file, or `nil` when there is none.
    static func readSeal(_ path: String) throws(CheckpointError) -> [UInt8]? {
        do { return try readWholeFile(path, limit: 4096) } catch {
            if error.code == .notFound { return nil }
            throw error
        }
    }

    /// The dump records stored beside a checkpoint's manifest, by rank; unreadable ones are left out
    /// (a dump record never decides whether the checkpoint itself is good).
    func dumpRecords(step: Step) -> [DumpRecord]? {
        let folder = path(for: step) + "/" + CheckpointLayout.dumpsFolder
        guard let names = try? Syscalls.listDirectory(folder) else { return nil }
        let records = names.filter { $0.hasSuffix(".json") }.sorted().compactMap { name -> DumpRecord? in
            guard let bytes = try? Self.readWholeFile(folder + "/" + name, limit: 1 << 20) else { return nil }
            return try? JSONDecoder().decode(DumpRecord.self, from: Data(bytes))
        }
        return records.isEmpty ? nil : records.sorted { $0.rank < $1.rank }
    }

    /// The images directory of a rank's process dump at `step`, relative to the checkpoint directory.
    public static func imagesFolder(rank: Int) -> String { CheckpointLayout.imagesFolder(rank: rank) }

    /// Writes a rank's dump record beside the manifest of a committed checkpoint, atomically
    /// (a temporary file renamed into place).
    func writeDumpRecord(
        _ record: DumpRecord,
        step: Step,
        permissions: (file: UInt16, directory: UInt16)
    ) throws(CheckpointError) {
        let folder = path(for: step) + "/" + CheckpointLayout.dumpsFolder
        try Syscalls.makeDirectory(folder, permissions: permissions.directory, allowExisting: true)
        let name = "rank-" + zeroPadded(UInt64(record.rank), width: 5) + ".json"
        let temporary = folder + "/." + name + ".tmp"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: [UInt8]
        do { bytes = Array(try encoder.encode(record)) } catch {
            throw CheckpointError(
                .encodingFailed,
                "could not encode a dump record",
                underlying: SendableDescription(error)
            )
        }
        try? Syscalls.removeTree(temporary, within: path)
        try Self.writeFileSynced(temporary, bytes, permissions: permissions.file)
        try Syscalls.rename(temporary, to: folder + "/" + name)
        try Syscalls.syncDirectory(folder)
    }

    /// Opens one rank's shard of the checkpoint at `step` for reading, after checking it against the manifest.
    ///
    /// - Parameters:
    ///   - step: The checkpoint.
    ///   - rank: The rank whose shard to open.
    ///   - threads: Threads used to decode chunks.
    /// - Throws: `manifestInvalid`, `incompleteCheckpoint` (shard missing, or not the one the manifest
    ///   names), `truncated`, `badMagic`, `unsupportedFormatVersion`, `corruptData`.
    public func openSnapshot(
        step: Step,
        rank: Int = 0,
        threads: Int = Syscalls.onlineProcessorCount
    )
        throws(CheckpointError) -> SnapshotReader
    {
        let manifest = try loadManifest(step: step)
        return try openSnapshot(manifest: manifest, rank: rank, threads: threads)
    }

    func openSnapshot(manifest: Manifest, rank: Int, threads: Int) throws(CheckpointError) -> SnapshotReader {
        guard rank >= 0, rank < manifest.shards.count else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "checkpoint \(manifest.step) has \(manifest.rankCount) ranks; there is no rank \(rank)",
                path: path(for: manifest.step)
            )
        }
        let record = manifest.shards[rank]
        let shardPath = path(for: manifest.step) + "/" + record.file
        let parts = manifest.shardFormat.split(separator: ".", omittingEmptySubsequences: false)
        let recorded = parts.compactMap { part in part.allSatisfy({ $0 >= "0" && $0 <= "9" }) ? UInt16(part) : nil }
        guard parts.count == 2, recorded.count == 2 else {
            throw CheckpointError(
                .manifestInvalid,
                "manifest's shardFormat '\(manifest.shardFormat)' is not 'major.minor'",
                path: shardPath
            )
        }
        let shard: ShardReader
        do {
            if record.offset == nil {
                shard = try ShardReader(path: shardPath) { step in
                    self.path(for: Step(rawValue: step)) + "/" + record.file
                }
            } else {
                shard = try ShardReader(source: openShard(record, step: manifest.step)) {
                    (step) throws(CheckpointError) in
                    try self.openBaseShard(rank: rank, step: Step(rawValue: step))
                }
            }
        } catch {
            switch error.code {
            case .notFound:
                throw CheckpointError(.incompleteCheckpoint, "shard of rank \(rank) is missing", path: shardPath)
            case .unsupportedFormatVersion where recorded[0] <= ShardFormat.majorVersion:
                // The checksummed manifest says this build can read the shard, so the header lies.
                throw CheckpointError(
                    .corruptData,
                    "shard header's version disagrees with the manifest (\(manifest.shardFormat)); the header is damaged",
                    path: shardPath
                )
            default:
                throw error
            }
        }
        guard shard.formatVersion.major == recorded[0], shard.formatVersion.minor == recorded[1] else {
            throw CheckpointError(
                .corruptData,
                "shard header says format \(shard.formatVersion.major).\(shard.formatVersion.minor) but the manifest recorded \(manifest.shardFormat); the header is damaged",
                path: shardPath
            )
        }
        guard shard.fileSize == record.fileBytes else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "shard is \(shard.fileSize) bytes but the manifest recorded \(record.fileBytes); it was replaced or cut short",
                path: shardPath
            )
        }
        guard hexString(shard.indexDigest) == record.indexSHA256 else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "shard is not the one this checkpoint's manifest recorded (index checksum differs)",
                path: shardPath
            )
        }
        // What a reader allocates is bounded by the state the manifest declares: the index may not
        // claim more (or other) than the manifest recorded for it.
        guard Manifest.saturatingSum(shard.index.entries.lazy.map(\.rawSize)) == record.rawBytes else {
            throw CheckpointError(
                .corruptData,
                "shard's entries hold \(Manifest.saturatingSum(shard.index.entries.lazy.map(\.rawSize))) bytes but the manifest recorded \(record.rawBytes); the checkpoint is inconsistent",
                path: shardPath
            )
        }
        // Retention keeps what the manifest lists; a shard using anything else could lose it.
        guard shard.baseSteps == (record.references ?? []).map(\.rawValue) else {
            throw CheckpointError(
                .corruptData,
                "shard uses chunks of checkpoints \(shard.baseSteps) but the manifest records \((record.references ?? []).map(\.rawValue)); the checkpoint is inconsistent",
                path: shardPath
            )
        }
        let described = try shard.adoptingFields(of: record.entries)
        let shards = shards(
            of: manifest,
            rank: rank,
            rankCount: manifest.rankCount,
            threads: threads,
            opened: described
        )
        return SnapshotReader(shard: described, threads: threads, checkpoint: shards)
    }

    /// Deletes all but the newest `keepLast` committed checkpoints (and, with `keepEvery`, keeps
    /// every checkpoint whose step is a multiple of it), as the retention rule would; a checkpoint
    /// whose chunks a kept checkpoint uses is kept too (see ``prunePlan(_:)``).
    ///
    /// Takes the directory's lock, so it refuses to run while a checkpointer uses the directory.
    /// - Parameters:
    ///   - retention: What to keep.
    ///   - dryRun: Only report what would be deleted.
    /// - Returns: The steps deleted (or that would be), oldest first.
    /// - Throws: `invalidConfiguration` when `keepLast` < 1 or a checkpointer holds the lock;
    ///   `unsupportedFormatVersion` when a kept checkpoint's manifest is too new to tell what it
    ///   uses; `notFound`, `permissionDenied`, `ioFailure`.
    @discardableResult
    public func prune(
        _ retention: Checkpointer.Configuration.Retention,
        dryRun: Bool = false
    ) throws(CheckpointError) -> [Step] {
        guard retention.keepLast >= 1 else {
            throw CheckpointError(
                .invalidConfiguration,
                "keep at least one checkpoint (keepLast ≥ 1), not \(retention.keepLast)"
            )
        }
        if dryRun { return try prunePlan(retention).delete }
        let lock = try Syscalls.lockExclusively(path + "/.lock", permissions: 0o600)
        defer { Syscalls.closeDescriptor(lock) }
        let plan = try prunePlan(retention)
        let store = RenamingStore(directory: self, permissions: StorePermissions(file: 0o600, directory: 0o700))
        for step in plan.deletionOrder { try store.delete(step: step) }
        return plan.delete
    }

    /// What a retention rule keeps and deletes once references between checkpoints are counted.
    public struct PrunePlan: Sendable, Hashable {
        /// The checkpoints to delete, oldest first: neither the rule nor any kept checkpoint needs them.
        /// Delete them in ``deletionOrder``.
        public var delete: [Step]

        /// ``delete`` newest first, the order to delete in: a checkpoint goes before the older ones
        /// whose chunks it uses, so deleting stopped midway (a crash, a failing call) never leaves
        /// a checkpoint without them.
        public var deletionOrder: [Step] { delete.reversed() }
        /// The checkpoints kept, oldest first.
        public var keep: [Step]
        /// The checkpoints the rule alone would delete but that are kept because kept checkpoints use
        /// their chunks: each with the kept steps that use it, ascending.
        public var keptForReferences: [Step: [Step]]
    }

    /// Which committed checkpoints `retention` keeps, counting references: every checkpoint a kept
    /// checkpoint uses chunks of is kept as well, and one is deleted only when nothing kept uses it.
    ///
    /// Reads the manifest of every kept checkpoint. A kept checkpoint whose manifest is damaged
    /// cannot be restored, so it keeps nothing else.
    /// - Parameter retention: The rule.
    /// - Returns: The plan; nothing is deleted.
    /// - Throws: `notFound` or `permissionDenied` for the directory; `unsupportedFormatVersion` (or an
    ///   I/O error) when a kept checkpoint's manifest cannot be read, since then what it uses is unknown.
    public func prunePlan(_ retention: Checkpointer.Configuration.Retention) throws(CheckpointError) -> PrunePlan {
        try prunePlan(retention, among: committedSteps())
    }

    /// Which of `steps` (committed, ascending) `retention` keeps; see ``prunePlan(_:)``.
    func prunePlan(
        _ retention: Checkpointer.Configuration.Retention,
        among steps: [Step]
    ) throws(CheckpointError) -> PrunePlan {
        let existing = Set(steps)
        let candidates = retention.stepsToDelete(from: steps)
        var keep = existing.subtracting(candidates)
        var keptForReferences: [Step: [Step]] = [:]
        // References point to older steps, so only kept checkpoints newer than the oldest candidate
        // can keep a candidate; the others' manifests need not be read.
        var pending = candidates.min().map { oldest in keep.filter { $0 > oldest } } ?? []
        while let step = pending.popLast() {
            let references: [Step]
            do { references = try loadManifest(step: step).references } catch  where error.isCorruption {
                references = []
            }
            for reference in references where existing.contains(reference) {
                if keep.insert(reference).inserted {
                    pending.append(reference)
                    keptForReferences[reference] = []
                }
                if keptForReferences[reference] != nil { keptForReferences[reference]!.append(step) }
            }
        }
        for step in keptForReferences.keys { keptForReferences[step]!.sort() }
        return PrunePlan(
            delete: steps.filter { !keep.contains($0) },
            keep: steps.filter { keep.contains($0) },
            keptForReferences: keptForReferences
        )
    }

    static func writeFileSynced(_ path: String, _ bytes: [UInt8], permissions: UInt16) throws(CheckpointError) {
        let file = try OpenFile.createExclusive(path, permissions: permissions)
        try withTypedThrows { try bytes.withUnsafeBytes { raw in try file.writeAll(raw) } }
        try file.sync()
        file.close()
    }

    static func readWholeFile(_ path: String, limit: Int) throws(CheckpointError) -> [UInt8] {
        let file = try OpenFile.openForReading(path)
        let size = try file.size()
        guard size <= limit else {
            throw CheckpointError(
                .manifestInvalid,
                "file is \(size) bytes, larger than the \(limit)-byte limit",
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
