import Foundation
import Logging

/// The restart agreement: the ranks find the newest checkpoint every one of them can restore.
///
/// Candidates are the steps any level holds (node-local on any rank, or shared), newest first. For
/// each, every rank locates its shards: with redundancy, its node-local copy; a rank whose copy is
/// gone gets it back from its partner's copy (streamed, bounded memory) and stores it again; a
/// restart on another number of ranks reads old ranks' shards from node-local folders on its node
/// where they are, else the shared copy. Each rank builds its state (decoded and verified before
/// anything of the application's is touched); all ranks learn every rank's outcome and take the
/// same decision.
final class RestartAgreement: Sendable {
    let configuration: Checkpointer.Configuration
    let communicator: any Communicator
    let levels: StorageLevels
    let metrics: CheckpointMetrics
    let logger: Logger

    private static let recoveryTag = 7_101

    init(
        configuration: Checkpointer.Configuration,
        communicator: any Communicator,
        levels: StorageLevels,
        metrics: CheckpointMetrics,
        logger: Logger
    ) {
        self.configuration = configuration
        self.communicator = communicator
        self.levels = levels
        self.metrics = metrics
        self.logger = logger
    }

    var rank: Int { communicator.rank }
    var shared: CheckpointDirectory { levels.shared.directory }

    /// Collective: restores the newest checkpoint all ranks can build `Value` from.
    func restoreNewest<Value>(_ build: (SnapshotReader) throws -> Value) throws -> (Value, Step)? {
        let clock = Stopwatch()
        let steps = try candidates()
        guard !steps.isEmpty else {
            try checkNotRolledBack(newest: nil, reasons: [])
            return nil
        }
        var reasons: [String] = []
        for step in steps.reversed() {
            try checkNotRolledBack(newest: step, reasons: reasons)
            var value: Value?
            var localError: (any Error)?
            let status: RestoreStatus
            let shards = try locate(step)
            var manifest: Manifest?
            do {
                let shards = try shards.get()
                manifest = shards.manifest
                value = try build(try shards.reader())
                status = .restored(blocksRead: shards.readSoFar.blocksRead)
            } catch let error as CheckpointError where error.isCorruption {
                status = .damaged(error.description)
            } catch {
                localError = error
                status = .failed(RankFailure(rank: rank, error: error))
            }
            let all = try communicator.allgather(value: status)
            if let failure = all.lazy.compactMap(\.failure).first {
                if failure.rank == rank, let localError { throw localError }
                throw failure.error
            }
            let damaged = all.enumerated().compactMap { rank, status in status.damage.map { "rank \(rank): \($0)" } }
            if damaged.isEmpty, let value {
                try BlockChecks.checkRestored(all.map(\.blocksRead), checkpoint: shared.path(for: step))
                if !reasons.isEmpty {
                    logger.jobWide(
                        .warning,
                        "restored an older checkpoint",
                        metadata: ["step": "\(step)", "skipped": "\(reasons.count)"],
                        rank: rank
                    )
                }
                logger.jobWide(.info, "restored checkpoint", metadata: ["step": "\(step)"], rank: rank)
                retire(steps.filter { $0 > step })
                let link = try manifest?.link()
                levels.lineageHead.withLock { $0 = link }
                metrics.restored(seconds: clock.elapsed, fallbacks: reasons.count, countsFallbacks: rank == 0)
                return (value, step)
            }
            // Every rank learned every rank's damage: the job-wide reason once, and each rank's own at debug.
            logger.jobWide(
                .warning,
                "skipping damaged checkpoint",
                metadata: ["step": "\(step)", "reason": "\(damaged.joined(separator: "; "))"],
                rank: rank
            )
            logger.debug(
                "this rank's part of the damaged checkpoint",
                metadata: ["step": "\(step)", "rank": "\(rank)", "damage": "\(status.damage ?? "none found")"]
            )
            reasons.append("step \(step): \(damaged.joined(separator: "; "))")
        }
        throw CheckpointError(
            .noCheckpoint,
            "none of the \(steps.count) checkpoints verifies, so none was restored; inspect them with `ckpt verify \(shared.path) --all` — "
                + reasons.joined(separator: "; "),
            path: shared.path
        )
    }

