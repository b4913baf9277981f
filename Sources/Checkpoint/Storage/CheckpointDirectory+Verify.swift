extension CheckpointDirectory {
    /// What verifying one checkpoint found: its manifest, and for each rank's shard whether every
    /// checksum held.
    ///
    /// ``verification(of:threads:progress:)`` returns it; ``verify(step:threads:)`` throws its
    /// ``problem``. Both run the same checks.
    public struct Verification: Sendable {
        /// What verifying one rank's shard found.
        public struct Shard: Sendable {
            /// The rank that wrote the shard.
            public var rank: Int
            /// The shard file.
            public var path: String
            /// Bytes read and checked: the shard file and the chunks it uses from older checkpoints
            /// when it verified; the entries that verified before the problem otherwise.
            public var checkedBytes: Int
            /// The first problem found in this shard (or in an older checkpoint it uses), `nil` when
            /// it verified.
            public var problem: CheckpointError?
        }

        /// The checkpoint's step.
        public var step: Step
        /// The checkpoint's manifest, `nil` when it could not be read (``problem`` says why; no shard
        /// was read).
        public var manifest: Manifest?
        /// One result per rank, in rank order.
        public var shards: [Shard]
        /// Why the manifest could not be read, if it could not.
        var manifestProblem: CheckpointError?

        /// The first problem found: the manifest's, or else the lowest rank's; `nil` when the whole
        /// checkpoint verified.
        public var problem: CheckpointError? { manifestProblem ?? shards.lazy.compactMap(\.problem).first }

        /// Whether the manifest and every shard verified.
        public var isIntact: Bool { problem == nil }

        /// Bytes read and checked, over all shards.
        public var checkedBytes: Int { shards.reduce(0) { $0 + $1.checkedBytes } }
    }

    /// Re-reads every chunk of every shard of the checkpoint at `step` and checks every checksum,
    /// reporting what it found per rank instead of stopping at the first problem.
    ///
    /// Checks the manifest (its checksum, and each shard's size, index digest, format version and
    /// references against it), each shard's header, footer and index, every chunk's SHA-256 and,
    /// in incremental (2.x) shards, the SHA-256 of the bytes each chunk decodes to. An incremental
    /// checkpoint's chunks stored in older checkpoints are read from there, so a missing, replaced
    /// or damaged checkpoint it depends on makes it fail too. Nothing is modified.
    ///
    /// - Parameters:
    ///   - step: The checkpoint.
    ///   - threads: Threads that read and check the chunks of an entry.
    ///   - progress: Called on the calling thread with the number of bytes just checked: after each
    ///     entry, and after each shard for its header, index and footer. When everything verifies,
    ///     the calls add up to the manifest's stored bytes plus the bytes used from older checkpoints.
    /// - Returns: The manifest and one result per shard. Reading or checking every chunk costs
    ///   about as much as restoring every rank.
    public func verification(
        of step: Step,
        threads: Int = Syscalls.onlineProcessorCount,
        progress: (Int) -> Void = { _ in }
    ) -> Verification {
        let manifest: Manifest
        do { manifest = try loadManifest(step: step) } catch {
            return Verification(step: step, manifest: nil, shards: [], manifestProblem: error)
        }
        let shards = (0..<manifest.rankCount).map { rank in
            verifyShard(manifest: manifest, rank: rank, threads: threads, progress: progress)
        }
        return Verification(step: step, manifest: manifest, shards: shards)
    }

    /// Re-reads every chunk of every shard of the checkpoint at `step` and checks every checksum.
    ///
    /// Runs the checks of ``verification(of:threads:progress:)``.
    /// - Parameters:
    ///   - step: The checkpoint.
    ///   - threads: Threads that read and check the chunks of an entry.
    /// - Returns: The manifest, when everything verified.
    /// - Throws: The first problem found, naming the file and entry: `manifestInvalid`,
    ///   `incompleteCheckpoint` (a shard, or an older checkpoint it uses, is missing or was
    ///   replaced), `truncated`, `badMagic`, `corruptData`, `unsupportedFormatVersion`, or an I/O
    ///   error such as `permissionDenied`.
    @discardableResult
    public func verify(
        step: Step,
        threads: Int = Syscalls.onlineProcessorCount
    ) throws(CheckpointError) -> Manifest {
        let verification = verification(of: step, threads: threads)
        if let problem = verification.problem { throw problem }
        guard let manifest = verification.manifest else {
            preconditionFailure("a verification without a manifest has a problem")
        }
        return manifest
    }

    /// Verifies one rank's shard of the checkpoint `manifest` describes.
    private func verifyShard(
        manifest: Manifest,
        rank: Int,
        threads: Int,
        progress: (Int) -> Void
    ) -> Verification.Shard {
        let record = manifest.shards.indices.contains(rank) ? manifest.shards[rank] : nil
        var result = Verification.Shard(
            rank: rank,
            path: path(for: manifest.step) + (record.map { "/" + $0.file } ?? ""),
            checkedBytes: 0
        )
        do throws(CheckpointError) {
            let reader = try openSnapshot(manifest: manifest, rank: rank, threads: threads)
            try reader.shard.verifyAll(threads: threads) { entry in
                result.checkedBytes += entry.storedSize
                progress(entry.storedSize)
            }
            // The header, index and footer: what the manifest counts beyond the entries' chunks.
            let total = (record?.fileBytes ?? 0) + (record?.referencedBytes ?? 0)
            let rest = max(0, total - result.checkedBytes)
            result.checkedBytes += rest
            progress(rest)
        } catch {
            result.problem = error
        }
        return result
    }
}
