extension Checkpointer.Configuration {
    /// Whether the ranks of a node write one file together (Documentation/Aggregation.md).
    ///
    /// With ``perNode``, every rank encodes its shard as usual and sends it to its node's aggregator
    /// (the node's lowest rank, by ``Communicator/nodeName``), which writes one aggregated file per
    /// node per checkpoint: the files a checkpoint creates on a parallel file system equal the
    /// number of nodes, not of ranks. Each rank's shard is a region of that file, byte-for-byte a
    /// shard of its own, and restore reads only its region. Needs the shared level (not
    /// ``redundancy``, whose node-local stores already keep files off the shared file system).
    public struct Aggregation: Sendable, Hashable, CustomStringConvertible {
        private enum Value: Hashable { case off, perNode }
        private let value: Value

        /// A file per rank per checkpoint (the default).
        public static let off = Aggregation(value: .off)
        /// A file per node per checkpoint, written by the node's lowest rank.
        public static let perNode = Aggregation(value: .perNode)

        /// Whether shards are aggregated.
        public var isOn: Bool { value == .perNode }

        /// `"off"` or `"per node"`.
        public var description: String { isOn ? "per node" : "off" }

        func validate(redundancy: Redundancy?) throws(CheckpointError) {
            guard isOn, redundancy != nil else { return }
            throw CheckpointError(
                .invalidConfiguration,
                "aggregation writes one file per node to the shared directory; with redundancy the node-local stores already keep checkpoints off the shared file system: turn one of them off"
            )
        }
    }
}
