/// The run a checkpointer belongs to: every checkpoint it writes records the run and the checkpoint
/// it follows, and it restores only checkpoints of its run that follow their predecessor.
///
/// Lineage catches a checkpoint placed in the directory rather than written by this run: one of
/// another run (a different ``runID``), or one copied back from an earlier attempt or another
/// directory that does not follow the checkpoint before it here. Without a key anyone who can write
/// the directory can forge the record as well; with ``Authentication`` it cannot be forged, and
/// lineage adds what a MAC alone does not say: which run, in which order.
///
/// It cannot tell that newer checkpoints were deleted (the directory rolled back as a whole): only a
/// record kept elsewhere can. Pair it with ``Lineage/init(runID:atLeast:)`` when the workflow knows
/// the last step it saw.
///
/// ```swift
/// var configuration = Checkpointer.Configuration()
/// configuration.lineage = try Lineage(runID: "heat-2026-12-05")
/// ```
public struct Lineage: Sendable, Hashable {
    /// The run's identifier, e.g. a Slurm job ID (kept across requeues) or a name of your own.
    public var runID: String
    /// Restore refuses to go back further than this step: with a checkpoint of at least this step
    /// expected and none found, it throws instead of restoring an older one.
    public var atLeast: Step?

    /// A run.
    /// - Parameters:
    ///   - runID: The run's identifier: 1 to 256 printable characters.
    ///   - atLeast: The newest step the workflow knows was committed, if it knows one.
    /// - Throws: `invalidConfiguration` when the identifier is empty, too long or holds control characters.
    public init(runID: String, atLeast: Step? = nil) throws(CheckpointError) {
        guard (1...256).contains(runID.unicodeScalars.count),
            !runID.unicodeScalars.contains(where: PrintableText.needsEscape)
        else {
            throw CheckpointError(
                .invalidConfiguration,
                "a lineage run ID must be 1 to 256 characters without control characters"
            )
        }
        self.runID = runID
        self.atLeast = atLeast
    }
}

extension Manifest {
    /// Where a checkpoint stands in its run (see ``Checkpoint/Lineage``).
    public struct Lineage: Codable, Sendable, Hashable {
        /// The run that wrote it.
        public var runID: String
        /// The checkpoint this run committed or restored just before it; `nil` for a run's first.
        public var previous: Link?
    }

    /// A reference to a committed checkpoint: its step and the digest of its manifest.
    public struct Link: Codable, Sendable, Hashable {
        /// The step.
        public var step: Step
        /// SHA-256 of its manifest as ``Manifest/lineageDigest()`` computes it.
        public var manifestSHA256: String
    }

    /// The digest a successor's ``Link`` records: SHA-256 of the manifest's canonical encoding
    /// without its dump records and key record (those may differ between copies of one checkpoint).
    /// - Throws: `encodingFailed` (not expected).
    public func lineageDigest() throws(CheckpointError) -> String {
        var canonical = self
        canonical.dumps = nil
        canonical.authentication = nil
        return hexString(sha256(try canonical.encoded()))
    }

    /// The link a successor records to this checkpoint.
    func link() throws(CheckpointError) -> Link { Link(step: step, manifestSHA256: try lineageDigest()) }
}
