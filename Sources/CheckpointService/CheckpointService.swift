import Checkpoint
import Logging
import ServiceLifecycle

/// A [swift-service-lifecycle](https://github.com/swift-server/swift-service-lifecycle) service
/// that snapshots a long-running service's state on the checkpointer's policy, and once more on
/// graceful shutdown.
///
/// Every `checkInterval` it asks `capture` for the state and its step (a number that grows with
/// every change, such as a count of applied writes; step 0 is the initial state, never saved) and
/// hands them to
/// ``Checkpoint/Checkpointer/checkpoint(_:step:metadata:)-(Checkpointable,_,_)``, which saves when
/// the configured ``Checkpoint/CheckpointPolicy`` says one is due. A step that has not grown since
/// the last snapshot is not saved again. A periodic snapshot that fails is logged and retried at
/// the next check; the service keeps running.
///
/// On graceful shutdown (SIGTERM through `ServiceGroup`'s `gracefulShutdownSignals`) it takes a
/// final snapshot of whatever changed, waits for background writes, and returns; that snapshot's
/// failure is thrown. `ServiceGroup` shuts services down in the reverse order of its list, so list
/// this service *before* the services that change the state (an HTTP server): they stop first,
/// finish the requests they accepted, and the final snapshot then holds every acknowledged change.
///
/// ```swift
/// let checkpointer = try await Checkpointer.open(directory: "state", configuration: configuration)
/// let store = Store(try await checkpointer.restoreLatest(Store.Entries.self)?.state ?? Store.Entries())
/// let snapshots = CheckpointService(checkpointer: checkpointer, logger: logger) { await store.snapshot() }
/// let group = ServiceGroup(
///     configuration: .init(
///         services: [.init(service: snapshots), .init(service: server)],
///         gracefulShutdownSignals: [.sigterm, .sigint],
///         logger: logger
///     )
/// )
/// try await group.run()
/// ```
///
/// When the task is cancelled instead (the group gives up after another service failed, or a
/// shutdown took too long), the service returns without a final snapshot: what changed since the
/// last one is lost, as in a crash.
public struct CheckpointService<State: Sendable>: Service {
    /// Returns the current state and its step.
    public typealias Capture = @Sendable () async throws -> (state: State, step: Step)

    private typealias Save = @Sendable (Checkpointer, State, Step, _ now: Bool) async throws -> Void

    /// The checkpointer that saves the snapshots.
    public let checkpointer: Checkpointer
    /// How often the service asks the policy whether a snapshot is due.
    public let checkInterval: Duration
    private let capture: Capture
    private let save: Save
    private let logger: Logger

    private init(
        checkpointer: Checkpointer,
        checkInterval: Duration,
        logger: Logger,
        capture: @escaping Capture,
        save: @escaping Save
    ) {
        precondition(checkInterval > .zero, "checkInterval must be positive")
        self.checkpointer = checkpointer
        self.checkInterval = checkInterval
        self.logger = logger
        self.capture = capture
        self.save = save
    }

    /// Runs until graceful shutdown, snapshotting on the policy, then takes the final snapshot.
    ///
    /// - Throws: The final snapshot's error, or `capture`'s during the final snapshot.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { [checkInterval] in try await Task.sleep(for: checkInterval) }
            } catch is CancellationError {}
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            do {
                try await snapshot(now: false)
            } catch {
                logger.error(
                    "a periodic snapshot failed; the service goes on and retries at the next check",
                    metadata: ["error": "\(error)"]
                )
            }
        }
        guard Task.isShuttingDownGracefully else { return }
        try await snapshot(now: true)
        try await checkpointer.finish()
        logger.info(
            "final snapshot taken",
            metadata: ["step": "\(checkpointer.lastCheckpointStep.map { "\($0)" } ?? "none")"]
        )
    }

    /// Takes a snapshot when the state changed since the last one and the policy says it is due
    /// (`now`: whenever the state changed).
    private func snapshot(now: Bool) async throws {
        let (state, step) = try await capture()
        guard step > (checkpointer.lastCheckpointStep ?? 0) else { return }
        try await save(checkpointer, state, step, now)
    }
}

extension CheckpointService where State: Checkpointable {
    /// A service that snapshots a ``Checkpoint/Checkpointable`` state.
    ///
    /// - Parameters:
    ///   - checkpointer: Saves the snapshots; its configuration's policy decides when.
    ///   - checkInterval: How often to ask the policy; default one second.
    ///   - logger: Where failed periodic snapshots are reported.
    ///   - capture: Returns the current state and its step; called on every check.
    public init(
        checkpointer: Checkpointer,
        checkInterval: Duration = .seconds(1),
        logger: Logger = Logger(label: "swift-checkpoint.service"),
        capture: @escaping Capture
    ) {
        self.init(checkpointer: checkpointer, checkInterval: checkInterval, logger: logger, capture: capture) {
            checkpointer,
            state,
            step,
            now in
            if now {
                try await checkpointer.save(state, step: step)
            } else {
                try await checkpointer.checkpoint(state, step: step)
            }
        }
    }
}

extension CheckpointService where State: Codable {
    /// A service that snapshots a `Codable` state.
    ///
    /// - Parameters:
    ///   - checkpointer: Saves the snapshots; its configuration's policy decides when.
    ///   - checkInterval: How often to ask the policy; default one second.
    ///   - logger: Where failed periodic snapshots are reported.
    ///   - capture: Returns the current state and its step; called on every check.
    @_disfavoredOverload
    public init(
        checkpointer: Checkpointer,
        checkInterval: Duration = .seconds(1),
        logger: Logger = Logger(label: "swift-checkpoint.service"),
        capture: @escaping Capture
    ) {
        self.init(checkpointer: checkpointer, checkInterval: checkInterval, logger: logger, capture: capture) {
            checkpointer,
            state,
            step,
            now in
            if now {
                try await checkpointer.save(state, step: step)
            } else {
                try await checkpointer.checkpoint(state, step: step)
            }
        }
    }
}
