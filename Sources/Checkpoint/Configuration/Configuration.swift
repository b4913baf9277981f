extension Checkpointer {
    /// Everything a ``Checkpointer`` can be told; every property has a default chosen from measurement.
    ///
    /// ```swift
    /// var configuration = Checkpointer.Configuration()
    /// configuration.policy = .everySteps(100)
    /// configuration.retention = .init(keepLast: 5)
    /// let checkpointer = try Checkpointer(directory: "run/checkpoints", configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// When ``Checkpointer/checkpoint(_:step:metadata:)-(Checkpointable,_,_)`` saves. Default: every 5 minutes.
        public var policy: CheckpointPolicy
        /// Which committed checkpoints to keep. Default: the newest 3.
        public var retention: Retention
        /// How chunks are compressed. Default: zstd level 1 (see `Documentation/Performance.md`).
        public var compression: Compression
        /// Threads that filter, compress, hash and decompress chunks in parallel. Default: all active cores.
        public var threads: Int
        /// Bytes per chunk before compression (rounded down to whole elements). Default: 4 MiB.
        public var chunkSize: Int
        /// Which entries are byte-shuffled before compression. Default: ``FilterPolicy/automatic``.
        public var filter: FilterPolicy
        /// Permission bits of created files. Default: `0o600` (owner only).
        public var filePermissions: UInt16
        /// Permission bits of created directories. Default: `0o700` (owner only).
        public var directoryPermissions: UInt16
        /// Whether the checkpoint directory (and its parents) is created when missing. Default: `true`.
        public var createDirectory: Bool
        /// Who besides you may write the directories checkpoints live in; a directory another user
        /// can write is refused. Default: ``DirectorySharing/privateOnly``.
        public var directorySharing: DirectorySharing
        /// Key-value pairs recorded in every manifest (say a run id); per-call metadata adds to them.
        public var metadata: [String: String]
        /// Whether safe points write checkpoints themselves or hand them to a background thread.
        /// Default: ``Mode/synchronous``.
        public var mode: Mode
        /// Scheduler signals that make the next safe point checkpoint and then set
        /// ``Checkpointer/shouldStop``. Default: `nil` (signals keep their usual effect).
        public var stopSignals: StopSignals?
        /// A time by which the job must have checkpointed and stopped. Default: `nil`.
        public var deadline: Deadline?
        /// Process dumps (CRIU, DMTCP, a command) taken after some committed checkpoints. Default: `nil`.
        public var processDumps: ProcessDumps?
        /// Node-local checkpoints with partner copies and periodic flushes to `directory`. Default: `nil`.
        public var redundancy: Redundancy?
        /// Whether a checkpoint stores only the chunks that changed since the previous one.
        /// Default: ``Incremental/off`` (see `Documentation/Incremental.md` for the measurements).
        public var incremental: Incremental
        /// How stores make a checkpoint committed: by renaming a finished directory into place
        /// (the default) or by writing a commit marker last. Default: ``CommitMethod/rename``.
        public var commitMethod: CommitMethod
        /// Keys that seal every checkpoint written and must have sealed every checkpoint restored
        /// (HMAC-SHA256; see `Documentation/Security.md`). Default: `nil` (checkpoints are checked
        /// for integrity only).
        public var authentication: Authentication?
        /// The run checkpoints belong to: restore refuses another run's, and one that does not follow
        /// the checkpoint before it. Default: `nil`.
        public var lineage: Lineage?
        /// Where metrics go (swift-metrics) and how they are labelled. Default: the process-wide
        /// factory, which records nothing until the application bootstraps a backend.
        public var metrics: MetricsOptions
        /// Whether the ranks of a node write one file per checkpoint together. Default: ``Aggregation/off``.
        public var aggregation: Aggregation
        /// Which checksum guards each chunk. Default: ``ChunkChecksum/automatic`` (XXH3-128, or
        /// SHA-256 when incremental checkpoints or authentication need a cryptographic digest).
        public var chunkChecksum: ChunkChecksum

        /// Creates a configuration; every argument has a default.
        public init(
            policy: CheckpointPolicy = .every(seconds: 300),
            retention: Retention = Retention(),
            compression: Compression = .zstd(level: 1),
            threads: Int = Checkpointer.Configuration.defaultThreads,
            chunkSize: Int = 4 << 20,
            filter: FilterPolicy = .automatic,
            filePermissions: UInt16 = 0o600,
            directoryPermissions: UInt16 = 0o700,
            createDirectory: Bool = true,
            directorySharing: DirectorySharing = .privateOnly,
            metadata: [String: String] = [:],
            mode: Mode = .synchronous,
            stopSignals: StopSignals? = nil,
            deadline: Deadline? = nil,
            processDumps: ProcessDumps? = nil,
            redundancy: Redundancy? = nil,
            incremental: Incremental = .off,
            commitMethod: CommitMethod = .rename,
            authentication: Authentication? = nil,
            lineage: Lineage? = nil,
            metrics: MetricsOptions = MetricsOptions(),
            aggregation: Aggregation = .off,
            chunkChecksum: ChunkChecksum = .automatic
        ) {
            self.policy = policy
            self.retention = retention
            self.compression = compression
            self.threads = threads
            self.chunkSize = chunkSize
            self.filter = filter
            self.filePermissions = filePermissions
            self.directoryPermissions = directoryPermissions
            self.createDirectory = createDirectory
            self.directorySharing = directorySharing
            self.metadata = metadata
            self.mode = mode
            self.stopSignals = stopSignals
            self.deadline = deadline
            self.processDumps = processDumps
            self.redundancy = redundancy
            self.incremental = incremental
            self.commitMethod = commitMethod
            self.authentication = authentication
            self.lineage = lineage
            self.metrics = metrics
            self.aggregation = aggregation
            self.chunkChecksum = chunkChecksum
        }

        /// The number of active processors.
        public static var defaultThreads: Int { Syscalls.onlineProcessorCount }

        /// A directory of checkpoints read and written with this configuration's keys and lineage.
        func checkpointDirectory(_ path: String) -> CheckpointDirectory {
            CheckpointDirectory(path: path, authentication: authentication, lineage: lineage)
        }

        /// Throws ``CheckpointError/Code/invalidConfiguration`` for out-of-range values.
        public func validate() throws(CheckpointError) {
            func fail(_ message: String) -> CheckpointError { CheckpointError(.invalidConfiguration, message) }
            guard threads >= 1 && threads <= 1024 else {
                throw fail("threads must be between 1 and 1024, not \(threads)")
            }
            guard chunkSize >= 4096 && chunkSize <= 256 << 20 else {
                throw fail("chunkSize must be between 4 KiB and 256 MiB, not \(chunkSize)")
            }
            if let level = compression.level, !Zstd.levels.contains(level) {
                throw fail("zstd level must be in \(Zstd.levels), not \(level)")
            }
            guard retention.keepLast >= 1 else {
                throw fail("retention.keepLast must be at least 1, not \(retention.keepLast)")
            }
            if let every = retention.keepEvery, every <= 0 {
                throw fail("retention.keepEvery must be positive, not \(every)")
            }
            guard filePermissions & 0o600 == 0o600, directoryPermissions & 0o700 == 0o700 else {
                throw fail("file permissions must include owner read/write and directory permissions owner rwx")
            }
            guard directoryPermissions & 0o002 == 0 else {
                throw fail(
                    "directory permissions must not let every user write (0o\(String(directoryPermissions, radix: 8))): they could plant checkpoints; drop the write bit for others"
                )
            }
            guard directoryPermissions & 0o020 == 0 || directorySharing.allowsGroup else {
                throw fail(
                    "directory permissions let the group write (0o\(String(directoryPermissions, radix: 8))), but directorySharing is private; drop the group write bit, or set directorySharing = .group to share the directories on purpose"
                )
            }
            for key in metadata.keys where key.isEmpty { throw fail("metadata keys must not be empty") }
            if case .asynchronous(let options) = mode.value, options.stagingLimit < 0 {
                throw fail("the staging limit must not be negative, not \(options.stagingLimit)")
            }
            if let fullEvery = incremental.fullEvery, !(1...Incremental.maximumFullEvery).contains(fullEvery) {
                throw fail(
                    "incremental fullEvery must be between 1 and \(Incremental.maximumFullEvery), not \(fullEvery)"
                )
            }
            if let processDumps {
                guard processDumps.everyNthCheckpoint >= 1 else {
                    throw fail("processDumps.everyNthCheckpoint must be at least 1")
                }
                guard processDumps.timeout > 0 else { throw fail("processDumps.timeout must be positive") }
            }
            if chunkChecksum == .xxh3 && (incremental.isOn || authentication != nil) {
                throw fail(
                    "chunkChecksum xxh3 cannot guard \(incremental.isOn ? "incremental checkpoints, whose chunks are found again by their SHA-256" : "authenticated checkpoints: anyone can forge an XXH3 match, and the seal covers the chunks only through their checksums"); use .automatic or .sha256"
                )
            }
            if let redundancy { try redundancy.validate() }
            try aggregation.validate(redundancy: redundancy)
            try metrics.validate()
            if let stopSignals {
                guard stopSignals.gracePeriod > 0 else { throw fail("the stop signals' grace period must be positive") }
                for signal in stopSignals.signals where !Syscalls.canHandleSignal(signal) {
                    throw fail("signal \(signal) cannot be handled; use SIGTERM, SIGUSR1, SIGUSR2, SIGINT…")
                }
            }
        }
    }
}

