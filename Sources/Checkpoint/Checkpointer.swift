import Foundation
import Logging
import Synchronization

/// Saves application state as atomic, verified, compressed checkpoints and restores the newest good one.
///
/// The three-line integration:
///
/// ```swift
/// let checkpointer = try Checkpointer(directory: "checkpoints")
/// var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
/// while step < 1_000 { sim.advance(); step += 1; try checkpointer.checkpoint(sim, step: step) }
/// ```
///
/// `Simulation` is any `Codable` type or any ``Checkpointable`` type. Alternatively register
/// state once in ``registry`` and call ``save(step:metadata:)`` / ``restoreLatest()``.
///
/// A save writes a shard into a temporary directory, `fsync`s it, writes the manifest, and
/// renames the directory into place: a crash at any instant leaves the previous checkpoints
/// intact and never leaves a half-written one that looks committed. Restore finds the newest
/// checkpoint that verifies, falling back past damaged ones (logging why), and builds the state
/// before anything of the application's is touched.
///
/// One checkpointer per directory and process; it locks the directory while it lives.
public final class Checkpointer: Sendable {
    /// The directory the checkpoints live in.
    public let directory: CheckpointDirectory
    /// The configuration it was created with.
    public let configuration: Configuration
    /// State registered for ``save(step:metadata:)`` and ``restoreLatest()``.
    public let registry = StateRegistry()

    let logger: Logger
    private let lockDescriptor: Int32
    private let state: Mutex<MutableState>
    /// A test seam: stop a commit at this point as if the process had died there.
    let crashPoint = Mutex<CheckpointDirectory.CommitPoint?>(nil)

    struct MutableState {
        var lastCheckpoint = Stopwatch()
    }