    /// Throws instead of restoring `newest` when the configured lineage expects a newer checkpoint:
    /// the newer ones are gone or were refused, so the directory was rolled back.
    private func checkNotRolledBack(newest: Step?, reasons: [String]) throws(CheckpointError) {
        guard let floor = configuration.lineage?.atLeast, floor > 0, newest.map({ $0 < floor }) ?? true else { return }
        let found = newest.map { "the newest it can restore is \($0)" } ?? "it holds none"
        throw CheckpointError(
            .lineageMismatch,
            "lineage expects a checkpoint of step \(floor) or newer but \(found)"
                + (reasons.isEmpty ? "" : " (refused: " + reasons.joined(separator: "; ") + ")")
                + ": newer checkpoints were deleted or replaced; restore them, or lower Lineage.atLeast to accept the older state",
            path: shared.path
        )
    }

    /// Retires the checkpoints newer than the restored one, which the agreement found unrestorable
    /// (damaged, or committed on some ranks only) and which the run writes again.
    ///
    /// Node-local ones are deleted: a later restart must not combine a rank's copy from before this
    /// restart with another rank's from after it. Shared ones stay for inspection (`ckpt verify`)
    /// until the run writes their step again; a store that cannot replace a committed checkpoint
    /// atomically (``MarkerStore``) deletes such a one first. A copy that cannot be deleted is logged.
    private func retire(_ newer: [Step]) {
        guard !newer.isEmpty else { return }
        if rank == 0 { levels.unrestorable.withLock { $0.formUnion(newer) } }
        guard let local = levels.local else { return }
        let held = Set(local.committedSteps())
        for step in newer where held.contains(step) {
            do {
                try local.store.delete(step: step)
                logger.notice(
                    "deleted a node-local checkpoint newer than the restored one; the run writes its step again",
                    metadata: ["step": "\(step)", "level": "\(local.store.directory.path)"]
                )
            } catch {
                logger.warning(
                    "could not delete a node-local checkpoint newer than the restored one",
                    metadata: ["step": "\(step)", "level": "\(local.store.directory.path)", "error": "\(error)"]
                )
            }
        }
    }

    /// Collective: the steps any level holds, oldest first.
    private func candidates() throws -> [Step] {
        let listedShared = Shared<[Step]>(rank: rank) { rank == 0 ? try levels.shared.committedSteps() : [] }
        guard let local = levels.local else {
            return try communicator.broadcastValue(rank == 0 ? listedShared : nil, root: 0).get()
        }
        let mine = Candidates(local: local.committedSteps(), shared: listedShared)
        var steps = Set<Step>()
        for candidates in try communicator.allgather(value: mine) {
            steps.formUnion(candidates.local)
            steps.formUnion(try candidates.shared.get())
        }
        return steps.sorted()
    }

    private struct Candidates: Codable {
        var local: [Step]
        var shared: Shared<[Step]>
    }

    /// Collective: this rank's view of the shards of `step`, or why it has none.
    private func locate(_ step: Step) throws -> Result<CheckpointShards, CheckpointError> {
        let size = communicator.size
        guard let local = levels.local else {
            return Result { () throws(CheckpointError) in try shards(step, manifestFrom: shared, folders: [shared]) }
        }
        // Same rank count: each rank's own node-local copy, or its partner's, or the shared one.
        let own = local.holds(step, of: rank, rankCount: size)
        let partners = local.partners
        let copy = local.settings.partnerCopy && size > 1 && local.holds(step, of: partners.held[rank], rankCount: size)
        let flags = try communicator.allgather([own ? 1 : 0, copy ? 1 : 0])
        let rebuilt = try rebuildFromXORSets(step, holding: flags.map { $0[0] == 1 }, local: local)
        let needs = { (rank: Int) in
            flags[rank][0] == 0 && !rebuilt[rank] && flags[partners.partner[rank]][1] == 1
        }
        let recovered = try recoverLostShards(step, needs: needs, local: local) || rebuilt[rank]
        var folders = [local.store.directory]
        folders += nodeLocalFolders(local.settings).filter { $0.path != local.store.directory.path }
        folders.append(shared)
        let manifestSource = own || recovered ? local.store.directory : shared
        return Result { () throws(CheckpointError) in
            do throws(CheckpointError) {
                return try shards(step, manifestFrom: manifestSource, folders: folders)
            } catch  where manifestSource.path != shared.path && error.isCorruption {
                return try shards(step, manifestFrom: shared, folders: [shared])
            }
        }
    }

