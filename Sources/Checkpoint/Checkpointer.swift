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
/// ## Ranks
///
/// With a ``Communicator`` of several ranks, create one checkpointer per rank on the same
/// (shared) directory. Saves, safe points and restores are then collective: every rank calls them
/// in the same order with the same step. Each rank writes its own shard; only when all succeeded
/// does rank 0 write the manifest and commit, and any rank's failure aborts the checkpoint on all
/// ranks with the same error. Restore agrees on the newest checkpoint that every rank can verify.
///
/// One checkpointer per directory (per rank); rank 0 locks the directory while it lives.
public final class Checkpointer: Sendable {
    /// The directory the checkpoints live in.
    public let directory: CheckpointDirectory
    /// The configuration it was created with.
    public let configuration: Configuration
    /// The ranks that checkpoint together.
    public let communicator: any Communicator
    /// State registered for ``save(step:metadata:)`` and ``restoreLatest()``.
    public let registry = StateRegistry()

    let logger: Logger
    private let lockDescriptor: Int32?
    private let state: Mutex<MutableState>
    /// A test seam: stop a commit at this point as if the process had died there.
    let crashPoint = Mutex<CheckpointDirectory.CommitPoint?>(nil)

    struct MutableState {
        var lastCheckpoint = Stopwatch()
    }

    private var rank: Int { communicator.rank }