extension Checkpointer.Configuration {
    /// How chunks are compressed.
    public struct Compression: Sendable, Hashable, CustomStringConvertible {
        /// The zstd level, or `nil` to store chunks raw.
        public var level: Int?

        /// Store chunks uncompressed (still checksummed).
        public static let none = Compression(level: nil)

        /// Compress with zstd at `level` (1 is fastest; 3 is zstd's default; up to 22).
        public static func zstd(level: Int) -> Compression { Compression(level: level) }

        /// `"zstd-1"` or `"none"`.
        public var description: String { level.map { "zstd-\($0)" } ?? "none" }
    }
}

extension Checkpointer.Configuration {
    /// Whether checkpoints at safe points are written in the foreground or the background.
    public struct Mode: Sendable, Hashable, CustomStringConvertible {
        enum Value: Sendable, Hashable {
            case synchronous
            case asynchronous(AsynchronousOptions)
        }

        let value: Value

        /// The safe point writes, syncs and commits the checkpoint before it returns. Simple, and
        /// the error, if any, is thrown right there.
        public static let synchronous = Mode(value: .synchronous)

        /// The safe point only stages the state and returns; a background thread filters,
        /// compresses, writes, syncs and commits it.
        ///
        /// Staging retains copy-on-write arrays without copying them and copies memory the
        /// application owns (registered buffers) into a staging buffer.
        /// - Parameters:
        ///   - stagingLimit: The most bytes of owned memory to copy for one checkpoint; a larger
        ///     checkpoint is written synchronously instead. Default: 1 GiB.
        ///   - whenBusy: What a due safe point does while the previous checkpoint is still being
        ///     written. Default: ``BusyBehavior/wait``.
        public static func asynchronous(stagingLimit: Int = 1 << 30, whenBusy: BusyBehavior = .wait) -> Mode {
            Mode(value: .asynchronous(AsynchronousOptions(stagingLimit: stagingLimit, whenBusy: whenBusy)))
        }

