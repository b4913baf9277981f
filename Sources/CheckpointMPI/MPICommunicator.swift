#if MPI
import Checkpoint
import Synchronization

/// A `Communicator` whose ranks are the processes of an MPI job, started by `mpirun` or `srun`.
///
/// ```swift
/// import Checkpoint
/// import CheckpointMPI
///
/// let communicator = try MPICommunicator.world()
/// let checkpointer = try Checkpointer(directory: "/shared/run-42/checkpoints", communicator: communicator)
/// var (simulation, step) = try checkpointer.restoreLatest(or: Simulation(rank: communicator.rank))
/// ```
///
/// The module is compiled only with the package trait `MPI` (`swift build --traits MPI`); without
/// it, `CheckpointMPI` is empty and nothing needs an MPI installation.
///
/// ## Getting a communicator
///
/// - ``world()`` is for programs that leave MPI to this library: it initializes MPI if nobody
///   has (asking for `MPI_THREAD_MULTIPLE`) and then finalizes it when the process exits with
///   status 0, or earlier with ``finalize()``.
/// - ``init(fortranHandle:)`` is for programs that initialize MPI themselves and have their own
///   communicator: pass `MPI_Comm_c2f(comm)` (a portable `Int32`, the same on Open MPI and MPICH).
///   The program keeps finalizing MPI itself, after calling ``finalize()`` to complete this
///   library's buffered sends.
///
/// Both duplicate the communicator (`MPI_Comm_dup`, so creating one is collective: every rank must
/// call it), so that the checkpointer's messages never match the application's receives, and set
/// `MPI_ERRORS_RETURN` on the duplicate only: MPI failures come back as ``CheckpointError``s
/// (`invalidConfiguration` for a bad rank, root, tag or size; `peerFailed` when an MPI with
/// process-fault reporting names a dead peer; `ioFailure` otherwise) with MPI's own explanation in
/// the message and an ``MPIError`` as the underlying error. The application's communicator keeps
/// its error handler.
///
/// ## When a rank fails
///
/// MPI has no timeouts: a collective or receive waits until every peer it needs has joined. This
/// differs from `LocalGroup`, whose ranks fail with `timedOut` or `peerFailed`. What MPI guarantees
/// instead:
///
/// - A rank that dies (a crash, a signal, `kill -9`) or exits without finalizing makes Open MPI's
///   `mpirun` (and Slurm's `srun` with its default `--kill-on-bad-exit`) kill every other rank of
///   the job, so no rank is left waiting for it. Restart the job and it resumes from the newest
///   checkpoint every rank can verify.
/// - The checkpointer's protocol always joins every collective, whatever failed locally: a rank
///   whose own save fails (disk full, a bad value) reports the failure through the protocol, and
///   every rank throws the same error. A local failure therefore never leaves a peer waiting.
/// - A rank that exits with a non-zero status (`exit(1)`, an `ExitCode.failure` from
///   swift-argument-parser) does not finalize MPI (on Linux), so the launcher ends the job as for
///   a crash. A rank that exits with status 0 finalizes MPI, which waits for every other rank to
///   finalize too: exit normally only when every rank is done.
/// - For a failure outside the checkpointer after which the ranks can no longer agree (one rank
///   gives up while others may be inside a collective), ``abort(code:)`` ends every process of
///   the job at once, from any thread.
///
/// ## Threads
///
/// Each rank calls a communicator's collectives from one thread at a time, in the same order on
/// every rank, as the `Communicator` protocol requires; different communicators (say the one a
/// checkpointer in asynchronous mode gets from ``duplicate()``) may be used from different threads
/// at once. The type is `Sendable`. When MPI provides `MPI_THREAD_MULTIPLE` (``world()`` asks for
/// it), calls go straight to MPI. When it provides less (a program that initialized MPI itself
/// with `MPI_THREAD_SERIALIZED`), this library serializes its calls through one lock, and waits
/// for a collective or message by polling (`MPI_Test`) with the lock released, so that no thread
/// blocks another while it waits for peers. The application must then not be inside MPI on another
/// thread at the same time, and with `MPI_THREAD_FUNNELED` it must use the checkpointer only from
/// the thread that initialized MPI, in synchronous mode.
///
/// ## Limits
///
/// A ``send(_:to:tag:)`` carries at most 2 GiB − 1 bytes and all of a ``gather(_:root:)`` together
/// at most 2 GiB − 1 bytes (MPI counts are 32-bit); ``broadcast(_:root:)`` has no limit. Tags are
/// `0...MPI_TAG_UB` (at least 32767).
public final class MPICommunicator: Communicator {
    /// This process's rank in the communicator, `0..<size`.
    public let rank: Int
    /// The number of processes in the communicator.
    public let size: Int
    /// `"MPI (…)"` with the first line of `MPI_Get_library_version`, e.g. `"MPI (Open MPI v4.1.4)"`.
    public let transportName: String
    /// The node this rank runs on, as the resource manager names it: `SLURMD_NODENAME` under Slurm;
    /// otherwise `"HOST/LEADER"` for the ranks that share memory (`MPI_Comm_split_type` with
    /// `MPI_COMM_TYPE_SHARED`: LEADER is the lowest of them, HOST its host name); otherwise, if
    /// MPI cannot split, the host name. See ``NodeName``.
    ///
    /// Partner copies (`Configuration.redundancy`) go to a rank with
    /// another node name, so two `slurmd` nodes on one host, or nodes that all report the same
    /// host name, still get their copies on the other node.
    public let nodeName: String