    /// Opens (creating if configured) a checkpoint directory, locks it, and removes temporary
    /// directories left by crashed runs. With several ranks this is collective: rank 0 prepares
    /// the directory and every rank learns the outcome.
    ///
    /// - Parameters:
    ///   - directory: The directory path (the same on every rank; shared storage for several nodes).
    ///   - communicator: The ranks that checkpoint together; default: this process alone.
    ///   - configuration: Options; see ``Configuration``.
    ///   - logger: Where to log commits, fallbacks and cleanups.
    /// - Throws: `invalidConfiguration` for bad options or when another process uses the directory;
    ///   `notFound` or `permissionDenied` for the directory; `peerFailed` or `timedOut` when a rank fails.
    public init(
        directory: String,
        communicator: any Communicator = SingleProcessCommunicator(),
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "swift-checkpoint")
    ) throws {
        let checkpointDirectory = CheckpointDirectory(path: directory)
        self.directory = checkpointDirectory
        self.configuration = configuration
        self.communicator = communicator
        self.logger = logger
        state = Mutex(MutableState())
        var lock: Int32?
        var removed: [String] = []
        let rank = communicator.rank
        let prepared = Shared<Bool>(rank: rank) {
            try configuration.validate()
            if rank == 0 {
                if configuration.createDirectory {
                    try Syscalls.makeDirectories(directory, permissions: configuration.directoryPermissions)
                }
                try Syscalls.checkWritableDirectory(directory)
                lock = try Syscalls.lockExclusively(directory + "/.lock", permissions: configuration.filePermissions)
                removed = try checkpointDirectory.removeStaleTemporaries()
            }
            return true
        }
        lockDescriptor = lock
        do {
            _ = try communicator.broadcast(value: rank == 0 ? prepared : nil, root: 0).get()
            // Every rank must see the directory rank 0 prepared (shared storage).
            try communicator.agree(
                Shared<Bool>(rank: rank) {
                    try Syscalls.checkWritableDirectory(directory); return true
                }
            )
        } catch {
            if let lock { Syscalls.closeDescriptor(lock) }
            throw error
        }
        for name in removed {
            logger.notice(
                "removed an unfinished checkpoint left by an earlier run",
                metadata: ["path": "\(directory)/\(name)"]
            )
        }
    }

    deinit { if let lockDescriptor { Syscalls.closeDescriptor(lockDescriptor) } }

    // MARK: Saving

    /// Saves `state` as the checkpoint of `step`, now.
    ///
    /// - Parameters:
    ///   - state: The state to save.
    ///   - step: Identifies the checkpoint; saving a step that exists replaces it atomically.
    ///   - metadata: Recorded in the manifest, on top of ``Configuration/metadata`` (rank 0's is used).
    /// - Returns: The committed checkpoint's manifest.
    /// - Throws: What `state.save(to:)` throws, or a ``CheckpointError`` (`diskFull`,
    ///   `permissionDenied`, `ioFailure`, `peerFailed`, …). Nothing partial is ever committed. With
    ///   several ranks, a rank whose own save failed rethrows its error; the others throw a
    ///   ``CheckpointError`` with the same code and message naming that rank.
    @discardableResult
    public func save(_ state: some Checkpointable, step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        let clock = Stopwatch()
        var writer = SnapshotWriter()
        var stagingError: (any Error)?
        do { try state.save(to: &writer) } catch { stagingError = error }
        return try commit(
            writer,
            step: step,
            metadata: metadata,
            stageSeconds: clock.elapsed,
            stagingError: stagingError
        )
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
        var stagingError: (any Error)?
        do { try registry.save(to: &writer) } catch { stagingError = error }
        return try commit(
            writer,
            step: step,
            metadata: metadata,
            stageSeconds: clock.elapsed,
            stagingError: stagingError
        )
    }

    /// A safe point: saves `state` if ``Configuration/policy`` says this step is due.
    ///
    /// With several ranks, rank 0 decides and every rank follows, so a time-based policy can
    /// never make ranks disagree.
    /// - Returns: The manifest when a checkpoint was taken, `nil` otherwise.
    @discardableResult
    public func checkpoint(
        _ state: some Checkpointable,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        guard try agreeIsDue(step) else { return nil }
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
        guard try agreeIsDue(step) else { return nil }
        return try save(state, step: step, metadata: metadata)
    }

    /// A safe point for the ``registry``.
    @discardableResult
    public func checkpoint(step: Step, metadata: [String: String] = [:]) throws -> Manifest? {
        guard try agreeIsDue(step) else { return nil }
        return try save(step: step, metadata: metadata)
    }

    /// Whether the policy wants a checkpoint at `step` now, by this rank's clock.
    public func isDue(_ step: Step) -> Bool {
        configuration.policy.isDue(step: step, secondsSinceLast: state.withLock { $0.lastCheckpoint.elapsed })
    }

    /// Rank 0's ``isDue(_:)``, on every rank.
    private func agreeIsDue(_ step: Step) throws -> Bool {
        if communicator.size == 1 { return isDue(step) }
        return try communicator.broadcast([isDue(step) ? 1 : 0], root: 0) == [1]
    }

    // MARK: Restoring

    /// Restores the newest checkpoint that verifies into a new value.
    ///
    /// Damaged checkpoints (checksum, truncation, missing files) are skipped with a logged warning
    /// and older ones tried; with several ranks, the ranks agree on the newest checkpoint that all
    /// of them can restore.
    /// - Returns: The state and its step, or `nil` when the directory holds no checkpoint at all.
    /// - Throws: `noCheckpoint` when checkpoints exist but none verifies; `rankCountMismatch` when
    ///   the newest was written by another number of ranks; `typeMismatch`, `shapeMismatch`,
    ///   `entryMissing`, `decodingFailed` when the newest good checkpoint does not fit the type (an
    ///   older one would not either); whatever `init(from:)` throws.
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
    /// Every registered entry is decoded and verified (on every rank) before any is written back.
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

    /// The restart agreement: candidates newest first; each rank builds its state from its shard;
    /// all ranks learn every rank's outcome and take the same decision.
    private func restoreNewest<Value>(_ build: (SnapshotReader) throws -> Value) throws -> (Value, Step)? {
        let listed = Shared<[Step]>(rank: rank) { try directory.committedSteps() }
        let steps = try communicator.broadcast(value: rank == 0 ? listed : nil, root: 0).get()
        guard !steps.isEmpty else { return nil }
        var reasons: [String] = []
        for step in steps.reversed() {
            var value: Value?
            var localError: (any Error)?
            let status: RestoreStatus
            do {
                let manifest = try directory.loadManifest(step: step)
                guard manifest.rankCount == communicator.size else {
                    throw CheckpointError(
                        .rankCountMismatch,
                        "checkpoint \(step) was written by \(manifest.rankCount) ranks but \(communicator.size) are restoring it; restart with \(manifest.rankCount) ranks",
                        path: directory.path(for: step)
                    )
                }
                let reader = try directory.openSnapshot(manifest: manifest, rank: rank, threads: configuration.threads)
                value = try build(reader)
                status = .restored
            } catch let error as CheckpointError where error.isCorruption {
                status = .damaged(error.description)
            } catch {
                localError = error
                status = .failed(RankFailure(rank: rank, error: error))
            }
            let all =
                try communicator.size == 1
                ? [status]
                : communicator.allgather(JSONCoding.encoder.encode(status).bytes).map {
                    try JSONCoding.decoder.decode(RestoreStatus.self, from: Data($0))
                }
            if let failure = all.lazy.compactMap(\.failure).first {
                if failure.rank == rank, let localError { throw localError }
                throw failure.error
            }
            let damaged = all.enumerated().compactMap { rank, status in status.damage.map { "rank \(rank): \($0)" } }
            if damaged.isEmpty, let value {
                if !reasons.isEmpty {
                    logger.warning(
                        "restored an older checkpoint",
                        metadata: ["step": "\(step)", "skipped": "\(reasons.count)"]
                    )
                }
                logger.info("restored checkpoint", metadata: ["step": "\(step)"])
                return (value, step)
            }
            logger.warning(
                "skipping damaged checkpoint",
                metadata: ["step": "\(step)", "reason": "\(damaged.joined(separator: "; "))"]
            )
            reasons.append("step \(step): \(damaged.joined(separator: "; "))")
        }
        throw CheckpointError(
            .noCheckpoint,
            "none of the \(steps.count) checkpoints verifies, so none was restored; inspect them with `ckpt verify \(directory.path) --all` — "
                + reasons.joined(separator: "; "),
            path: directory.path
        )
    }

    // MARK: Committing

    /// Drives ``CommitStateMachine``: every rank takes part in every collective, whatever failed locally.
    private func commit(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        stageSeconds: Double,
        stagingError: (any Error)?
    ) throws -> Manifest {
        let permissions = (file: configuration.filePermissions, directory: configuration.directoryPermissions)
        var machine = CommitStateMachine(
            rank: rank,
            size: communicator.size,
            step: step,
            stagingFailure: stagingError.map { RankFailure(rank: rank, error: $0) }
        )
        var temporary: String?
        var action = machine.start()
        do {
            while true {
                switch action {
                case .createTemporary:
                    action = machine.temporaryCreated(
                        Shared(rank: rank) {
                            let path = try directory.makeTemporary(step: step, permissions: permissions.directory)
                            temporary = path
                            return path
                        }
                    )
                case .shareTemporary(let ticket):
                    action = machine.temporaryShared(try communicator.broadcast(value: ticket, root: 0))
                case .writeShard(let path):
                    action = machine.shardWritten(
                        Shared(rank: rank) { try writeShard(writer, into: path, stageSeconds: stageSeconds) }
                    )
                case .gatherReport(let report):
                    let encoded = try JSONCoding.encoder.encode(report).bytes
                    if let gathered = try communicator.gather(encoded, root: 0) {
                        action = machine.reportsGathered(
                            try gathered.map { try JSONCoding.decoder.decode(Shared<ShardReport>.self, from: Data($0)) }
                        )
                    } else {
                        action = machine.reportSent()
                    }
                case .commit(let path, let reports):
                    let crashAt = crashPoint.withLock { $0 }
                    var manifest = makeManifest(step: step, metadata: metadata, reports: reports)
                    let clock = Stopwatch()
                    do {
                        try directory.commit(temporary: path, manifest: manifest, permissions: permissions.file) {
                            point throws(CheckpointError) in
                            if point == crashAt { throw SimulatedCrash.error }
                        }
                        temporary = nil
                        manifest.timings.commitSeconds = clock.elapsed
                        action = machine.commitFinished(.success(manifest))
                    } catch  where error.message == SimulatedCrash.error.message {
                        temporary = nil  // a crashed process cleans nothing up
                        throw error
                    } catch {
                        action = machine.commitFinished(.failure(RankFailure(rank: rank, error: error)))
                    }
                case .abort(let path, let failure):
                    if let path { removeAbandoned(path) }
                    temporary = nil
                    logger.error(
                        "checkpoint failed; the previous checkpoints are intact",
                        metadata: ["step": "\(step)", "error": "\(failure.error)"]
                    )
                    action = machine.aborted()
                case .shareOutcome(let outcome):
                    action = machine.outcomeShared(try communicator.broadcast(value: outcome, root: 0))
                case .done(.success(let manifest)):
                    state.withLock { $0.lastCheckpoint.restart() }
                    if rank == 0 {
                        logger.info(
                            "committed checkpoint",
                            metadata: [
                                "step": "\(step)", "ranks": "\(manifest.rankCount)", "raw": "\(manifest.rawBytes)",
                                "stored": "\(manifest.storedBytes)",
                            ]
                        )
                        applyRetention()
                    }
                    return manifest
                case .done(.failure(let failure)):
                    if failure.rank == rank, let stagingError { throw stagingError }
                    throw failure.error
                }
            }
        } catch {
            // A collective failed (a peer died or timed out): nothing was committed; clean up what we created.
            if let temporary { removeAbandoned(temporary) }
            throw error
        }
    }

    private func writeShard(_ writer: SnapshotWriter, into path: String, stageSeconds: Double) throws -> ShardReport {
        let options = EncodingOptions(
            compressionLevel: configuration.compression.level,
            threads: configuration.threads,
            chunkSize: configuration.chunkSize,
            filter: configuration.filter,
            permissions: configuration.filePermissions
        )
        let file = CheckpointDirectory.shardFileName(rank: rank)
        let summary = try ShardWriter.write(writer.entries, to: path + "/" + file, options: options)
        return ShardReport(
            shard: Manifest.Shard(
                rank: rank,
                file: file,
                fileBytes: summary.fileSize,
                indexSHA256: hexString(summary.indexDigest),
                rawBytes: summary.entries.reduce(0) { $0 + $1.rawSize },
                storedBytes: summary.entries.reduce(0) { $0 + $1.storedSize },
                entries: summary.entries.map(Manifest.Entry.init)
            ),
            timings: Manifest.Timings(
                stageSeconds: stageSeconds,
                encodeSeconds: summary.encodeSeconds,
                writeSeconds: summary.writeSeconds,
                syncSeconds: summary.syncSeconds,
                commitSeconds: 0
            )
        )
    }

    private func removeAbandoned(_ path: String) {
        do { try Syscalls.removeTree(path) } catch {
            logger.error(
                "could not remove an abandoned checkpoint",
                metadata: ["path": "\(path)", "error": "\(error)"]
            )
        }
    }

    func makeManifest(step: Step, metadata: [String: String], reports: [ShardReport]) -> Manifest {
        func slowest(_ key: KeyPath<Manifest.Timings, Double>) -> Double {
            reports.map { $0.timings[keyPath: key] }.max() ?? 0
        }
        return Manifest(
            manifestVersion: Manifest.currentVersion,
            shardFormat: "\(ShardFormat.majorVersion).\(ShardFormat.minorVersion)",
            library: "swift-checkpoint \(LibraryVersion.string)",
            zstdVersion: Zstd.versionString,
            step: step,
            createdAt: Date().formatted(.iso8601),
            rankCount: reports.count,
            hostName: Syscalls.hostName,
            metadata: configuration.metadata.merging(metadata) { _, new in new },
            settings: Manifest.Settings(
                compression: configuration.compression.description,
                filter: configuration.filter.description,
                chunkSize: configuration.chunkSize,
                threads: configuration.threads
            ),
            shards: reports.map(\.shard),
            timings: Manifest.Timings(
                stageSeconds: slowest(\.stageSeconds),
                encodeSeconds: slowest(\.encodeSeconds),
                writeSeconds: slowest(\.writeSeconds),
                syncSeconds: slowest(\.syncSeconds),
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

/// One rank's result of trying to restore one checkpoint.
private enum RestoreStatus: Codable {
    case restored
    case damaged(String)
    case failed(RankFailure)

    var failure: RankFailure? { if case .failed(let failure) = self { failure } else { nil } }
    var damage: String? { if case .damaged(let reason) = self { reason } else { nil } }
}

extension Communicator {
    /// Every rank learns whether every rank succeeded; on failure all throw the first failing rank's error.
    func agree(_ local: Shared<Bool>) throws {
        if size == 1 { _ = try local.get(); return }
        let all = try allgather(JSONCoding.encoder.encode(local).bytes)
        for bytes in all {
            if case .failure(let failure) = try JSONCoding.decoder.decode(Shared<Bool>.self, from: Data(bytes)) {
                throw failure.error
            }
        }
    }
}

extension Data {
    var bytes: [UInt8] { Array(self) }
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
