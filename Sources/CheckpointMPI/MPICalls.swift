#if MPI
import CMPI
import Checkpoint
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Every MPI call of the module lives in this file. Each one goes through `MPIRuntime.call`, which
// serializes it when the MPI library does not provide MPI_THREAD_MULTIPLE and turns a failure
// into a `CheckpointError` with MPI's own explanation (communicators use MPI_ERRORS_RETURN).
// Swift never names the type behind a handle (a pointer in Open MPI, an int in MPICH): handles
// come from the shim's getters and live in the shim's `cmpi_*` structs.

/// A communicator handle that Swift can store and send across threads.
///
/// MPI handles are plain values, valid in every thread of the process until freed.
struct MPIHandle: @unchecked Sendable {
    var raw: cmpi_comm

    /// The communicator of the portable integer handle an application got from `MPI_Comm_c2f`.
    init(fortranHandle: Int32) throws(CheckpointError) {
        raw = cmpi_comm_from_fortran(fortranHandle)
        guard cmpi_comm_is_valid(raw) != 0 else {
            throw CheckpointError(
                .invalidConfiguration,
                "Fortran handle \(fortranHandle) is not a communicator; pass the value MPI_Comm_c2f returned for one"
            )
        }
    }

    private init(raw: cmpi_comm) { self.raw = raw }

    /// `MPI_COMM_WORLD`.
    static var world: MPIHandle { MPIHandle(raw: cmpi_comm_world()) }

    /// The portable integer handle (`MPI_Comm_c2f`).
    var fortranHandle: Int32 { cmpi_comm_to_fortran(raw) }

    // MARK: Communicator management

    /// A new communicator over the same processes (collective) whose errors come back as return codes.
    func duplicate() throws(CheckpointError) -> MPIHandle {
        var duplicate = cmpi_comm_null()
        try MPIRuntime.call("MPI_Comm_dup") { MPI_Comm_dup(raw.handle, &duplicate.handle) }
        do {
            try MPIRuntime.call("MPI_Comm_set_errhandler") {
                MPI_Comm_set_errhandler(duplicate.handle, cmpi_errors_return())
            }
        } catch {
            MPIHandle(raw: duplicate).free()
            throw error
        }
        return MPIHandle(raw: duplicate)
    }

    /// Releases the communicator unless MPI is already finalized; errors are ignored (nothing to do about them).
    ///
    /// Safe from any thread, also while the process exits: a communicator's last reference may go
    /// away on a background thread while the main thread finalizes MPI at exit.
    func free() {
        var handle = raw
        MPIRuntime.unlessFinalized {
            _ = try? MPIRuntime.call("MPI_Comm_free") { MPI_Comm_free(&handle.handle) }
        }
    }

    /// The ranks that share memory with this one (`MPI_Comm_split_type` with
    /// `MPI_COMM_TYPE_SHARED`, collective): the lowest of them and its host name.
    func sharedMemoryGroup(rank: Int) throws(CheckpointError) -> (leader: Int, hostName: String) {
        var split = cmpi_comm_null()
        try MPIRuntime.call("MPI_Comm_split_type") {
            MPI_Comm_split_type(raw.handle, cmpi_comm_type_shared(), Int32(rank), cmpi_info_null(), &split.handle)
        }
        let group = MPIHandle(raw: split)
        defer { group.free() }
        // Keyed by rank, so the group's rank 0 is its lowest rank; it tells the others its rank and host name.
        let isLeader = try group.rank() == 0
        // Typed throws cannot pass through Array's closures: the messages go through raw buffers.
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
        defer { header.deallocate() }
        let hostName = Array(NodeName.hostName.utf8.prefix(255))
        header.storeBytes(of: Int64(isLeader ? rank : 0), toByteOffset: 0, as: Int64.self)
        header.storeBytes(of: Int64(isLeader ? hostName.count : 0), toByteOffset: 8, as: Int64.self)
        try group.broadcast(header.baseAddress, count: 16, root: 0)
        let leader = Int(header.load(fromByteOffset: 0, as: Int64.self))
        let length = Int(header.load(fromByteOffset: 8, as: Int64.self))
        guard (0...255).contains(length) else {
            throw CheckpointError(.ioFailure, "the shared-memory group's leader sent a host name of \(length) bytes")
        }
        let name = UnsafeMutableRawBufferPointer.allocate(byteCount: max(length, 1), alignment: 1)
        defer { name.deallocate() }
        if isLeader { name.copyBytes(from: hostName) }
        try group.broadcast(name.baseAddress, count: length, root: 0)
        return (leader, String(decoding: UnsafeRawBufferPointer(rebasing: name[0..<length]), as: UTF8.self))
    }