    let handle: MPIHandle
    private let tagUpperBound: Int

    /// Bytes per `MPI_Bcast` call; MPI counts are 32-bit.
    static let chunkLimit = 1 << 30

    private static let shared = Mutex<MPICommunicator?>(nil)

    /// The communicator of all processes of the job (a duplicate of `MPI_COMM_WORLD`), initializing
    /// MPI first if the program has not.
    ///
    /// When this call initializes MPI (`MPI_Init_thread` asking for `MPI_THREAD_MULTIPLE`), it also
    /// finalizes it: at ``finalize()``, or when the process exits with status 0 (`exit(0)` or
    /// returning from `main`). At an exit with another status it does not (on Linux, where the
    /// status is known), so that the launcher ends the other ranks instead of `MPI_Finalize`
    /// waiting for them. When the program initialized MPI itself, the program finalizes it.
    ///
    /// Collective the first time (every rank must call it); later calls return the same communicator.
    /// - Returns: The communicator of every rank of the job.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` when MPI was already
    ///   finalized, `ioFailure` when MPI fails to initialize (say the program was not started by a
    ///   launcher it can reach).
    public static func world() throws -> MPICommunicator {
        try shared.withLock { (shared) throws(CheckpointError) -> MPICommunicator in
            if let shared { return shared }
            try MPIRuntime.initializeIfNeeded()
            let world = try MPICommunicator(duplicating: .world, nodeName: nil)
            shared = world
            return world
        }
    }

    /// Wraps a communicator of a program that initialized MPI itself.
    ///
    /// ```swift
    /// // In the application, after MPI_Init_thread:
    /// let communicator = try MPICommunicator(fortranHandle: MPI_Comm_c2f(myComm))
    /// ```
    ///
    /// The communicator is duplicated (collective: every rank of it must call this), and the
    /// duplicate is released when this object is deinitialized, which, like `MPI_Comm_free`, every
    /// rank should do at the same point of the program. Call ``finalize()`` before `MPI_Finalize`.
    /// - Parameter fortranHandle: `MPI_Comm_c2f` of the application's communicator.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` when MPI is not initialized
    ///   or already finalized, or the handle is not a communicator.
    public convenience init(fortranHandle: Int32) throws {
        try MPIRuntime.requireInitialized()
        try self.init(duplicating: MPIHandle(fortranHandle: fortranHandle), nodeName: nil)
    }