    /// Opens (creating if configured) a checkpoint directory, locks it, and removes temporary
    /// directories left by crashed runs.
    ///
    /// - Parameters:
    ///   - directory: The directory path.
    ///   - configuration: Options; see ``Configuration``.
    ///   - logger: Where to log commits, fallbacks and cleanups.
    /// - Throws: `invalidConfiguration` for bad options or when another process uses the directory;
    ///   `notFound` or `permissionDenied` for the directory.
    public init(
        directory: String,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "swift-checkpoint")
    ) throws(CheckpointError) {
        try configuration.validate()
        if configuration.createDirectory {
            try Syscalls.makeDirectories(directory, permissions: configuration.directoryPermissions)
        }
        try Syscalls.checkWritableDirectory(directory)
        self.directory = CheckpointDirectory(path: directory)
        self.configuration = configuration
        self.logger = logger
        lockDescriptor = try Syscalls.lockExclusively(directory + "/.lock", permissions: configuration.filePermissions)
        state = Mutex(MutableState())
        do {
            for name in try self.directory.removeStaleTemporaries() {
                logger.notice(
                    "removed an unfinished checkpoint left by an earlier run",
                    metadata: ["path": "\(directory)/\(name)"]
                )
            }
        } catch {
            Syscalls.closeDescriptor(lockDescriptor)
            throw error
        }
    }

    deinit { Syscalls.closeDescriptor(lockDescriptor) }

    // MARK: Saving

    /// Saves `state` as the checkpoint of `step`, now.
    ///
    /// - Parameters:
    ///   - state: The state to save.
    ///   - step: Identifies the checkpoint; saving a step that exists replaces it atomically.
    ///   - metadata: Recorded in the manifest, on top of ``Configuration/metadata``.
    /// - Returns: The committed checkpoint's manifest.
    /// - Throws: What `state.save(to:)` throws, or a ``CheckpointError`` (`diskFull`,
    ///   `permissionDenied`, `ioFailure`, …). Nothing partial is ever committed.
    @discardableResult
    public func save(_ state: some Checkpointable, step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        let clock = Stopwatch()
        var writer = SnapshotWriter()
        try state.save(to: &writer)
        return try commit(writer, step: step, metadata: metadata, stageSeconds: clock.elapsed)
    }

    /// Saves a `Codable` value as the checkpoint of `step` (one JSON entry named `state`).
    @_disfavoredOverload
    @discardableResult
    public func save<State: Codable>(_ state: State, step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        try save(CodableState(state), step: step, metadata: metadata)
    }

    /// Saves everything in ``registry`` as the checkpoint of `step`.
    @discardableResult
    public func save(step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        let clock = Stopwatch()
        var writer = SnapshotWriter()
        try registry.save(to: &writer)
        return try commit(writer, step: step, metadata: metadata, stageSeconds: clock.elapsed)
    }

    /// A safe point: saves `state` if ``Configuration/policy`` says this step is due.
    /// - Returns: The manifest when a checkpoint was taken, `nil` otherwise.
    @discardableResult
    public func checkpoint(
        _ state: some Checkpointable,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        guard isDue(step) else { return nil }
        return try save(state, step: step, metadata: metadata)
    }

    /// A safe point for a `Codable` value. See ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)``.
    @_disfavoredOverload
    @discardableResult
    public func checkpoint<State: Codable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        guard isDue(step) else { return nil }
        return try save(state, step: step, metadata: metadata)
    }

    /// A safe point for the ``registry``.
    @discardableResult
    public func checkpoint(step: Step, metadata: [String: String] = [:]) throws -> Manifest? {
        guard isDue(step) else { return nil }
        return try save(step: step, metadata: metadata)
    }

    /// Whether the policy wants a checkpoint at `step` now.
    public func isDue(_ step: Step) -> Bool {
        configuration.policy.isDue(step: step, secondsSinceLast: state.withLock { $0.lastCheckpoint.elapsed })
    }

    // MARK: Restoring

    /// Restores the newest checkpoint that verifies into a new value.
    ///
    /// Damaged checkpoints (checksum, truncation, missing files) are skipped with a logged warning
    /// and older ones tried.
    /// - Returns: The state and its step, or `nil` when the directory holds no checkpoint at all.
    /// - Throws: `noCheckpoint` when checkpoints exist but none verifies; `typeMismatch`,
    ///   `shapeMismatch`, `entryMissing`, `decodingFailed` when the newest good checkpoint does not
    ///   fit the type (an older one would not either); whatever `init(from:)` throws.
    public func restoreLatest<State: Checkpointable>(_ type: State.Type) throws -> (state: State, step: Step)? {
        try restoreNewest { try State(from: $0) }
    }

    /// Restores the newest `Codable` state saved with ``save(_:step:metadata:)-(Codable,_,_)``.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(_ type: State.Type) throws -> (state: State, step: Step)? {
        try restoreNewest { try CodableState<State>(from: $0).value }
    }

    /// Restores the newest checkpoint, or returns `initial` at step 0 when there is none.
    public func restoreLatest<State: Checkpointable>(
        or initial: @autoclosure () -> State
    ) throws -> (state: State, step: Step) {
        try restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores the newest `Codable` checkpoint, or returns `initial` at step 0 when there is none.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(or initial: @autoclosure () -> State) throws -> (state: State, step: Step)
    {
        try restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores everything in ``registry`` from the newest checkpoint that verifies.
    ///
    /// Every registered entry is decoded and verified before any is written back.
    /// - Returns: The restored step, or `nil` when there is no checkpoint (nothing is changed).
    @discardableResult
    public func restoreLatest() throws -> Step? {
        try restoreNewest { reader in try registry.prepareRestore(from: reader) }.map { apply, step in
            apply()
            return step
        }
    }

    /// The manifests of the committed checkpoints that have valid manifests, oldest first.
    public func checkpoints() throws(CheckpointError) -> [Manifest] {
        try directory.committedSteps().compactMap { step in try? directory.loadManifest(step: step) }
    }

    private func restoreNewest<Value>(_ build: (SnapshotReader) throws -> Value) throws -> (Value, Step)? {
        let steps = try directory.committedSteps()
        guard !steps.isEmpty else { return nil }
        var reasons: [String] = []
        for step in steps.reversed() {
            do {
                let reader = try directory.openSnapshot(step: step, rank: 0, threads: configuration.threads)
                let value = try build(reader)
                if !reasons.isEmpty {
                    logger.warning(
                        "restored an older checkpoint",
                        metadata: ["step": "\(step)", "skipped": "\(reasons.count)"]
                    )
                }
                logger.info("restored checkpoint", metadata: ["step": "\(step)"])
                return (value, step)
            } catch let error as CheckpointError where error.isCorruption {
                logger.warning("skipping damaged checkpoint", metadata: ["step": "\(step)", "reason": "\(error)"])
                reasons.append("step \(step): \(error)")
            }
        }
        throw CheckpointError(
            .noCheckpoint,
            "none of the \(steps.count) checkpoints verifies, so none was restored; inspect them with `ckpt verify \(directory.path)` — "
                + reasons.joined(separator: "; "),
            path: directory.path
        )
    }

    // MARK: Committing

    private func commit(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        stageSeconds: Double
    ) throws(CheckpointError) -> Manifest {
        let permissions = (file: configuration.filePermissions, directory: configuration.directoryPermissions)
        let temporary = try directory.makeTemporary(step: step, permissions: permissions.directory)
        let crashAt = crashPoint.withLock { $0 }
        do {
            let options = EncodingOptions(
                compressionLevel: configuration.compression.level,
                threads: configuration.threads,
                chunkSize: configuration.chunkSize,
                filter: configuration.filter,
                permissions: permissions.file
            )
            let shardName = CheckpointDirectory.shardFileName(rank: 0)
            let summary = try ShardWriter.write(writer.entries, to: temporary + "/" + shardName, options: options)
            let clock = Stopwatch()
            var manifest = makeManifest(step: step, metadata: metadata, shards: [(shardName, summary)])
            manifest.timings = Manifest.Timings(
                stageSeconds: stageSeconds,
                encodeSeconds: summary.encodeSeconds,
                writeSeconds: summary.writeSeconds,
                syncSeconds: summary.syncSeconds,
                commitSeconds: 0
            )
            try directory.commit(temporary: temporary, manifest: manifest, permissions: permissions.file) {
                point throws(CheckpointError) in
                if point == crashAt { throw SimulatedCrash.error }
            }
            manifest.timings.commitSeconds = clock.elapsed
            state.withLock { $0.lastCheckpoint.restart() }
            logger.info(
                "committed checkpoint",
                metadata: [
                    "step": "\(step)", "raw": "\(manifest.rawBytes)", "stored": "\(manifest.storedBytes)",
                    "seconds":
                        "\(stageSeconds + summary.encodeSeconds + summary.writeSeconds + summary.syncSeconds + manifest.timings.commitSeconds)",
                ]
            )
            applyRetention()
            return manifest
        } catch {
            if error.message != SimulatedCrash.error.message {
                do { try Syscalls.removeTree(temporary) } catch let cleanup {
                    logger.error(
                        "could not remove an abandoned checkpoint",
                        metadata: ["path": "\(temporary)", "error": "\(cleanup)"]
                    )
                }
                logger.error(
                    "checkpoint failed; the previous checkpoints are intact",
                    metadata: ["step": "\(step)", "error": "\(error)"]
                )
            }
            throw error
        }
    }

    func makeManifest(step: Step, metadata: [String: String], shards: [(String, ShardSummary)]) -> Manifest {
        Manifest(
            manifestVersion: Manifest.currentVersion,
            shardFormat: "\(ShardFormat.majorVersion).\(ShardFormat.minorVersion)",
            library: "swift-checkpoint \(LibraryVersion.string)",
            zstdVersion: Zstd.versionString,
            step: step,
            createdAt: Date().formatted(.iso8601),
            rankCount: shards.count,
            hostName: Syscalls.hostName,
            metadata: configuration.metadata.merging(metadata) { _, new in new },
            settings: Manifest.Settings(
                compression: configuration.compression.description,
                filter: configuration.filter.description,
                chunkSize: configuration.chunkSize,
                threads: configuration.threads
            ),
            shards: shards.enumerated().map { rank, shard in
                let (file, summary) = shard
                return Manifest.Shard(
                    rank: rank,
                    file: file,
                    fileBytes: summary.fileSize,
                    indexSHA256: hexString(summary.indexDigest),
                    rawBytes: summary.entries.reduce(0) { $0 + $1.rawSize },
                    storedBytes: summary.entries.reduce(0) { $0 + $1.storedSize },
                    entries: summary.entries.map(Manifest.Entry.init)
                )
            },
            timings: Manifest.Timings(
                stageSeconds: 0,
                encodeSeconds: 0,
                writeSeconds: 0,
                syncSeconds: 0,
                commitSeconds: 0
            )
        )
    }

    /// Deletes checkpoints the retention rule no longer keeps; only ever after a newer commit.
    private func applyRetention() {
        do {
            for step in configuration.retention.stepsToDelete(from: try directory.committedSteps()) {
                try directory.delete(step: step, permissions: configuration.directoryPermissions)
                logger.debug("deleted old checkpoint", metadata: ["step": "\(step)"])
            }
        } catch {
            logger.warning(
                "could not delete an old checkpoint; it will be retried after the next commit",
                metadata: ["error": "\(error)"]
            )
        }
    }
}

extension Manifest.Entry {
    init(_ record: EntryRecord) {
        self.init(
            name: record.name,
            type: record.elementType.typeName,
            scalar: record.encoding == .json ? "json" : record.elementType.scalar.description,
            shape: record.shape,
            filter: record.filter.description,
            rawBytes: record.rawSize,
            storedBytes: record.storedSize,
            chunks: record.chunks.count
        )
    }
}

/// The error a test's injected crash throws: the commit stops where it is, without cleaning up.
enum SimulatedCrash {
    static let error = CheckpointError(.ioFailure, "simulated crash (test seam)")
}