    func rank() throws(CheckpointError) -> Int {
        var rank: Int32 = 0
        try MPIRuntime.call("MPI_Comm_rank") { MPI_Comm_rank(raw.handle, &rank) }
        return Int(rank)
    }

    func size() throws(CheckpointError) -> Int {
        var size: Int32 = 0
        try MPIRuntime.call("MPI_Comm_size") { MPI_Comm_size(raw.handle, &size) }
        return Int(size)
    }

    /// The largest tag the implementation accepts (`MPI_TAG_UB`, at least 32767).
    func tagUpperBound() throws(CheckpointError) -> Int {
        var attribute: UnsafeMutableRawPointer?
        var found: Int32 = 0
        try MPIRuntime.call("MPI_Comm_get_attr(MPI_TAG_UB)") {
            MPI_Comm_get_attr(raw.handle, cmpi_tag_ub_key(), &attribute, &found)
        }
        guard found != 0, let attribute else { return 32767 }
        return Int(attribute.load(as: Int32.self))
    }

    /// Ends every process of the job; does not take the serialization lock, so it works while
    /// another thread is blocked in MPI.
    func abort(code: Int32) -> Never {
        _ = MPI_Abort(raw.handle, code)
        // MPI_Abort does not return; if an implementation ever does, still end this process.
        _exit(code == 0 ? 1 : code)
    }

    // MARK: Collectives
    //
    // Each collective starts as its nonblocking form and is completed by `MPIRuntime.complete`,
    // so that with serialized calls no thread holds the lock while it waits for peers. Buffers and
    // count arrays must stay valid until completion: callers pass pointers that outlive the call.

    func barrier() throws(CheckpointError) {
        var request = cmpi_request_null()
        try MPIRuntime.call("MPI_Ibarrier") { MPI_Ibarrier(raw.handle, &request.handle) }
        try MPIRuntime.complete(&request, "MPI_Ibarrier")
    }

    /// Broadcasts `count` bytes (at most `Int32.max`) at `buffer` from `root`.
    func broadcast(_ buffer: UnsafeMutableRawPointer?, count: Int, root: Int) throws(CheckpointError) {
        var request = cmpi_request_null()
        try MPIRuntime.call("MPI_Ibcast") {
            MPI_Ibcast(buffer, Int32(count), cmpi_byte(), Int32(root), raw.handle, &request.handle)
        }
        try MPIRuntime.complete(&request, "MPI_Ibcast")
    }

    /// Combines `count` 64-bit integers element-wise into `result` on every rank.
    func allreduce(
        _ values: UnsafeRawPointer?,
        into result: UnsafeMutableRawPointer?,
        count: Int,
        _ operation: ReductionOperation
    ) throws(CheckpointError) {
        let op =
            switch operation {
            case .min: cmpi_op_min()
            case .max: cmpi_op_max()
            case .sum: cmpi_op_sum()
            }
        var request = cmpi_request_null()
        try MPIRuntime.call("MPI_Iallreduce") {
            MPI_Iallreduce(values, result, Int32(count), cmpi_int64(), op, raw.handle, &request.handle)
        }
        try MPIRuntime.complete(&request, "MPI_Iallreduce")
    }

    /// Gathers one 64-bit integer from every rank into `result` (room for `size` values), in rank order, on every rank.
    func allgather(_ value: UnsafeRawPointer?, into result: UnsafeMutableRawPointer?) throws(CheckpointError) {
        var request = cmpi_request_null()
        try MPIRuntime.call("MPI_Iallgather") {
            MPI_Iallgather(value, 1, cmpi_int64(), result, 1, cmpi_int64(), raw.handle, &request.handle)
        }
        try MPIRuntime.complete(&request, "MPI_Iallgather")
    }

    /// Gathers `count` bytes from every rank into `result` on `root`, at `displacements`.
    /// `result`, `counts` and `displacements` (one per rank) matter on the root only.
    func gatherv(
        _ bytes: UnsafeRawPointer?,
        count: Int,
        into result: UnsafeMutableRawPointer?,
        counts: UnsafePointer<Int32>?,
        displacements: UnsafePointer<Int32>?,
        root: Int
    ) throws(CheckpointError) {
        var request = cmpi_request_null()
        try MPIRuntime.call("MPI_Igatherv") {
            MPI_Igatherv(
                bytes,
                Int32(count),
                cmpi_byte(),
                result,
                counts,
                displacements,
                cmpi_byte(),
                Int32(root),
                raw.handle,
                &request.handle
            )
        }
        try MPIRuntime.complete(&request, "MPI_Igatherv")
    }

