import Foundation
import Logging
import Synchronization

extension Checkpointer {

    /// Restores the newest checkpoint that verifies into a new value.
    ///
    /// Damaged checkpoints (checksum, truncation, missing files) are skipped with a logged warning
    /// and older ones tried; with several ranks, the ranks agree on the newest checkpoint that all
    /// of them can restore.
    /// - Returns: The state and its step, or `nil` when the directory holds no checkpoint at all.
    /// - Throws: `noCheckpoint` when checkpoints exist but none verifies; `rankCountMismatch` when
    ///   the newest was written by another number of ranks and records no block layout (see
    ///   ``SnapshotReader/read(_:_:block:)``); `layoutMissing`, `layoutMismatch` when it cannot be
    ///   re-partitioned as asked; `typeMismatch`, `shapeMismatch`,
    ///   `entryMissing`, `decodingFailed` when the newest good checkpoint does not fit the type (an
    ///   older one would not either); whatever `init(from:)` throws.
    public func restoreLatest<State: Checkpointable>(_ type: State.Type) throws -> (state: State, step: Step)? {
        try restoreNewest { try State(from: $0) }
    }

    /// Restores the newest `Codable` state saved with `save(_:step:metadata:)`.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(_ type: State.Type) throws -> (state: State, step: Step)? {
        try restoreNewest { try CodableState<State>(from: $0).value }
    }

    /// Restores the newest checkpoint, or returns `initial` at step 0 when there is none.
    ///
    /// `initial` is evaluated only when there is no checkpoint, and may throw (an initializer that
    /// partitions a domain with ``BlockLayout/partition(_:part:of:)``, for example).
    /// - Parameter initial: The state to start from when the directory holds no checkpoint.
    /// - Returns: The restored state and its step, or `initial` and step 0.
    /// - Throws: What `restoreLatest(_:)` throws, or what `initial` throws.
    public func restoreLatest<State: Checkpointable>(
        or initial: @autoclosure () throws -> State
    ) throws -> (state: State, step: Step) {
        try restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores the newest `Codable` checkpoint, or returns `initial` at step 0 when there is none.
    ///
    /// - Parameter initial: The state to start from when the directory holds no checkpoint; evaluated only then.
    /// - Returns: The restored state and its step, or `initial` and step 0.
    /// - Throws: What `restoreLatest(_:)` throws, or what `initial` throws.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(
        or initial: @autoclosure () throws -> State
    ) throws -> (state: State, step: Step) {
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
    /// - Throws: When the directory cannot be listed.
    public func checkpoints() throws(CheckpointError) -> [Manifest] {
        try levels.shared.committedSteps().compactMap { step in try? directory.loadManifest(step: step) }
    }

    /// The restart agreement (collective), recording the restored step.
    func restoreNewest<Value>(_ build: (SnapshotReader) throws -> Value) throws -> (Value, Step)? {
        let restored = try restart.restoreNewest(build)
        if let restored { scheduler.restored(restored.1) }
        return restored
    }
}