    /// Duplicates `base` (collective); learns the node name (collective too) unless given one.
    private init(duplicating base: MPIHandle, nodeName knownNodeName: String?) throws(CheckpointError) {
        let duplicate = try base.duplicate()
        do {
            rank = try duplicate.rank()
            size = try duplicate.size()
            tagUpperBound = try duplicate.tagUpperBound()
            if let knownNodeName {
                nodeName = knownNodeName
            } else {
                // Every rank joins the split, whatever its environment says, so that no rank waits
                // in it for one that skipped it.
                let group = try? duplicate.sharedMemoryGroup(rank: rank)
                nodeName = NodeName.resolve(
                    resourceManager: NodeName.fromResourceManager(),
                    sharedMemoryGroup: group,
                    hostName: NodeName.hostName
                )
            }
        } catch {
            duplicate.free()
            throw error
        }
        handle = duplicate
        transportName = "MPI (\(MPIRuntime.libraryVersion))"
    }

    deinit { handle.free() }

    /// The portable integer handle (`MPI_Comm_c2f`) of the duplicate this communicator uses, for
    /// C or Fortran code that wants to communicate on it.
    public var fortranHandle: Int32 { handle.fortranHandle }

    /// Completes this library's buffered sends and, if ``world()`` initialized MPI, finalizes MPI.
    ///
    /// Optional when ``world()`` initialized MPI: it runs at exit anyway. A program that
    /// initialized MPI itself calls it before its own `MPI_Finalize`. Calling it again does nothing.
    /// After MPI is finalized, every communicator's operations throw.
    ///
    /// Like `MPI_Finalize`, it waits until every message this process sent was received.
    /// - Throws: ``CheckpointError`` when a buffered send or `MPI_Finalize` fails.
    public static func finalize() throws {
        try MPIRuntime.finalize()
    }

    /// Ends every process of the job now (`MPI_Abort`) with `code` as the job's exit status.
    ///
    /// Use it when this rank cannot go on and other ranks may be waiting for it in a collective:
    /// exiting normally would instead finalize MPI, which waits for them.
    /// - Parameter code: The exit status `mpirun` reports.
    public func abort(code: Int32) -> Never {
        handle.abort(code: code)
    }

    /// A new communicator over the same ranks whose collectives and messages never mix with this
    /// one's (`MPI_Comm_dup`), for a second thread such as a background checkpoint.
    ///
    /// Collective: every rank calls it, in the same order. Using both from different threads at
    /// once needs `MPI_THREAD_MULTIPLE`, or this library's serialization (see the type's discussion).
    /// - Returns: An ``MPICommunicator`` over the same processes, with the same ranks.
    /// - Throws: ``CheckpointError`` when MPI fails to duplicate the communicator.
    public func duplicate() throws -> any Communicator {
        try MPICommunicator(duplicating: handle, nodeName: nodeName)
    }

    /// Makes every later MPI call of this library go through one lock and wait by polling, as when
    /// MPI provides less than `MPI_THREAD_MULTIPLE`, so that tests can cover that mode.
    @_spi(Testing)
    public static func forceSerializedCalls() {
        MPIRuntime.forceSerializedCalls()
    }

    /// Whether this library serializes its MPI calls (MPI provides less than `MPI_THREAD_MULTIPLE`).
    public static var serializesCalls: Bool { MPIRuntime.serializesCalls }

    // MARK: Collectives

    /// Returns once every rank has called it (`MPI_Barrier`).
    /// - Throws: ``CheckpointError`` when MPI reports an error.
    public func barrier() throws {
        try handle.barrier()
    }