        /// `"synchronous"` or `"asynchronous"`.
        public var description: String {
            if case .asynchronous = value { return "asynchronous" }
            return "synchronous"
        }
    }

    /// What a due safe point does while the previous asynchronous checkpoint is still in flight.
    public enum BusyBehavior: Sendable, Hashable {
        /// Wait for it, then take the new checkpoint.
        case wait
        /// Skip this checkpoint (and log it); the next due safe point tries again.
        case skip
    }

    /// Options of ``Mode/asynchronous(stagingLimit:whenBusy:)``.
    public struct AsynchronousOptions: Sendable, Hashable {
        /// The most bytes of owned memory copied per checkpoint.
        public var stagingLimit: Int
        /// What a due safe point does while the previous checkpoint is in flight.
        public var whenBusy: BusyBehavior
    }
}

/// Process dumps taken after committed application-level checkpoints.
///
/// ```swift
/// configuration.processDumps = ProcessDumps(dumper: CRIUDumper(), everyNthCheckpoint: 10)
/// ```
public struct ProcessDumps: Sendable {
    /// What a dump failure does.
    public enum FailureBehavior: Sendable, Hashable {
        /// Log it and record it beside the manifest; the application goes on (default).
        case report
        /// Also throw it from the safe point (or save) that took the dump.
        case `throw`
    }