    // MARK: Point to point

    /// Starts sending a copy of `bytes` (at most `Int32.max`); the runtime completes it later.
    func send(_ bytes: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws(CheckpointError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        buffer.copyMemory(from: bytes)
        var request = cmpi_request_null()
        do {
            try MPIRuntime.call("MPI_Isend") {
                MPI_Isend(
                    buffer.baseAddress,
                    Int32(bytes.count),
                    cmpi_byte(),
                    Int32(destination),
                    Int32(tag),
                    raw.handle,
                    &request.handle
                )
            }
        } catch {
            buffer.deallocate()
            throw error
        }
        try MPIRuntime.track(PendingSend(request: request, buffer: buffer, destination: destination, tag: tag))
    }

    /// Waits for the next message from `source` with `tag` and returns its length; `receive(_:into:)` takes it.
    ///
    /// A matched probe (`MPI_Mprobe`/`MPI_Improbe`), so that no other thread's receive can take
    /// the message between learning its length and receiving it.
    func probe(from source: Int, tag: Int) throws(CheckpointError) -> (message: MPIMessage, count: Int) {
        var message = cmpi_message_null()
        var status = MPI_Status()
        if MPIRuntime.serializesCalls {
            var found: Int32 = 0
            while true {
                try MPIRuntime.call("MPI_Improbe") {
                    MPI_Improbe(Int32(source), Int32(tag), raw.handle, &found, &message.handle, &status)
                }
                if found != 0 { break }
                sched_yield()
            }
        } else {
            try MPIRuntime.call("MPI_Mprobe") {
                MPI_Mprobe(Int32(source), Int32(tag), raw.handle, &message.handle, &status)
            }
        }
        var count: Int32 = 0
        try MPIRuntime.call("MPI_Get_count") { MPI_Get_count(&status, cmpi_byte(), &count) }
        guard count != cmpi_undefined(), count >= 0 else {
            throw CheckpointError(
                .ioFailure,
                "a message from rank \(source) with tag \(tag) is too large to receive (2 GiB or more)"
            )
        }
        return (MPIMessage(raw: message), Int(count))
    }

    /// Receives a probed message into `buffer`, which has room for its length.
    func receive(_ message: MPIMessage, into buffer: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
        var message = message.raw
        var request = cmpi_request_null()
        try MPIRuntime.call("MPI_Imrecv") {
            MPI_Imrecv(buffer.baseAddress, Int32(buffer.count), cmpi_byte(), &message.handle, &request.handle)
        }
        try MPIRuntime.complete(&request, "MPI_Imrecv")
    }
}

/// A message matched by a probe, to be received exactly once.
struct MPIMessage {
    var raw: cmpi_message
}

/// A send in flight: the request and the copy of the bytes MPI reads until it completes.
///
/// Owned by `MPIRuntime`'s locked state from creation to completion, so it never is shared.
struct PendingSend: @unchecked Sendable {
    var request: cmpi_request
    var buffer: UnsafeMutableRawBufferPointer
    var destination: Int
    var tag: Int
}

/// Process-wide MPI state: initialization, the thread level, serialization, and buffered sends.
enum MPIRuntime {
    private struct State {
        var initializedHere = false
        var pending: [PendingSend] = []
    }

    private static let state = Mutex(State())
    /// Held around every MPI call when the library provides less than MPI_THREAD_MULTIPLE.
    private static let callLock = Mutex(())
    private static let serializeCalls = Atomic<Bool>(false)
    private static let finalizedHere = Atomic<Bool>(false)

    // MARK: Calling

    /// Runs one MPI call (serialized when needed) and throws a ``CheckpointError`` when it fails.
    static func call(_ operation: String, _ body: () -> Int32) throws(CheckpointError) {
        guard !finalizedHere.load(ordering: .acquiring) else {
            throw CheckpointError(
                .invalidConfiguration,
                "\(operation) called after MPICommunicator.finalize(); MPI cannot be used again"
            )
        }
        let code = serializeCalls.load(ordering: .relaxed) ? callLock.withLock { _ in body() } : body()
        guard code != cmpi_success() else { return }
        throw error(code: code, operation: operation)
    }