    /// Returns `root`'s bytes on every rank; the argument is ignored on the other ranks.
    ///
    /// Two `MPI_Bcast`s: the length, then the bytes (in 1 GiB pieces, so any size works).
    /// - Parameters:
    ///   - bytes: The bytes to send (on `root`).
    ///   - root: The rank whose bytes every rank receives; the same on every rank.
    /// - Returns: `root`'s bytes.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` when `root` is not a rank.
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try checkRank(root, role: "root")
        var count = Int64(rank == root ? bytes.count : 0)
        try withUnsafeMutableBytes(of: &count) { try handle.broadcast($0.baseAddress, count: 8, root: root) }
        guard rank != root else {
            // MPI only reads the root's buffer, so the caller's array is sent without a copy.
            try bytes.withUnsafeBytes {
                try broadcastPieces(UnsafeMutableRawPointer(mutating: $0.baseAddress), count: bytes.count, root: root)
            }
            return bytes
        }
        guard count >= 0, count <= Int64(Int.max) else {
            throw CheckpointError(.ioFailure, "rank \(root) broadcast an impossible length \(count)")
        }
        var received = [UInt8](repeating: 0, count: Int(count))
        try received.withUnsafeMutableBytes { try broadcastPieces($0.baseAddress, count: Int(count), root: root) }
        return received
    }

    private func broadcastPieces(_ base: UnsafeMutableRawPointer?, count: Int, root: Int) throws {
        var offset = 0
        while offset < count {
            let piece = min(Self.chunkLimit, count - offset)
            try handle.broadcast(base.map { $0 + offset }, count: piece, root: root)
            offset += piece
        }
    }

    /// Combines `values` element-wise across ranks (`MPI_Allreduce` on 64-bit integers); every
    /// rank gets the result.
    ///
    /// The ranks first agree on the number of values (one more small `MPI_Allreduce`): ranks that
    /// pass different numbers all throw instead of MPI reading past a buffer.
    /// - Parameters:
    ///   - values: This rank's values; the same count on every rank.
    ///   - operation: `.min`, `.max` or `.sum` (wrapping on overflow, as MPI's `MPI_SUM`).
    /// - Returns: The combined values, the same on every rank.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` on every rank when ranks
    ///   passed different numbers of values.
    public func allreduce(_ values: [Int64], _ operation: ReductionOperation) throws -> [Int64] {
        let counts: [Int64] = [Int64(values.count), -Int64(values.count)]
        var extremes: [Int64] = [0, 0]
        try counts.withUnsafeBytes { counts in
            try extremes.withUnsafeMutableBytes {
                try handle.allreduce(counts.baseAddress, into: $0.baseAddress, count: 2, .min)
            }
        }
        let (fewest, most) = (extremes[0], -extremes[1])
        guard fewest == most else {
            throw CheckpointError(
                .invalidConfiguration,
                "ranks passed between \(fewest) and \(most) values to allreduce; every rank must pass the same number"
            )
        }
        guard values.count <= Int(Int32.max) else {
            throw CheckpointError(
                .invalidConfiguration,
                "allreduce takes at most \(Int32.max) values, not \(values.count)"
            )
        }
        var result = [Int64](repeating: 0, count: values.count)
        try values.withUnsafeBytes { values in
            try result.withUnsafeMutableBytes {
                try handle.allreduce(values.baseAddress, into: $0.baseAddress, count: values.count / 8, operation)
            }
        }
        return result
    }

    /// Collects every rank's bytes on `root`, in rank order (`MPI_Allgather` of the lengths, then
    /// `MPI_Gatherv`); the ranks may pass different lengths.
    /// - Parameters:
    ///   - bytes: This rank's bytes.
    ///   - root: The rank that receives; the same on every rank.
    /// - Returns: Every rank's bytes on `root`; `nil` on the other ranks.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` when `root` is not a rank or
    ///   the ranks' bytes add up to 2 GiB or more (on every rank).
    public func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        try checkRank(root, role: "root")
        var counts = [Int64](repeating: 0, count: size)
        try withUnsafeBytes(of: Int64(bytes.count)) { count in
            try counts.withUnsafeMutableBytes { try handle.allgather(count.baseAddress, into: $0.baseAddress) }
        }
        let total = counts.reduce(0, +)
        guard total <= Int64(Int32.max) else {
            throw CheckpointError(
                .invalidConfiguration,
                "gather carries at most \(Int32.max) bytes in all but the ranks passed \(total); send large data in parts"
            )
        }
        guard rank == root else {
            try bytes.withUnsafeBytes {
                try handle.gatherv(
                    $0.baseAddress,
                    count: bytes.count,
                    into: nil,
                    counts: nil,
                    displacements: nil,
                    root: root
                )
            }
            return nil
        }
        let lengths = counts.map { Int32($0) }
        var displacements: [Int32] = []
        var offset: Int32 = 0
        for length in lengths {
            displacements.append(offset)
            offset += length
        }
        var all = [UInt8](repeating: 0, count: Int(total))
        try bytes.withUnsafeBytes { bytes in
            try all.withUnsafeMutableBytes { all in
                try lengths.withUnsafeBufferPointer { lengths in
                    try displacements.withUnsafeBufferPointer {
                        try handle.gatherv(
                            bytes.baseAddress,
                            count: bytes.count,
                            into: all.baseAddress,
                            counts: lengths.baseAddress,
                            displacements: $0.baseAddress,
                            root: root
                        )
                    }
                }
            }
        }
        return zip(displacements, lengths).map { start, length in Array(all[Int(start)..<Int(start + length)]) }
    }

    // MARK: Point to point

    /// Sends bytes to rank `destination` with `tag`, without waiting for the receive.
    ///
    /// The bytes are copied and sent with `MPI_Isend`; the library completes the send later (in
    /// later sends and receives, and at ``finalize()``), so two neighbours that both send and then
    /// receive never deadlock, whatever the size.
    /// - Parameters:
    ///   - bytes: At most 2 GiB − 1 bytes.
    ///   - destination: The receiving rank (may be this rank).
    ///   - tag: `0...MPI_TAG_UB` (at least 32767); messages with the same source, destination and
    ///     tag arrive in the order they were sent.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` for a rank or tag out of range
    ///   or too many bytes; the error of an earlier send that failed.
    public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
        try checkRank(destination, role: "destination")
        try checkTag(tag)
        guard bytes.count <= Int(Int32.max) else {
            throw CheckpointError(
                .invalidConfiguration,
                "a message carries at most \(Int32.max) bytes, not \(bytes.count); send it in parts"
            )
        }
        try bytes.withUnsafeBytes { try handle.send($0, to: destination, tag: tag) }
    }

    /// Waits for the next bytes rank `source` sent with `tag`, of any length (`MPI_Mprobe`,
    /// `MPI_Get_count`, `MPI_Mrecv`).
    /// - Parameters:
    ///   - source: The sending rank (may be this rank).
    ///   - tag: The tag the sender used.
    /// - Returns: The message's bytes.
    /// - Throws: ``CheckpointError`` with code `invalidConfiguration` for a rank or tag out of range.
    public func receive(from source: Int, tag: Int) throws -> [UInt8] {
        try checkRank(source, role: "source")
        try checkTag(tag)
        try MPIRuntime.progress()
        let (message, count) = try handle.probe(from: source, tag: tag)
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try handle.receive(message, into: $0) }
        return bytes
    }

    // MARK: Checks

    private func checkRank(_ value: Int, role: String) throws(CheckpointError) {
        guard (0..<size).contains(value) else {
            throw CheckpointError(
                .invalidConfiguration,
                "\(role) rank \(value) does not exist; the MPI communicator has \(size) ranks"
            )
        }
    }

    private func checkTag(_ tag: Int) throws(CheckpointError) {
        guard (0...tagUpperBound).contains(tag) else {
            throw CheckpointError(.invalidConfiguration, "tag \(tag) is outside 0...\(tagUpperBound) (MPI_TAG_UB)")
        }
    }
}
#endif
