import Logging

/// The stores a checkpointer writes to: the shared directory, and with redundancy this rank's
/// node-local store and its partner (the levels SCR and VeloC call file system, local and partner).
struct StorageLevels: Sendable {
    /// The shared (job-wide) level: `Checkpointer.directory`.
    let shared: any CheckpointStore
    /// This rank's node-local level, when the configuration asks for redundancy.
    let local: LocalLevel?

    /// Steps of the shared level that the restart agreement found unrestorable (newer than the
    /// restored checkpoint): the run writes them again, replacing them (rank 0 only).
    let unrestorable = Locked(Set<Step>())

    /// The checkpoint this run committed or restored last (rank 0): the next one's manifest links to
    /// it (``Checkpoint/Lineage``).
    let lineageHead = Locked<Manifest.Link?>(nil)

    /// The level a checkpoint commits to first: node-local with redundancy, else shared.
    var primary: any CheckpointStore { local?.store ?? shared }

    static func store(
        _ directory: CheckpointDirectory,
        _ configuration: Checkpointer.Configuration
    ) -> any CheckpointStore {
        let permissions = StorePermissions(
            file: configuration.filePermissions,
            directory: configuration.directoryPermissions
        )
        switch configuration.commitMethod.value {
        case .rename: return RenamingStore(directory: directory, permissions: permissions)
        case .marker: return MarkerStore(directory: directory, permissions: permissions)
        }
    }
}

/// A rank's node-local store and its partner (see ``Checkpointer/Configuration/Redundancy``).
///
/// `localDirectory/rank-NNNNN` has the layout of a checkpoint directory, partly filled: each
/// committed `ckpt-STEP` holds the manifest, this rank's shard and the copy of the shard of the
/// rank it is partner to.
final class LocalLevel: Sendable {
    let settings: Checkpointer.Configuration.Redundancy
    let store: any CheckpointStore
    let partners: PartnerMap
    /// The XOR sets, when configured (``Checkpointer/Configuration/Redundancy/xorSetSize``).
    let xorSets: XORSets?
    /// Checkpoints committed since the start, to flush every `flushEvery`-th.
    let commits = Locked(0)
    /// Set when the job is asked to stop: node-local storage may not outlive the job, so the
    /// next checkpoint is flushed.
    let flushRequested = Locked(false)

    private init(
        settings: Checkpointer.Configuration.Redundancy,
        store: any CheckpointStore,
        partners: PartnerMap,
        xorSets: XORSets?
    ) {
        self.settings = settings
        self.store = store
        self.partners = partners
        self.xorSets = xorSets
    }

    /// The folder of a rank's node-local store.
    static func folder(_ settings: Checkpointer.Configuration.Redundancy, rank: Int) -> String {
        settings.localDirectory + "/" + "rank-" + zeroPadded(UInt64(rank), width: 5)
    }

    /// Collective: learns every rank's node, creates this rank's store and removes what a crash left in it.
    static func prepare(
        _ configuration: Checkpointer.Configuration,
        communicator: any Communicator,
        logger: Logger
    ) throws -> LocalLevel? {
        guard let settings = configuration.redundancy else { return nil }
        let nodes = try communicator.allgather(value: communicator.nodeName)
        let partners = PartnerMap(nodes: nodes)
        let xorSets = try settings.xorSetSize.map { size throws(CheckpointError) in
            try XORSets.validated(nodes: nodes, setSize: size)
        }
        let rank = communicator.rank
        let store = StorageLevels.store(configuration.checkpointDirectory(folder(settings, rank: rank)), configuration)
        try communicator.agree(
            Shared<Bool>(rank: rank) {
                try Syscalls.makeDirectories(store.directory.path, permissions: configuration.directoryPermissions)
                // The node-local directory too: whoever can write it can put a folder of theirs in
                // place of this rank's.
                let groupMayWrite = configuration.directorySharing.allowsGroup
                try Syscalls.checkPrivateDirectory(settings.localDirectory, groupMayWrite: groupMayWrite)
                try Syscalls.checkWritableDirectory(store.directory.path, groupMayWrite: groupMayWrite)
                for name in try store.removeUnfinished() {
                    logger.notice(
                        "removed an unfinished node-local checkpoint left by an earlier run",
                        metadata: ["path": "\(store.directory.path)/\(name)"]
                    )
                }
                return true
            }
        )
        if rank == 0 && settings.partnerCopy && partners.partnersShareNode {
            logger.warning(
                "some partner copies are on the same node as their shard: they protect against losing a rank's files, not a node; run on more nodes with the same number of ranks each",
                metadata: ["nodes": "\(Set(nodes).count)"]
            )
        }
        if rank == 0, let xorSets, xorSets.membersShareNode {
            logger.warning(
                "some XOR sets have two members on one node: such a set survives losing one rank's files, not that node; run the same number of ranks on every node",
                metadata: ["nodes": "\(Set(nodes).count)"]
            )
        }
        return LocalLevel(settings: settings, store: store, partners: partners, xorSets: xorSets)
    }

    /// Whether this rank's store has a committed checkpoint of `step`, written by `rankCount`
    /// ranks, holding `rank`'s shard as its manifest records it.
    func holds(_ step: Step, of rank: Int, rankCount: Int) -> Bool {
        guard let manifest = try? store.directory.loadManifest(step: step), manifest.rankCount == rankCount,
            rank < manifest.shards.count
        else { return false }
        let shard = manifest.shards[rank]
        return store.holdsCommitted(shard.file, step: step, size: shard.fileBytes)
    }

    /// The committed steps of this rank's store (none when the store is gone).
    func committedSteps() -> [Step] { (try? store.committedSteps()) ?? [] }
}