    /// The error for a failed call, with the implementation's explanation.
    static func error(code: Int32, operation: String) -> CheckpointError {
        var errorClass: Int32 = 0
        if MPI_Error_class(code, &errorClass) != cmpi_success() { errorClass = code }
        var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        let explanation =
            MPI_Error_string(code, &text, &length) == cmpi_success()
            ? String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            : "MPI error \(code)"
        let underlying = MPIError(
            code: Int(code),
            errorClass: Int(errorClass),
            operation: operation,
            explanation: explanation
        )
        if cmpi_error_class_is_argument(errorClass) != 0 {
            return CheckpointError(
                .invalidConfiguration,
                "\(operation) rejected its arguments: \(explanation)",
                underlying: underlying
            )
        }
        if cmpi_error_class_is_process_failure(errorClass) != 0 {
            return CheckpointError(
                .peerFailed,
                "\(operation) failed because a peer process died: \(explanation)",
                underlying: underlying
            )
        }
        return CheckpointError(
            .ioFailure,
            "\(operation) failed: \(explanation); check the MPI job's network and processes",
            underlying: underlying
        )
    }

    /// Waits until a started operation completes: `MPI_Wait` when MPI provides MPI_THREAD_MULTIPLE;
    /// otherwise `MPI_Test` in a loop that releases the lock between tests, so that other threads
    /// (the application's, a background checkpoint's) can use MPI meanwhile.
    static func complete(_ request: inout cmpi_request, _ operation: String) throws(CheckpointError) {
        guard serializesCalls else {
            try call(operation) { MPI_Wait(&request.handle, cmpi_status_ignore()) }
            return
        }
        var completed: Int32 = 0
        while true {
            try call(operation) { MPI_Test(&request.handle, &completed, cmpi_status_ignore()) }
            if completed != 0 { return }
            sched_yield()
        }
    }

    // MARK: Initialization

    /// Whether this process's MPI was finalized (by ``MPICommunicator/finalize()`` or the application).
    static var isFinalized: Bool {
        if finalizedHere.load(ordering: .acquiring) { return true }
        var flag: Int32 = 0
        return MPI_Finalized(&flag) == cmpi_success() && flag != 0
    }