    /// The dumper.
    public var dumper: any ProcessDumper
    /// Dump after every N-th committed checkpoint (1: after each). Every rank dumps at the same steps.
    public var everyNthCheckpoint: Int
    /// What a failure does.
    public var onFailure: FailureBehavior
    /// Seconds a dump may take before it is abandoned.
    public var timeout: Double
    /// The process to dump; `nil`: this process.
    public var pid: Int32?

    /// Creates dump settings.
    public init(
        dumper: any ProcessDumper,
        everyNthCheckpoint: Int = 1,
        onFailure: FailureBehavior = .report,
        timeout: Double = 600,
        pid: Int32? = nil
    ) {
        self.dumper = dumper
        self.everyNthCheckpoint = everyNthCheckpoint
        self.onFailure = onFailure
        self.timeout = timeout
        self.pid = pid
    }
}

extension Checkpointer.Configuration {
    /// Incremental checkpoints: a chunk whose raw bytes are unchanged since the previous checkpoint
    /// is not compressed or written again but referenced where it is already stored.
    ///
    /// ```swift
    /// configuration.incremental = .on(fullEvery: 10)
    /// ```
    ///
    /// Every chunk's raw bytes are hashed (SHA-256) to find the unchanged ones, and every
    /// `fullEvery`-th checkpoint stores every chunk again, which bounds how many checkpoints one
    /// damaged chunk can spoil and lets retention delete old ones. Retention and ``CheckpointDirectory/prune(_:dryRun:)``
    /// keep every checkpoint a kept one uses. Incremental shards are format 2.0 (SHA-256 chunk
    /// checksums), which readers that know only format 1.x refuse as too new; with incremental
    /// checkpoints off, shards are format 3.0 or 1.0 (see ``ChunkChecksum``).
    public struct Incremental: Sendable, Hashable, CustomStringConvertible {
        /// Every checkpoint stores all of its chunks (format 3.0, or 1.0; see ``ChunkChecksum``). The default.
        public static let off = Incremental(fullEvery: nil)

        /// Checkpoints store only changed chunks, and every `fullEvery`-th one stores all of them.
        /// - Parameter fullEvery: Checkpoints per chain, full one included (1 to 1000; 1 makes every
        ///   checkpoint full but still records the digests a later run could continue from). Default: 10.
        public static func on(fullEvery: Int = 10) -> Incremental { Incremental(fullEvery: fullEvery) }

        /// Checkpoints per chain, or `nil` when incremental checkpoints are off.
        public var fullEvery: Int?

        /// The largest accepted ``fullEvery``.
        public static let maximumFullEvery = 1000

        /// Whether incremental checkpoints are on.
        public var isOn: Bool { fullEvery != nil }

        /// `"off"` or `"on, full every 10"`.
        public var description: String { fullEvery.map { "on, full every \($0)" } ?? "off" }
    }
}
