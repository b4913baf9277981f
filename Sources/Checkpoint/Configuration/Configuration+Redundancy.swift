extension Checkpointer.Configuration {
    /// Node-local checkpoints, a copy of each rank's shard on a partner rank, and a periodic flush
    /// to the shared directory: the levels SCR and VeloC call local, partner and file system.
    ///
    /// With redundancy each checkpoint is written to fast storage on the rank's own node
    /// (`localDirectory/rank-NNNNN`, e.g. a local SSD or `/dev/shm`), and, through the
    /// communicator, a copy of it to a partner rank, chosen on another node when the ranks run on
    /// several (``Communicator/nodeName``). Every ``flushEvery``-th checkpoint is also written to the
    /// checkpointer's (shared) directory. A restart restores from the node-local copy, recovers a
    /// rank whose node-local files are gone from its partner's copy, and falls back to the
    /// newest flushed checkpoint when both copies are gone.
    ///
    /// What each level survives:
    /// - node-local only: a crash of the job (the node's disk keeps the files);
    /// - with the partner copy: the loss of one node (or of one rank's files);
    /// - flushed: the loss of every node, at the cost of up to `flushEvery - 1` newer checkpoints.
    ///
    /// Restarting on a different number of ranks needs a flushed checkpoint.
    public struct Redundancy: Sendable, Equatable {
        /// The node-local folder (the same path on every node); rank `r` uses `localDirectory/rank-r`.
        public var localDirectory: String
        /// Whether each rank also stores a copy of its partner's shard. Default: `true`.
        public var partnerCopy: Bool
        /// Every this-many-th checkpoint is also written to the shared directory. Default: 10.
        public var flushEvery: Int
        /// The size of the XOR sets that protect the node-local shards, or `nil` for none. Default: `nil`.
        ///
        /// Ranks form sets of this many members on as many different nodes; each member stores
        /// beside its shard the XOR parity of one part of every other member's shard, so the
        /// shards of one lost member per set are rebuilt from the others: `1 / (setSize - 1)`
        /// extra bytes instead of a partner copy's 1×. At least 3 (a set of 2 is a partner copy)
        /// and at most the number of ranks; the job must run on at least `setSize` nodes.
        /// Combines with ``partnerCopy``: a restart tries the XOR set first, then the partner copy,
        /// then the newest flushed checkpoint.
        public var xorSetSize: Int?

        /// Creates a redundancy configuration.
        /// - Parameters:
        ///   - localDirectory: The node-local folder (created if missing).
        ///   - partnerCopy: Whether each rank keeps a copy of a partner's shard.
        ///   - flushEvery: How often a checkpoint also goes to the shared directory (at least 1).
        public init(localDirectory: String, partnerCopy: Bool = true, flushEvery: Int = 10) {
            self.localDirectory = localDirectory
            self.partnerCopy = partnerCopy
            self.flushEvery = flushEvery
        }

        /// Creates a redundancy configuration protected by XOR sets.
        /// - Parameters:
        ///   - localDirectory: The node-local folder (created if missing).
        ///   - xorSetSize: The number of ranks (on as many nodes) per XOR set, at least 3.
        ///   - partnerCopy: Whether each rank also keeps a copy of a partner's shard.
        ///   - flushEvery: How often a checkpoint also goes to the shared directory (at least 1).
        public init(localDirectory: String, xorSetSize: Int, partnerCopy: Bool = false, flushEvery: Int = 10) {
            self.init(localDirectory: localDirectory, partnerCopy: partnerCopy, flushEvery: flushEvery)
            self.xorSetSize = xorSetSize
        }

        func validate() throws(CheckpointError) {
            guard !localDirectory.isEmpty else {
                throw CheckpointError(.invalidConfiguration, "redundancy.localDirectory must not be empty")
            }
            guard flushEvery >= 1 else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "redundancy.flushEvery must be at least 1 (1 flushes every checkpoint), not \(flushEvery)"
                )
            }
            if let xorSetSize, xorSetSize < 3 {
                throw CheckpointError(
                    .invalidConfiguration,
                    "redundancy.xorSetSize must be at least 3, not \(xorSetSize) (for 2, use partnerCopy instead)"
                )
            }
        }
    }
}
