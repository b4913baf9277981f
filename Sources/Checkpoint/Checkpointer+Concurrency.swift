import Foundation
import Logging

/// `async` counterparts of the restore, save, safe-point and finish methods, for callers in an
/// `async` context (an actor, a task, an `async` `main`).
///
/// Each runs the blocking method on a thread of the checkpointer's own, and suspends the caller
/// until it returns: file I/O, `fsync` and collectives that wait for other ranks never block a
/// thread of Swift's cooperative pool (which has only as many threads as cores, so ranks blocking
/// in a collective on it could wait for each other forever). The calls of one checkpointer run
/// one at a time, in order. Cancelling the calling task does not interrupt a call: a collective
/// must complete on every rank.
///
/// ```swift
/// func run(communicator: any Communicator) async throws {
///     let checkpointer = try await Checkpointer.open(directory: "checkpoints", communicator: communicator)
///     var (sim, step) = try await checkpointer.restoreLatest(or: Simulation())
///     while step < 1_000 {
///         sim.advance()
///         step += 1
///         try await checkpointer.checkpoint(sim, step: step)
///     }
///     try await checkpointer.finish()
/// }
/// ```
extension Checkpointer {
    /// Opens a checkpoint directory like ``init(directory:communicator:configuration:logger:)``,
    /// without blocking the cooperative pool (with several ranks, opening is collective and waits
    /// for every rank).
    ///
    /// - Parameters:
    ///   - directory: The directory path (the same on every rank).
    ///   - communicator: The ranks that checkpoint together; default: this process alone.
    ///   - configuration: Options; see ``Configuration``.
    ///   - logger: Where to log commits, fallbacks and cleanups.
    /// - Returns: The checkpointer.
    /// - Throws: What ``init(directory:communicator:configuration:logger:)`` throws.
    public static func open(
        directory: String,
        communicator: any Communicator = SingleProcessCommunicator(),
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "swift-checkpoint")
    ) async throws -> Checkpointer {
        let worker = BlockingWorker(name: "checkpoint-open-rank-\(communicator.rank)")
        defer { worker.stop() }
        return try await worker.run {
            try Checkpointer(
                directory: directory,
                communicator: communicator,
                configuration: configuration,
                logger: logger
            )
        }
    }

    // MARK: Restoring

    /// Restores the newest checkpoint that verifies into a new value, without blocking the
    /// cooperative pool; see ``restoreLatest(_:)-(State.Type)``.
    ///
    /// - Parameter type: The state's type.
    /// - Returns: The state and its step, or `nil` when the directory holds no checkpoint at all.
    /// - Throws: What the synchronous `restoreLatest(_:)` throws.
    public func restoreLatest<State: Checkpointable>(_ type: State.Type) async throws -> (state: State, step: Step)? {
        try await blockingWorker.run { [self] in try restoreLatest(type) }
    }

    /// Restores the newest `Codable` state, without blocking the cooperative pool.
    ///
    /// - Parameter type: The state's type.
    /// - Returns: The state and its step, or `nil` when the directory holds no checkpoint at all.
    /// - Throws: What the synchronous `restoreLatest(_:)` throws.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(_ type: State.Type) async throws -> (state: State, step: Step)? {
        try await blockingWorker.run { [self] in try restoreLatest(type) }
    }

    /// Restores the newest checkpoint, or returns `initial` at step 0 when there is none, without
    /// blocking the cooperative pool.
    ///
    /// - Parameter initial: The state to start from when the directory holds no checkpoint; evaluated only then,
    ///   in the caller's context.
    /// - Returns: The restored state and its step, or `initial` and step 0.
    /// - Throws: What the synchronous `restoreLatest(_:)` throws, or what `initial` throws.
    public func restoreLatest<State: Checkpointable>(
        or initial: @autoclosure () throws -> State
    ) async throws -> (state: State, step: Step) {
        try await restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores the newest `Codable` checkpoint, or returns `initial` at step 0 when there is
    /// none, without blocking the cooperative pool.
    ///
    /// - Parameter initial: The state to start from when the directory holds no checkpoint; evaluated only then,
    ///   in the caller's context.
    /// - Returns: The restored state and its step, or `initial` and step 0.
    /// - Throws: What the synchronous `restoreLatest(_:)` throws, or what `initial` throws.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(
        or initial: @autoclosure () throws -> State
    ) async throws -> (state: State, step: Step) {
        try await restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores everything in ``registry`` from the newest checkpoint that verifies, without
    /// blocking the cooperative pool; see ``restoreLatest()-8tbto``.
    ///
    /// - Returns: The restored step, or `nil` when there is no checkpoint (nothing is changed).
    /// - Throws: What the synchronous ``restoreLatest()-8tbto`` throws.
    @discardableResult
    public func restoreLatest() async throws -> Step? {
        try await blockingWorker.run { [self] in try restoreLatest() }
    }

    // MARK: Saving

    /// Saves `state` as the checkpoint of `step`, now, without blocking the cooperative pool; see
    /// ``save(_:step:metadata:)-(Checkpointable,_,_)``.
    ///
    /// - Parameters:
    ///   - state: The state to save.
    ///   - step: Identifies the checkpoint.
    ///   - metadata: Recorded in the manifest.
    /// - Returns: The committed checkpoint's manifest.
    /// - Throws: What the synchronous `save(_:step:metadata:)` throws.
    @discardableResult
    public func save<State: Checkpointable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) async throws -> Manifest {
        try await blockingWorker.run { [self] in try save(state, step: step, metadata: metadata) }
    }

    /// Saves a `Codable` value as the checkpoint of `step`, without blocking the cooperative pool.
    ///
    /// - Parameters:
    ///   - state: The value to save.
    ///   - step: Identifies the checkpoint.
    ///   - metadata: Recorded in the manifest.
    /// - Returns: The committed checkpoint's manifest.
    /// - Throws: What the synchronous `save(_:step:metadata:)` throws.
    @_disfavoredOverload
    @discardableResult
    public func save<State: Codable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) async throws -> Manifest {
        try await blockingWorker.run { [self] in try save(state, step: step, metadata: metadata) }
    }

    /// Saves everything in ``registry`` as the checkpoint of `step`, without blocking the cooperative pool.
    ///
    /// - Parameters:
    ///   - step: Identifies the checkpoint.
    ///   - metadata: Recorded in the manifest.
    /// - Returns: The committed checkpoint's manifest.
    /// - Throws: What the synchronous ``save(step:metadata:)-876x`` throws.
    @discardableResult
    public func save(step: Step, metadata: [String: String] = [:]) async throws -> Manifest {
        try await blockingWorker.run { [self] in try save(step: step, metadata: metadata) }
    }

    // MARK: Safe points

    /// A safe point that checkpoints `state` if it is due, without blocking the cooperative pool;
    /// see ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)``.
    ///
    /// - Parameters:
    ///   - state: The state to save if a checkpoint is due.
    ///   - step: The step the application has reached.
    ///   - metadata: Recorded in the manifest.
    /// - Returns: The manifest when a synchronous checkpoint was committed, else `nil`.
    /// - Throws: What the synchronous `checkpoint(_:step:metadata:)` throws.
    @discardableResult
    public func checkpoint<State: Checkpointable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) async throws -> Manifest? {
        try await blockingWorker.run { [self] in try checkpoint(state, step: step, metadata: metadata) }
    }

    /// A safe point for a `Codable` value, without blocking the cooperative pool.
    ///
    /// - Parameters:
    ///   - state: The value to save if a checkpoint is due.
    ///   - step: The step the application has reached.
    ///   - metadata: Recorded in the manifest.
    /// - Returns: The manifest when a synchronous checkpoint was committed, else `nil`.
    /// - Throws: What the synchronous `checkpoint(_:step:metadata:)` throws.
    @_disfavoredOverload
    @discardableResult
    public func checkpoint<State: Codable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) async throws -> Manifest? {
        try await blockingWorker.run { [self] in try checkpoint(state, step: step, metadata: metadata) }
    }

    /// A safe point for the ``registry``, without blocking the cooperative pool.
    ///
    /// - Parameters:
    ///   - step: The step the application has reached.
    ///   - metadata: Recorded in the manifest.
    /// - Returns: The manifest when a synchronous checkpoint was committed, else `nil`.
    /// - Throws: What the synchronous ``checkpoint(step:metadata:)`` throws.
    @discardableResult
    public func checkpoint(step: Step, metadata: [String: String] = [:]) async throws -> Manifest? {
        try await blockingWorker.run { [self] in try checkpoint(step: step, metadata: metadata) }
    }

    /// Waits, suspended, for a checkpoint still being written in the background and reports its
    /// outcome; see ``finish()-6l53m``.
    ///
    /// - Throws: The background checkpoint's error, if it failed.
    public func finish() async throws {
        try await blockingWorker.run { [self] in try finish() }
    }
}
