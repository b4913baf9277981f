import Foundation
import Logging

/// A rank's node-local checkpoint store and its partner (see ``Checkpointer/Configuration/Redundancy``).
///
/// `localDirectory/rank-NNNNN` has the layout of a checkpoint directory, partly filled: each
/// committed `ckpt-STEP` holds the manifest, this rank's shard and the copy of the shard of the
/// rank it is partner to.
final class LocalLevel: Sendable {
    let settings: Checkpointer.Configuration.Redundancy
    let store: CheckpointDirectory
    let partners: PartnerMap
    /// Checkpoints committed since the start, to flush every `flushEvery`-th.
    let commits = Locked(0)
    /// Set when the job is asked to stop: node-local storage may not outlive the job, so the
    /// last checkpoint is flushed.
    let flushRequested = Locked(false)

    private init(settings: Checkpointer.Configuration.Redundancy, store: CheckpointDirectory, partners: PartnerMap) {
        self.settings = settings
        self.store = store
        self.partners = partners
    }

    /// Collective: learns every rank's node, creates this rank's store and removes what a crash left in it.
    static func prepare(
        _ settings: Checkpointer.Configuration.Redundancy,
        communicator: any Communicator,
        permissions: UInt16,
        logger: Logger
    ) throws -> LocalLevel {
        let nodes = try communicator.allgather(Array(communicator.nodeName.utf8)).map {
            String(decoding: $0, as: UTF8.self)
        }
        let partners = PartnerMap(nodes: nodes)
        let rank = communicator.rank
        let store = CheckpointDirectory(
            path: settings.localDirectory + "/" + "rank-" + zeroPadded(UInt64(rank), width: 5)
        )
        try communicator.agree(
            Shared<Bool>(rank: rank) {
                try Syscalls.makeDirectories(store.path, permissions: permissions)
                try Syscalls.checkWritableDirectory(store.path)
                for name in try store.removeStaleTemporaries() {
                    logger.notice(
                        "removed an unfinished node-local checkpoint left by an earlier run",
                        metadata: ["path": "\(store.path)/\(name)"]
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
        return LocalLevel(settings: settings, store: store, partners: partners)
    }

    /// Whether this rank's store has a committed checkpoint of `step`, written by `rankCount`
    /// ranks, holding `rank`'s shard. (A restart on another number of ranks reads the shared copy.)
    func holds(_ step: Step, of rank: Int, rankCount: Int) -> Bool {
        guard let manifest = try? store.loadManifest(step: step), manifest.rankCount == rankCount,
            rank < manifest.shards.count
        else { return false }
        let shard = manifest.shards[rank]
        var info = stat()
        let path = store.path(for: step) + "/" + shard.file
        return stat(path, &info) == 0 && Int(info.st_size) == shard.fileBytes
    }

    /// The committed steps of this rank's store (none when the store is gone).
    func committedSteps() -> [Step] { (try? store.committedSteps()) ?? [] }
}

extension Checkpointer {
    private static let partnerTag = 7_100
    private static let recoveryTag = 7_101
    /// Shards travel between partners in parts of this size (MPI messages carry less than 2 GiB).
    private static let partSize = 256 << 20

    /// A checkpoint with redundancy: every rank commits to its node-local store (its shard and its
    /// partner's copy) once all ranks have written; every `flushEvery`-th checkpoint then also
    /// goes to the shared directory, by copying the node-local shards.
    func commitWithRedundancy(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        stageSeconds: Double,
        stagingError: (any Error)?,
        over communicator: any Communicator,
        level: LocalLevel
    ) throws -> Manifest {
        let store = level.store
        var temporary: String?
        var committedLocally = false
        do {
            let written = Shared<ShardReport>(rank: rank) {
                if let stagingError { throw stagingError }
                try Syscalls.makeDirectories(store.path, permissions: configuration.directoryPermissions)
                let path = try store.makeTemporary(step: step, permissions: configuration.directoryPermissions)
                temporary = path
                return try writeShard(writer, into: path, step: step, stageSeconds: stageSeconds).0
            }
            var report = written
            if level.settings.partnerCopy && communicator.size > 1 {
                let copied = try exchangePartnerCopies(
                    written: written,
                    temporary: temporary,
                    level: level,
                    over: communicator
                )
                if case .failure(let failure) = copied, case .success = written { report = .failure(failure) }
            }
            let encoded = try JSONCoding.encoder.encode(report).bytes
            var outcome: Shared<Manifest>?
            if let gathered = try communicator.gather(encoded, root: 0) {
                let reports = try gathered.map {
                    try JSONCoding.decoder.decode(Shared<ShardReport>.self, from: Data($0))
                }
                if let failure = reports.lazy.compactMap({ if case .failure(let f) = $0 { f } else { nil } }).first {
                    outcome = .failure(failure)
                } else {
                    outcome = Shared(rank: rank) {
                        let reports = try reports.map { try $0.get() }
                        let manifest = makeManifest(step: step, metadata: metadata, reports: reports)
                        try Self.checkSavedBlocks(manifest.shards)
                        return manifest
                    }
                }
            }
            let manifest = try communicator.broadcast(value: outcome, root: 0)
            let committed = Shared<Bool>(rank: rank) {
                let manifest = try manifest.get()
                guard let path = temporary else { return true }
                try store.commit(temporary: path, manifest: manifest, permissions: configuration.filePermissions) {
                    _ throws(CheckpointError) in
                }
                temporary = nil
                committedLocally = true
                return true
            }
            try communicator.agree(committed)
            var result = try manifest.get()
            let count = level.commits.withLock { count in
                count += 1
                return count
            }
            applyLocalRetention(level)
            let stopping = level.flushRequested.withLock { requested in
                defer { requested = false }
                return requested
            }
            if count % level.settings.flushEvery == 0 || stopping {
                let shard = result.shards[rank]
                let local = (path: store.path(for: step) + "/" + shard.file, shard: shard)
                result = try commitShared(
                    writer,
                    step: step,
                    metadata: metadata,
                    stageSeconds: stageSeconds,
                    stagingError: nil,
                    over: communicator,
                    copyingShardFrom: local
                )
                logger.debug("flushed checkpoint to the shared directory", metadata: ["step": "\(step)"])
            }
            return result
        } catch {
            if let temporary { removeAbandoned(temporary) }
            // Another rank could not commit: withdraw this step here too, so that no rank keeps
            // a checkpoint the others lack.
            if committedLocally { try? store.delete(step: step, permissions: configuration.directoryPermissions) }
            // The rank whose state could not be collected reports the application's own error.
            if let stagingError { throw stagingError }
            throw error
        }
    }

    /// Sends this rank's shard to its partner and stores the shard of the rank it is partner to.
    ///
    /// Every rank sends and receives exactly one copy (or a marker that it has none), so the
    /// exchange completes whatever failed locally.
    private func exchangePartnerCopies(
        written: Shared<ShardReport>,
        temporary: String?,
        level: LocalLevel,
        over communicator: any Communicator
    ) throws -> Shared<Bool> {
        let partner = level.partners.partner[rank]
        let held = level.partners.held[rank]
        let mine = Shared<[UInt8]>(rank: rank) {
            let report = try written.get()
            guard let temporary else { return [] }
            return try CheckpointDirectory.readWholeFile(temporary + "/" + report.shard.file, limit: Int.max)
        }
        try sendFile(mine, to: partner, tag: Self.partnerTag, over: communicator)
        let theirs = try receiveFile(from: held, tag: Self.partnerTag, over: communicator)
        return Shared<Bool>(rank: rank) {
            _ = try mine.get()
            guard let bytes = theirs, let temporary else { return true }
            try CheckpointDirectory.writeFileSynced(
                temporary + "/" + CheckpointLayout.shardFileName(rank: held),
                bytes,
                permissions: configuration.filePermissions
            )
            return true
        }
    }

    /// Sends a file's bytes (or, on a local failure, a marker) as a header and parts.
    private func sendFile(
        _ file: Shared<[UInt8]>,
        to destination: Int,
        tag: Int,
        over communicator: any Communicator
    )
        throws
    {
        guard case .success(let bytes) = file else {
            var header = ByteBuilder()
            header.append(UInt64.max)
            try communicator.send(header.bytes, to: destination, tag: tag)
            return
        }
        var header = ByteBuilder()
        header.append(UInt64(bytes.count))
        try communicator.send(header.bytes, to: destination, tag: tag)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + Self.partSize)
            try communicator.send(Array(bytes[start..<end]), to: destination, tag: tag)
            start = end
        }
    }

    /// Receives what ``sendFile(_:to:tag:over:)`` sent; `nil` when the sender had nothing.
    private func receiveFile(from source: Int, tag: Int, over communicator: any Communicator) throws -> [UInt8]? {
        var cursor = ByteCursor(try communicator.receive(from: source, tag: tag), path: "rank \(source)")
        let count = try cursor.u64()
        guard count != UInt64.max else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(count))
        while bytes.count < Int(count) {
            bytes += try communicator.receive(from: source, tag: tag)
        }
        return bytes
    }

    /// Deletes node-local checkpoints the retention rule no longer keeps.
    private func applyLocalRetention(_ level: LocalLevel) {
        do {
            for step in configuration.retention.stepsToDelete(from: try level.store.committedSteps()) {
                try level.store.delete(step: step, permissions: configuration.directoryPermissions)
            }
        } catch {
            logger.warning(
                "could not delete an old node-local checkpoint; it will be retried after the next commit",
                metadata: ["error": "\(error)"]
            )
        }
    }

    // MARK: Restart

    /// Collective: the steps any level holds (node-local on any rank, or shared), oldest first.
    func redundantCandidates(_ level: LocalLevel) throws -> [Step] {
        let local = level.committedSteps()
        let shared = Shared<[Step]>(rank: rank) { rank == 0 ? try directory.committedSteps() : [] }
        let all = try communicator.allgather(JSONCoding.encoder.encode(Candidates(local: local, shared: shared)).bytes)
        var steps = Set<Step>()
        for bytes in all {
            let candidates = try JSONCoding.decoder.decode(Candidates.self, from: Data(bytes))
            steps.formUnion(candidates.local)
            steps.formUnion(try candidates.shared.get())
        }
        return steps.sorted()
    }

    private struct Candidates: Codable {
        var local: [Step]
        var shared: Shared<[Step]>
    }

    /// Collective: makes this rank's shard of `step` readable and says where. A rank whose
    /// node-local copy is gone gets it from its partner (and stores it node-locally again);
    /// otherwise it reads the shared directory's copy.
    func locateShard(of step: Step, level: LocalLevel) throws -> CheckpointDirectory {
        let partners = level.partners
        let size = communicator.size
        let own = level.holds(step, of: rank, rankCount: size)
        let copy = level.settings.partnerCopy && size > 1 && level.holds(step, of: partners.held[rank], rankCount: size)
        let flags = try communicator.allgather([own ? 1 : 0, copy ? 1 : 0])
        let needs = { (rank: Int) in flags[rank][0] == 0 && flags[partners.partner[rank]][1] == 1 }
        // Partner side: send the copy (with the manifest) to the rank that lost its own.
        let held = partners.held[rank]
        if communicator.size > 1 && needs(held) {
            let files = Shared<[UInt8]>(rank: rank) {
                let folder = level.store.path(for: step)
                var packed = ByteBuilder()
                for name in [
                    Manifest.fileName, Manifest.checksumFileName, CheckpointLayout.shardFileName(rank: held),
                ] {
                    let bytes = try CheckpointDirectory.readWholeFile(folder + "/" + name, limit: Int.max)
                    packed.append(UInt64(bytes.count))
                    packed.append(contentsOf: bytes)
                }
                return packed.bytes
            }
            try sendFile(files, to: held, tag: Self.recoveryTag, over: communicator)
        }
        guard communicator.size > 1 && needs(rank) else { return own ? level.store : directory }
        let received = try receiveFile(from: partners.partner[rank], tag: Self.recoveryTag, over: communicator)
        do {
            guard let received else {
                throw CheckpointError(
                    .ioFailure,
                    "rank \(partners.partner[rank]) could not read its copy of this shard"
                )
            }
            try restoreLocally(step: step, packed: received, level: level)
            logger.notice(
                "recovered this rank's lost node-local shard from its partner's copy",
                metadata: ["step": "\(step)", "rank": "\(rank)", "partner": "\(partners.partner[rank])"]
            )
            return level.store
        } catch {
            logger.warning(
                "could not recover the shard from the partner's copy; trying the shared directory",
                metadata: ["step": "\(step)", "error": "\(error)"]
            )
            return directory
        }
    }

    /// Commits the manifest, checksum and shard a partner sent into this rank's store.
    private func restoreLocally(step: Step, packed: [UInt8], level: LocalLevel) throws {
        var cursor = ByteCursor(packed, path: "partner copy")
        var files: [[UInt8]] = []
        for _ in 0..<3 { files.append(try cursor.bytes(Int(try cursor.u64()))) }
        let manifest = try Manifest.decode(files[0], checksumLine: files[1], path: "partner copy")
        let permissions = (file: configuration.filePermissions, directory: configuration.directoryPermissions)
        let shardName = CheckpointLayout.shardFileName(rank: rank)
        let committed = level.store.path(for: step)
        if Syscalls.isDirectory(committed) {
            // The checkpoint is there (with the copy this rank keeps for another): add the shard.
            let partial = committed + "/." + shardName + ".tmp"
            try? Syscalls.removeTree(partial)
            try CheckpointDirectory.writeFileSynced(partial, files[2], permissions: permissions.file)
            try Syscalls.rename(partial, to: committed + "/" + shardName)
            try Syscalls.syncDirectory(committed)
            return
        }
        try Syscalls.makeDirectories(level.store.path, permissions: permissions.directory)
        let temporary = try level.store.makeTemporary(step: step, permissions: permissions.directory)
        do {
            try CheckpointDirectory.writeFileSynced(
                temporary + "/" + shardName,
                files[2],
                permissions: permissions.file
            )
            try level.store.commit(temporary: temporary, manifest: manifest, permissions: permissions.file) {
                _ throws(CheckpointError) in
            }
        } catch {
            removeAbandoned(temporary)
            throw error
        }
    }
}
