import Foundation
import Logging
import Synchronization

extension Checkpointer {

    /// Commits a checkpoint: to the shared directory, or with redundancy to the node-local levels.
    func commit(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        stageSeconds: Double,
        stagingError: (any Error)?,
        over communicator: any Communicator
    ) throws -> Manifest {
        if let localLevel {
            return try commitWithRedundancy(
                writer,
                step: step,
                metadata: metadata,
                stageSeconds: stageSeconds,
                stagingError: stagingError,
                over: communicator,
                level: localLevel
            )
        }
        return try commitShared(
            writer,
            step: step,
            metadata: metadata,
            stageSeconds: stageSeconds,
            stagingError: stagingError,
            over: communicator
        )
    }

    /// Drives ``CommitStateMachine``: every rank takes part in every collective, whatever failed locally.
    /// - Parameter copyingShardFrom: A shard file already written for this checkpoint (node-local)
    ///   and its record, copied instead of encoding `writer` again.
    func commitShared(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        stageSeconds: Double,
        stagingError: (any Error)?,
        over communicator: any Communicator,
        copyingShardFrom source: (path: String, shard: Manifest.Shard)? = nil
    ) throws -> Manifest {
        let permissions = (file: configuration.filePermissions, directory: configuration.directoryPermissions)
        var machine = CommitStateMachine(
            rank: rank,
            size: communicator.size,
            step: step,
            stagingFailure: stagingError.map { RankFailure(rank: rank, error: $0) }
        )
        var temporary: String?
        // This rank's chunks as the next incremental checkpoint will see them, once this one commits.
        var nextBase: ChunkBase?
        var action = machine.start()
        do {
            while true {
                switch action {
                case .createTemporary:
                    action = machine.temporaryCreated(
                        Shared(rank: rank) {
                            let path = try directory.makeTemporary(step: step, permissions: permissions.directory)
                            temporary = path
                            return path
                        }
                    )
                case .shareTemporary(let ticket):
                    action = machine.temporaryShared(try communicator.broadcast(value: ticket, root: 0))
                case .writeShard(let path):
                    action = machine.shardWritten(
                        Shared(rank: rank) {
                            if let source {
                                return try copyShard(source, into: path, stageSeconds: stageSeconds)
                            }
                            let (report, next) = try writeShard(
                                writer,
                                into: path,
                                step: step,
                                stageSeconds: stageSeconds
                            )
                            nextBase = next
                            return report
                        }
                    )
                case .gatherReport(let report):
                    let encoded = try JSONCoding.encoder.encode(report).bytes
                    if let gathered = try communicator.gather(encoded, root: 0) {
                        action = machine.reportsGathered(
                            try gathered.map { try JSONCoding.decoder.decode(Shared<ShardReport>.self, from: Data($0)) }
                        )
                    } else {
                        action = machine.reportSent()
                    }
                case .commit(let path, let reports):
                    var manifest = makeManifest(step: step, metadata: metadata, reports: reports)
                    if let nextBase {
                        manifest.incremental = incrementalRecord(reports: reports, sinceFull: nextBase.sinceFull)
                    }
                    let clock = Stopwatch()
                    do {
                        try Self.checkSavedBlocks(manifest.shards)
                        try directory.commit(temporary: path, manifest: manifest, permissions: permissions.file) {
                            point throws(CheckpointError) in
                            let mapped: CrashPoint =
                                switch point {
                                case .shardsWritten: .shardWritten
                                case .manifestWritten: .committing(.manifestWritten)
                                case .checksumWritten: .committing(.checksumWritten)
                                case .temporarySynced: .committing(.synced)
                                case .renamed: .committing(.published)
                                case .parentSynced: .committing(.parentSynced)
                                }
                            try crashes.reached(mapped)
                        }
                        temporary = nil
                        manifest.timings.commitSeconds = clock.elapsed
                        action = machine.commitFinished(.success(manifest))
                    } catch  where error.message == SimulatedCrash.error.message {
                        temporary = nil  // a crashed process cleans nothing up
                        throw error
                    } catch {
                        action = machine.commitFinished(.failure(RankFailure(rank: rank, error: error)))
                    }
                case .abort(let path, let failure):
                    if let path { removeAbandoned(path) }
                    temporary = nil
                    logger.error(
                        "checkpoint failed; the previous checkpoints are intact",
                        metadata: ["step": "\(step)", "error": "\(failure.error)"]
                    )
                    action = machine.aborted()
                case .shareOutcome(let outcome):
                    action = machine.outcomeShared(try communicator.broadcast(value: outcome, root: 0))
                case .done(.success(let manifest)):
                    if let nextBase { state.withLock { $0.chunkBase = nextBase } }
                    return manifest
                case .done(.failure(let failure)):
                    if failure.rank == rank, let stagingError { throw stagingError }
                    throw failure.error
                }
            }
        } catch {
            // A collective failed (a peer died or timed out): nothing was committed; clean up what we created.
            if let temporary { removeAbandoned(temporary) }
            throw error
        }
    }