    /// Initializes MPI asking for MPI_THREAD_MULTIPLE unless the application already did, and
    /// learns the thread level MPI provides.
    static func initializeIfNeeded() throws(CheckpointError) {
        try state.withLock { (state) throws(CheckpointError) in
            guard !isFinalized else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "MPI was already finalized in this process; it cannot be initialized again"
                )
            }
            var initialized: Int32 = 0
            guard MPI_Initialized(&initialized) == cmpi_success() else {
                throw CheckpointError(.ioFailure, "MPI_Initialized failed; the MPI library is not usable")
            }
            if initialized == 0 {
                var provided: Int32 = 0
                let code = MPI_Init_thread(nil, nil, cmpi_thread_multiple(), &provided)
                guard code == cmpi_success() else {
                    throw CheckpointError(
                        .ioFailure,
                        "MPI_Init_thread failed (error \(code)); start the program with mpirun or srun on a working MPI installation"
                    )
                }
                state.initializedHere = true
                #if canImport(Glibc)
                on_exit({ status, _ in MPIRuntime.finalizeAtExit(status: status) }, nil)
                #else
                atexit { MPIRuntime.finalizeAtExit(status: 0) }
                #endif
            }
        }
        try learnThreadLevel()
    }

    /// Checks that the application initialized MPI (and has not finalized it), and learns the thread level.
    static func requireInitialized() throws(CheckpointError) {
        var initialized: Int32 = 0
        guard MPI_Initialized(&initialized) == cmpi_success(), initialized != 0 else {
            throw CheckpointError(
                .invalidConfiguration,
                "MPI is not initialized; call MPI_Init_thread first, or use MPICommunicator.world() to let this library do it"
            )
        }
        guard !isFinalized else {
            throw CheckpointError(.invalidConfiguration, "MPI was already finalized in this process")
        }
        try learnThreadLevel()
    }

    /// Serializes every call from now on when MPI does not provide MPI_THREAD_MULTIPLE.
    static func learnThreadLevel() throws(CheckpointError) {
        var provided: Int32 = 0
        try call("MPI_Query_thread") { MPI_Query_thread(&provided) }
        if provided < cmpi_thread_multiple() { serializeCalls.store(true, ordering: .relaxed) }
    }

    /// Whether MPI calls are serialized through one lock (the library provides less than MPI_THREAD_MULTIPLE).
    static var serializesCalls: Bool { serializeCalls.load(ordering: .relaxed) }

    /// Serializes every call from now on, as if MPI provided less than MPI_THREAD_MULTIPLE (tests).
    static func forceSerializedCalls() { serializeCalls.store(true, ordering: .relaxed) }

    /// The first line of `MPI_Get_library_version`, shortened: `"Open MPI v4.1.4"`, `"MPICH 4.0.2"`.
    static let libraryVersion: String = {
        var text = [CChar](repeating: 0, count: Int(cmpi_max_library_version_string()) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&text, &length) == cmpi_success() else { return "unknown version" }
        let full = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let firstLine = full.split(whereSeparator: \.isNewline).first.map(String.init) ?? full
        let beforeComma = firstLine.split(separator: ",", maxSplits: 1).first.map(String.init) ?? firstLine
        let words = beforeComma.split(whereSeparator: \.isWhitespace).filter { $0 != "Version:" }
        return words.isEmpty ? "unknown version" : words.joined(separator: " ")
    }()

    // MARK: Buffered sends

    /// Keeps a started send until it completes, and completes whatever already has.
    static func track(_ send: PendingSend) throws(CheckpointError) {
        state.withLock { $0.pending.append(send) }
        try progress()
    }

    /// Releases the sends that completed; throws the first that failed.
    static func progress() throws(CheckpointError) {
        try state.withLock { (state) throws(CheckpointError) in
            var failure: CheckpointError?
            var index = 0
            while index < state.pending.count {
                var completed: Int32 = 0
                do throws(CheckpointError) {
                    try call("MPI_Test") {
                        MPI_Test(&state.pending[index].request.handle, &completed, cmpi_status_ignore())
                    }
                } catch {
                    let send = state.pending[index]
                    failure =
                        failure
                        ?? CheckpointError(
                            error.code,
                            "sending to rank \(send.destination) with tag \(send.tag) failed: \(error.message)",
                            underlying: error.underlying
                        )
                    completed = 1
                }
                if completed != 0 {
                    state.pending.swapAt(index, state.pending.count - 1)
                    state.pending.removeLast().buffer.deallocate()
                } else {
                    index += 1
                }
            }
            if let failure { throw failure }
        }
    }

    /// Runs `body` unless MPI is finalized, never at the same time as ``finalize()``.
    ///
    /// MPICH's `MPI_Finalize` destroys its global mutex and aborts ("pthread_mutex_destroy: Device
    /// or resource busy") when another thread is inside an MPI call meanwhile, such as
    /// `MPI_Comm_free` from a communicator released on a background thread as the process exits.
    static func unlessFinalized(_ body: () -> Void) {
        state.withLock { _ in
            guard !isFinalized else { return }
            body()
        }
    }

    /// Waits until every buffered send was received, then finalizes MPI if ``initializeIfNeeded()`` initialized it.
    static func finalize() throws(CheckpointError) {
        try state.withLock { (state) throws(CheckpointError) in
            guard !isFinalized else { return }
            var failure: CheckpointError?
            for index in state.pending.indices {
                do throws(CheckpointError) {
                    try call("MPI_Wait") { MPI_Wait(&state.pending[index].request.handle, cmpi_status_ignore()) }
                } catch {
                    failure = failure ?? error
                }
                state.pending[index].buffer.deallocate()
            }
            state.pending.removeAll()
            if state.initializedHere {
                try call("MPI_Finalize") { MPI_Finalize() }
                finalizedHere.store(true, ordering: .releasing)
            }
            if let failure { throw failure }
        }
    }

    /// Finalizes MPI when the process exits with status 0. With another status it does not:
    /// Open MPI's `mpirun` and Slurm then end the other ranks, where `MPI_Finalize` would wait for
    /// them, possibly forever if they wait in a collective for this rank.
    private static func finalizeAtExit(status: Int32) {
        if status != 0 {
            standardError(
                "swift-checkpoint: exit status \(status): not finalizing MPI, so the launcher ends the other ranks\n"
            )
            return
        }
        do { try finalize() } catch {
            standardError("swift-checkpoint: finalizing MPI at exit failed: \(error)\n")
        }
    }

    private static func standardError(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
#endif