    /// The shards of `step` as this rank restores them, each old rank's shard taken from the first
    /// folder that holds the one the manifest records.
    private func shards(
        _ step: Step,
        manifestFrom source: CheckpointDirectory,
        folders: [CheckpointDirectory]
    ) throws(CheckpointError) -> CheckpointShards {
        let manifest: Manifest
        do { manifest = try source.loadManifest(step: step) } catch {
            // A level that lacks this step (a node-local store after a node loss): read it from another.
            guard
                let other = folders.first(where: { $0.path != source.path && (try? $0.loadManifest(step: step)) != nil }
                )
            else { throw error }
            manifest = try other.loadManifest(step: step)
        }
        let threads = configuration.threads
        return CheckpointShards(
            location: shared.path(for: step),
            openShard: { old throws(CheckpointError) in
                // The most telling error wins: a failing read (the data may be fine: say so, never
                // call it damaged), then damage, then a copy that is not there.
                var worst: CheckpointError?
                for folder in folders {
                    do throws(CheckpointError) {
                        return try folder.openSnapshot(manifest: manifest, rank: old, threads: threads).shard
                    } catch {
                        if worst.map({ Self.weight(error) > Self.weight($0) }) ?? true { worst = error }
                    }
                }
                throw worst ?? CheckpointError(.incompleteCheckpoint, "no copy of rank \(old)'s shard")
            },
            manifest: manifest,
            rank: rank,
            rankCount: communicator.size,
            threads: threads
        )
    }

    /// How much an error opening one copy of a shard says about the checkpoint: a copy that is not
    /// there (0) says least, damage (1) more, and a failing read (2) means the data may be fine.
    private static func weight(_ error: CheckpointError) -> Int {
        error.code == .incompleteCheckpoint ? 0 : error.isCorruption ? 1 : 2
    }

    /// The node-local folders of every rank that this node holds (`localDirectory/rank-*`).
    private func nodeLocalFolders(_ settings: Checkpointer.Configuration.Redundancy) -> [CheckpointDirectory] {
        let names = (try? Syscalls.listDirectory(settings.localDirectory)) ?? []
        return names.filter { $0.hasPrefix("rank-") }.sorted().map {
            configuration.checkpointDirectory(settings.localDirectory + "/" + $0)
        }
    }

    /// Collective: a rank whose node-local copy of `step` is gone gets it from its partner, with
    /// the shards of the older checkpoints an incremental shard uses, and stores them again.
    /// - Returns: Whether this rank recovered its shard.
    private func recoverLostShards(_ step: Step, needs: (Int) -> Bool, local: LocalLevel) throws -> Bool {
        guard communicator.size > 1 else { return false }
        let partners = local.partners
        let held = partners.held[rank]
        let outgoing: Result<[FileExchange.Outgoing], CheckpointError>? =
            needs(held)
            ? Result { () throws(CheckpointError) in try package(step, of: held, local: local) } : nil
        let exchange = FileExchange(communicator: communicator, tag: Self.recoveryTag)
        let scratch = needs(rank) ? try? Self.recoveryFolder(local) : nil
        var store: ((String, Int) throws(CheckpointError) -> any ByteSink)?
        if let scratch {
            let permissions = configuration.filePermissions
            store = { (name: String, _: Int) throws(CheckpointError) -> any ByteSink in
                guard !name.contains("/"), !name.hasPrefix(".") else {
                    throw CheckpointError(.corruptData, "the partner sent a file named '\(name)'")
                }
                return try OpenFile.createExclusive(scratch + "/" + name, permissions: permissions)
            }
        }
        let received = try exchange.run(
            sending: outgoing,
            to: needs(held) ? held : nil,
            from: needs(rank) ? partners.partner[rank] : nil,
            store: store
        )
        guard needs(rank) else { return false }
        defer { if let scratch { try? Syscalls.removeTree(scratch) } }
        do {
            guard let scratch else { throw CheckpointError(.ioFailure, "no room to receive the partner's copy") }
            let names = try (received ?? .success([])).get()
            try install(names, from: scratch, local: local)
            metrics.partnerRecoveries.increment()
            logger.notice(
                "recovered this rank's lost node-local shard from its partner's copy",
                metadata: ["step": "\(step)", "rank": "\(rank)", "partner": "\(partners.partner[rank])"]
            )
            return true
        } catch {
            logger.warning(
                "could not recover the shard from the partner's copy; trying the shared directory",
                metadata: ["step": "\(step)", "error": "\(error)"]
            )
            return false
        }
    }