    /// Writes this rank's shard; with incremental checkpoints on, also returns its chunks for the next one.
    func writeShard(
        _ writer: SnapshotWriter,
        into path: String,
        step: Step,
        stageSeconds: Double
    ) throws -> (ShardReport, ChunkBase?) {
        let plan = incrementalPlan(for: step)
        let options = EncodingOptions(
            compressionLevel: configuration.compression.level,
            threads: configuration.threads,
            chunkSize: configuration.chunkSize,
            filter: configuration.filter,
            permissions: configuration.filePermissions,
            incremental: plan != nil
        )
        let file = CheckpointLayout.shardFileName(rank: rank)
        let summary = try ShardWriter.write(writer.entries, to: path + "/" + file, options: options, base: plan?.base)
        let next = plan.map { plan in
            ChunkBase(index: summary.index, step: step, indexDigest: summary.indexDigest, sinceFull: plan.sinceFull)
        }
        let report = ShardReport(
            shard: Manifest.Shard(
                rank: rank,
                file: file,
                fileBytes: summary.fileSize,
                indexSHA256: hexString(summary.indexDigest),
                rawBytes: summary.entries.reduce(0) { $0 + $1.rawSize },
                storedBytes: summary.entries.reduce(0) { $0 + $1.storedSize },
                entries: summary.entries.map(Manifest.Entry.init).recordingBlocks(of: writer),
                references: summary.bases.isEmpty ? nil : summary.bases.map { Step(rawValue: $0.step) },
                referencedBytes: plan == nil ? nil : summary.referencedBytes
            ),
            timings: Manifest.Timings(
                stageSeconds: stageSeconds,
                encodeSeconds: summary.encodeSeconds,
                writeSeconds: summary.writeSeconds,
                syncSeconds: summary.syncSeconds,
                commitSeconds: 0
            )
        )
        return (report, next)
    }

    /// Copies a shard written for this checkpoint elsewhere (node-local), keeping its record.
    func copyShard(
        _ source: (path: String, shard: Manifest.Shard),
        into path: String,
        stageSeconds: Double
    ) throws -> ShardReport {
        let clock = Stopwatch()
        let bytes = try CheckpointDirectory.readWholeFile(source.path, limit: Int.max)
        guard bytes.count == source.shard.fileBytes else {
            throw CheckpointError(
                .corruptData,
                "the node-local shard changed size since it was committed; it cannot be flushed",
                path: source.path
            )
        }
        try CheckpointDirectory.writeFileSynced(
            path + "/" + source.shard.file,
            bytes,
            permissions: configuration.filePermissions
        )
        var shard = source.shard
        shard.timings = nil
        return ShardReport(
            shard: shard,
            timings: Manifest.Timings(
                stageSeconds: stageSeconds,
                encodeSeconds: 0,
                writeSeconds: clock.elapsed,
                syncSeconds: 0,
                commitSeconds: 0
            )
        )
    }

    func removeAbandoned(_ path: String) {
        do { try Syscalls.removeTree(path) } catch {
            logger.error(
                "could not remove an abandoned checkpoint",
                metadata: ["path": "\(path)", "error": "\(error)"]
            )
        }
    }

    func makeManifest(step: Step, metadata: [String: String], reports: [ShardReport]) -> Manifest {
        func slowest(_ key: KeyPath<Manifest.Timings, Double>) -> Double {
            reports.map { $0.timings[keyPath: key] }.max() ?? 0
        }
        return Manifest(
            manifestVersion: Manifest.currentVersion,
            shardFormat: (configuration.incremental.isOn
                ? ShardFormat.incrementalVersion : ShardFormat.selfContainedVersion).description,
            library: "swift-checkpoint \(LibraryVersion.string)",
            zstdVersion: Zstd.versionString,
            step: step,
            createdAt: Date().formatted(.iso8601),
            rankCount: reports.count,
            hostName: Syscalls.hostName,
            metadata: configuration.metadata.merging(metadata) { _, new in new },
            settings: Manifest.Settings(
                compression: configuration.compression.description,
                filter: configuration.filter.description,
                chunkSize: configuration.chunkSize,
                threads: configuration.threads
            ),
            shards: reports.map { report in
                var shard = report.shard
                shard.timings = report.timings
                return shard
            },
            timings: Manifest.Timings(
                stageSeconds: slowest(\.stageSeconds),
                encodeSeconds: slowest(\.encodeSeconds),
                writeSeconds: slowest(\.writeSeconds),
                syncSeconds: slowest(\.syncSeconds),
                commitSeconds: 0
            )
        )
    }

    /// Deletes checkpoints the retention rule no longer keeps; only ever after a newer commit.
    func applyRetention() {
        do {
            for step in try directory.prunePlan(configuration.retention).delete {
                try directory.delete(step: step, permissions: configuration.directoryPermissions)
                logger.debug("deleted old checkpoint", metadata: ["step": "\(step)"])
            }
        } catch {
            logger.warning(
                "could not delete an old checkpoint; it will be retried after the next commit",
                metadata: ["error": "\(error)"]
            )
        }
    }
}

extension Communicator {
    /// Every rank learns whether every rank succeeded; on failure all throw the first failing rank's error.
    func agree(_ local: Shared<Bool>) throws {
        if size == 1 { _ = try local.get(); return }
        let all = try allgather(JSONCoding.encoder.encode(local).bytes)
        for bytes in all {
            if case .failure(let failure) = try JSONCoding.decoder.decode(Shared<Bool>.self, from: Data(bytes)) {
                throw failure.error
            }
        }
    }
}

extension Data {
    var bytes: [UInt8] { Array(self) }
}

extension Manifest.Entry {
    init(_ record: EntryRecord) {
        self.init(
            name: record.name,
            type: record.elementType.typeName,
            scalar: record.encoding == .json ? "json" : record.elementType.scalar.description,
            shape: record.shape,
            filter: record.filter.description,
            rawBytes: record.rawSize,
            storedBytes: record.storedSize,
            chunks: record.chunks.count
        )
    }
}