    /// The files that restore `owner`'s shard of `step`: per checkpoint (the step, and the older ones
    /// its incremental shard uses) the manifest, its checksum and the shard, named `STEP.FILE`.
    private func package(
        _ step: Step,
        of owner: Int,
        local: LocalLevel
    ) throws(CheckpointError) -> [FileExchange.Outgoing] {
        let directory = local.store.directory
        let manifest = try directory.loadManifest(step: step)
        var steps = [step]
        if owner < manifest.shards.count { steps += manifest.shards[owner].references ?? [] }
        var files: [FileExchange.Outgoing] = []
        for step in steps {
            var names = [Manifest.fileName, Manifest.checksumFileName, CheckpointLayout.shardFileName(rank: owner)]
            if directory.authentication != nil { names.append(Authentication.fileName) }
            for name in names {
                files.append(
                    FileExchange.Outgoing(
                        name: String(step.rawValue) + "." + name,
                        source: try local.store.openCommitted(name, step: step)
                    )
                )
            }
        }
        return files
    }

    /// A fresh folder inside this rank's node-local store to receive a partner's copy into
    /// (a temporary name: a crash leaves it for the next start to remove).
    static func recoveryFolder(_ local: LocalLevel) throws(CheckpointError) -> String {
        let folder =
            local.store.directory.path + "/" + CheckpointLayout.temporaryPrefix + "recovery."
            + String(Syscalls.processID) + "." + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            + CheckpointLayout.temporarySuffix
        try Syscalls.makeDirectory(folder, permissions: 0o700)
        return folder
    }

    /// Stores the received files in this rank's node-local store: into a committed checkpoint that
    /// is there (it keeps another rank's copy), or as a new commit with the received manifest.
    func install(_ names: [String], from scratch: String, local: LocalLevel) throws {
        let shardName = CheckpointLayout.shardFileName(rank: rank)
        let steps = Set(names.compactMap { $0.split(separator: ".").first.flatMap { UInt64($0) } }).sorted(by: >)
        for raw in steps {
            let step = Step(rawValue: raw)
            let prefix = scratch + "/" + String(raw) + "."
            let manifestBytes = try CheckpointDirectory.readWholeFile(prefix + Manifest.fileName, limit: 256 << 20)
            let checksum = try CheckpointDirectory.readWholeFile(prefix + Manifest.checksumFileName, limit: 4096)
            let manifest = try Manifest.decode(
                manifestBytes,
                checksumLine: checksum,
                authentication: local.store.directory.authentication,
                seal: { () throws(CheckpointError) in
                    try CheckpointDirectory.readSeal(prefix + Authentication.fileName)
                },
                path: "partner copy"
            )
            guard manifest.step == step else {
                throw CheckpointError(.corruptData, "the partner's copy is of another step")
            }
            if local.holds(step, of: rank, rankCount: manifest.rankCount) { continue }
            let source = try OpenFile.openForReading(prefix + shardName)
            let committed = local.store.directory.path(for: step)
            if Syscalls.isDirectory(committed) {
                // The checkpoint is there (with the copy this rank keeps for another): add the shard.
                let partial = committed + "/." + shardName + ".tmp"
                try? Syscalls.removeTree(partial, within: local.store.directory.path)
                try CommitDriver.stream(
                    from: source,
                    to: try OpenFile.createExclusive(partial, permissions: configuration.filePermissions)
                )
                try Syscalls.rename(partial, to: committed + "/" + shardName)
                try Syscalls.syncDirectory(committed)
                continue
            }
            let area = try local.store.begin(step: step)
            do {
                try CommitDriver.stream(from: source, to: try local.store.create(shardName, in: area))
                try local.store.commit(area, manifest: manifest) { _ throws(CheckpointError) in }
            } catch {
                local.store.abandon(area)
                throw error
            }
        }
    }
}

/// One rank's result of trying to restore one checkpoint.
enum RestoreStatus: Codable {
    /// Built; with the blocks of distributed entries it read (for the tiling check).
    case restored(blocksRead: [String: [BlockLayout]])
    case damaged(String)
    case failed(RankFailure)

    var blocksRead: [String: [BlockLayout]] {
        if case .restored(let blocks) = self { blocks } else { [:] }
    }

    var failure: RankFailure? { if case .failed(let failure) = self { failure } else { nil } }
    var damage: String? { if case .damaged(let reason) = self { reason } else { nil } }
}
