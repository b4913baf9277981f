import Foundation
import Logging

/// Drives ``CommitStateMachine``: performs each action (file operations through the stores,
/// collectives through the communicator) and feeds the results back. The only commit path: every
/// save, foreground or background, with or without redundancy, incremental or dumps, goes through
/// ``commit(_:step:metadata:stageSeconds:stagingError:over:inBackground:)``.
final class CommitDriver: Sendable {
    let configuration: Checkpointer.Configuration
    let levels: StorageLevels
    let incremental: IncrementalBases
    let dumps: DumpStage
    let crashes: CrashInjector
    let logger: Logger
    let rank: Int

    private static let partnerTag = 7_100
    /// Every rank's node name, learned at the first aggregated checkpoint.
    private let nodeNames = Locked<[String]?>(nil)

    init(
        configuration: Checkpointer.Configuration,
        levels: StorageLevels,
        incremental: IncrementalBases,
        dumps: DumpStage,
        crashes: CrashInjector,
        logger: Logger,
        rank: Int
    ) {
        self.configuration = configuration
        self.levels = levels
        self.incremental = incremental
        self.dumps = dumps
        self.crashes = crashes
        self.logger = logger
        self.rank = rank
    }

    /// The stages this checkpoint passes through; the same on every rank (it depends only on
    /// collective decisions and counts every rank keeps alike).
    private func plan(size: Int, inBackground: Bool) -> CommitStateMachine.Plan {
        var plan = CommitStateMachine.Plan()
        if let local = levels.local {
            plan.local = true
            plan.partnerCopy = local.settings.partnerCopy && size > 1
            plan.xorParity = local.xorSets != nil
            let count = local.commits.withLock { $0 } + 1
            let stopping = local.flushRequested.withLock { $0 }
            plan.flush = count % local.settings.flushEvery == 0 || stopping
        }
        plan.dump = !inBackground && configuration.processDumps != nil
        plan.aggregate = configuration.aggregation.isOn && !plan.local
        return plan
    }

    /// Commits one checkpoint through every stage of its plan (collective).
    /// - Throws: The staging error on the rank whose state could not be collected; on every rank the
    ///   same ``CheckpointError`` for any other rank's failure; a dump's failure when configured to throw.
    func commit(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        stageSeconds: Double,
        stagingError: (any Error)?,
        over communicator: any Communicator,
        inBackground: Bool
    ) throws -> Manifest {
        let plan = plan(size: communicator.size, inBackground: inBackground)
        var machine = CommitStateMachine(
            rank: rank,
            size: communicator.size,
            step: step,
            plan: plan,
            stagingFailure: stagingError.map { RankFailure(rank: rank, error: $0) }
        )
        var run = Run(step: step, metadata: metadata, stageSeconds: stageSeconds, plan: plan)
        // A flushed checkpoint is full: the shared level must not depend on chunks only node-local
        // stores hold.
        run.incremental = incremental.plan(for: step, full: plan.flush, store: levels.primary)
        var action = machine.start()
        do {
            while true {
                switch action {
                case .beginShared(let phase):
                    action = try machine.sharedBegun(
                        attempt {
                            let area = try levels.shared.begin(
                                step: step,
                                replacingUnrestorable: levels.unrestorable.withLock { $0.remove(step) != nil }
                            )
                            run.staged[phase == .primary ? .primaryShared : .flush] = area
                            return area
                        }
                    )
                case .shareStaging(let area):
                    action = machine.stagingShared(try communicator.broadcastValue(area, root: 0))
                case .beginLocal:
                    action = try machine.localBegun(
                        attempt {
                            guard let store = levels.local?.store else { preconditionFailure("no local level") }
                            try Syscalls.makeDirectories(
                                store.directory.path,
                                permissions: configuration.directoryPermissions
                            )
                            try Syscalls.checkPrivateDirectory(
                                store.directory.path,
                                groupMayWrite: configuration.directorySharing.allowsGroup
                            )
                            let area = try store.begin(step: step)
                            run.staged[.local] = area
                            return area
                        }
                    )
                case .writeShard(let area):
                    action = try machine.shardWritten(
                        attempt {
                            let report = try writeShard(writer, into: area, run: &run)
                            try crashes.reached(.shardWritten)
                            return report
                        }
                    )
                case .copyShard(let area):
                    action = try machine.shardWritten(
                        attempt {
                            let report = try copyShard(into: area, run: run)
                            try crashes.reached(.flushCopied)
                            return report
                        }
                    )
                case .aggregate(let area, let report):
                    action = machine.aggregated(try aggregate(area, report, run: &run, over: communicator))
                case .exchangeCopies(let area, let report):
                    action = machine.copiesExchanged(try exchangeCopies(area, report, over: communicator))
                case .encodeParity(let area, let report):
                    action = machine.parityEncoded(try encodeParity(area, report, over: communicator))
                case .gatherReport(let report):
                    if let gathered = try communicator.gather(value: report, root: 0) {
                        action = machine.reportsGathered(gathered)
                    } else {
                        action = machine.reportSent()
                    }
                case .commitShared(let area, let reports, let phase):
                    action = try machine.sharedCommitted(
                        attempt {
                            var manifest =
                                phase == .flush
                                ? try flushedManifest(reports, run: run) : try makeManifest(reports, run: &run)
                            let clock = Stopwatch()
                            try levels.shared.commit(area, manifest: manifest) { point throws(CheckpointError) in
                                try crashes.reached(phase == .flush ? .flushing(point) : .committing(point))
                            }
                            run.staged[phase == .primary ? .primaryShared : .flush] = nil
                            manifest.timings.commitSeconds = clock.elapsed
                            return manifest
                        }
                    )
                case .abortShared(let area, let failure):
                    if let area { levels.shared.abandon(area) }
                    run.staged[.primaryShared] = nil
                    run.staged[.flush] = nil
                    logFailure(step, failure)
                    action = machine.aborted()
                case .shareOutcome(let outcome, _):
                    action = machine.outcomeShared(try communicator.broadcastValue(outcome, root: 0))
                case .makeManifest(let reports):
                    action = try machine.manifestMade(attempt { try makeManifest(reports, run: &run) })
                case .shareManifest(let manifest):
                    action = machine.manifestShared(try communicator.broadcastValue(manifest, root: 0))
                case .commitLocal(let area, let manifest):
                    action = try machine.localCommitted(
                        attempt {
                            guard let store = levels.local?.store else { preconditionFailure("no local level") }
                            try store.commit(area, manifest: manifest) { point throws(CheckpointError) in
                                try crashes.reached(.committing(point))
                            }
                            run.staged[.local] = nil
                            run.committedLocally = manifest
                            return true
                        }
                    )
                case .agree(let local):
                    action = machine.agreed(try communicator.agreement(local))
                case .abandonLocal(let area, let withdraw, let failure):
                    // A failed local commit leaves its area staged: remove it too.
                    if let area = area ?? run.staged[.local] { levels.local?.store.abandon(area) }
                    run.staged[.local] = nil
                    if withdraw { try? levels.local?.store.delete(step: step) }
                    run.committedLocally = nil
                    if rank == 0 { logFailure(step, failure) }
                    action = machine.aborted()
                case .retain(let manifest):
                    if let local = levels.local {
                        local.commits.withLock { $0 += 1 }
                        if plan.flush { local.flushRequested.withLock { $0 = false } }
                    }
                    run.outcome = manifest
                    applyRetention()
                    try crashes.reached(.retentionApplied)
                    action = machine.retained()
                case .dump(let manifest):
                    run.dumpFailure = try dumps.checkpointCommitted(manifest.step, inBackground: false)
                    action = machine.dumped()
                case .done(.success(let manifest)):
                    incremental.committed(run.nextBase)
                    if let link = run.link { levels.lineageHead.withLock { $0 = link } }
                    if inBackground { _ = try dumps.checkpointCommitted(manifest.step, inBackground: true) }
                    if let dumpFailure = run.dumpFailure { throw dumpFailure }
                    return run.outcome ?? manifest
                case .done(.failure(let failure)):
                    if failure.rank == rank, let stagingError { throw stagingError }
                    throw failure.error
                }
            }
        } catch {
            if error.isSimulatedCrash { throw error }  // a crashed process cleans nothing up
            // A collective failed (a peer died or timed out): nothing was committed; clean up what we created.
            run.abandon(levels)
            throw error
        }
    }

    /// What one commit created and learned, for the actions that follow.
    private struct Run {
        enum Area: Hashable { case primaryShared, local, flush }
        let step: Step
        let metadata: [String: String]
        let stageSeconds: Double
        let plan: CommitStateMachine.Plan
        var incremental: IncrementalBases.Plan?
        var staged: [Area: StagingArea] = [:]
        var nextBase: ChunkBase?
        var committedLocally: Manifest?
        /// The link the next checkpoint records to this one, once its manifest is made (rank 0).
        var link: Manifest.Link?
        var outcome: Manifest?
        var dumpFailure: (any Error)?
        /// This rank's encoded shard, on its way to its node's aggregator.
        var encoded: [UInt8] = []

        init(step: Step, metadata: [String: String], stageSeconds: Double, plan: CommitStateMachine.Plan) {
            self.step = step
            self.metadata = metadata
            self.stageSeconds = stageSeconds
            self.plan = plan
        }

        func abandon(_ levels: StorageLevels) {
            if let area = staged[.primaryShared] { levels.shared.abandon(area) }
            if let area = staged[.flush] { levels.shared.abandon(area) }
            if let area = staged[.local] { levels.local?.store.abandon(area) }
            if let manifest = committedLocally { try? levels.local?.store.delete(step: manifest.step) }
        }
    }

    /// Runs one rank's part of an action: its failure becomes a result every rank learns, except
    /// the crash-test seam's, which stops the commit where it is.
    private func attempt<Value: Codable & Sendable>(_ body: () throws -> Value) throws -> Shared<Value> {
        do { return .success(try body()) } catch {
            if error.isSimulatedCrash { throw error }
            return .failure(RankFailure(rank: rank, error: error))
        }
    }

    // MARK: Stages

    /// Writes this rank's shard into the area; with incremental checkpoints, also records the
    /// chunks the next one may use.
    private func writeShard(_ writer: SnapshotWriter, into area: StagingArea, run: inout Run) throws -> ShardReport {
        let store = run.plan.local ? levels.local!.store : levels.shared
        let options = EncodingOptions(
            compressionLevel: configuration.compression.level,
            threads: configuration.threads,
            chunkSize: configuration.chunkSize,
            filter: configuration.filter,
            permissions: configuration.filePermissions,
            incremental: run.incremental != nil,
            checksum: configuration.resolvedChunkChecksum
        )
        let file = CheckpointLayout.shardFileName(rank: rank)
        let memory = run.plan.aggregate ? MemorySink(path: file) : nil
        let sink = try memory ?? store.create(file, in: area)
        defer { sink.close() }
        let summary = try ShardWriter.write(writer.entries, to: sink, options: options, base: run.incremental?.base)
        run.encoded = memory?.bytes ?? []
        run.nextBase = run.incremental.map { plan in
            ChunkBase(index: summary.index, step: run.step, indexDigest: summary.indexDigest, sinceFull: plan.sinceFull)
        }
        return ShardReport(
            step: run.step,
            shard: Manifest.Shard(
                rank: rank,
                file: file,
                fileBytes: summary.fileSize,
                indexSHA256: hexString(summary.indexDigest),
                rawBytes: summary.entries.reduce(0) { $0 + $1.rawSize },
                storedBytes: summary.entries.reduce(0) { $0 + $1.storedSize },
                entries: summary.entries.map(Manifest.Entry.init).recordingBlocks(of: writer),
                references: summary.bases.isEmpty ? nil : summary.bases.map { Step(rawValue: $0.step) },
                referencedBytes: run.incremental == nil ? nil : summary.referencedBytes
            ),
            timings: Manifest.Timings(
                stageSeconds: run.stageSeconds,
                encodeSeconds: summary.encodeSeconds,
                writeSeconds: summary.writeSeconds,
                syncSeconds: summary.syncSeconds,
                commitSeconds: 0
            )
        )
    }

    /// Flush: streams this rank's committed node-local shard into the shared area, keeping its record.
    private func copyShard(into area: StagingArea, run: Run) throws -> ShardReport {
        guard let local = levels.local, let manifest = run.committedLocally else {
            preconditionFailure("a flush without a node-local commit")
        }
        let clock = Stopwatch()
        var shard = manifest.shards[rank]
        let source = try local.store.openCommitted(shard.file, step: run.step)
        guard try source.size() == shard.fileBytes else {
            throw CheckpointError(
                .corruptData,
                "the node-local shard changed size since it was committed; it cannot be flushed",
                path: source.path
            )
        }
        let sink = try levels.shared.create(shard.file, in: area)
        try Self.stream(from: source, to: sink)
        let timings = shard.timings
        shard.timings = nil
        return ShardReport(
            step: run.step,
            shard: shard,
            timings: Manifest.Timings(
                stageSeconds: timings?.stageSeconds ?? run.stageSeconds,
                encodeSeconds: timings?.encodeSeconds ?? 0,
                writeSeconds: clock.elapsed,
                syncSeconds: 0,
                commitSeconds: 0
            )
        )
    }

    /// Aggregation stage: this rank's encoded shard goes to its node's aggregator, which writes the
    /// node's file; every rank of the node takes part whatever failed.
    private func aggregate(
        _ area: StagingArea,
        _ report: Shared<ShardReport>,
        run: inout Run,
        over communicator: any Communicator
    ) throws -> Shared<ShardReport> {
        let names: [String]
        if let known = nodeNames.withLock({ $0 }) {
            names = known
        } else {
            names = try communicator.allgather(value: communicator.nodeName)
            nodeNames.withLock { $0 = names }
        }
        defer { run.encoded = [] }
        let stage = AggregationStage(communicator: communicator, rank: rank, nodeNames: names)
        return try stage.run(
            report,
            encoded: run.encoded,
            create: { name in try levels.shared.create(name, in: area) },
            written: { try crashes.reached(.aggregateWritten) }
        )
    }

    /// Copies a source into a sink in parts of ``FileExchange/partSize``, then syncs and closes it.
    static func stream(from source: any ByteSource, to sink: any ByteSink) throws(CheckpointError) {
        defer { sink.close() }
        let size = try source.size()
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, min(size, FileExchange.partSize)),
            alignment: 64
        )
        defer { buffer.deallocate() }
        var offset = 0
        while offset < size {
            let count = min(buffer.count, size - offset)
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[..<count])
            try source.read(into: part, at: offset)
            try sink.writeAll(UnsafeRawBufferPointer(part))
            offset += count
        }
        try sink.sync()
    }

    /// Partner stage: sends this rank's staged shard to its partner and stores the shard of the
    /// rank it holds, streamed in bounded memory. Every rank takes part whatever failed.
    private func exchangeCopies(
        _ area: StagingArea?,
        _ report: Shared<ShardReport>,
        over communicator: any Communicator
    ) throws -> Shared<ShardReport> {
        guard let local = levels.local else { preconditionFailure("a partner copy without a local level") }
        let outgoing = Result<[FileExchange.Outgoing], CheckpointError> { () throws(CheckpointError) in
            let shard = try report.get().shard
            guard let area else { throw CheckpointError(.ioFailure, "no staging area") }
            return [FileExchange.Outgoing(name: shard.file, source: try local.store.open(shard.file, in: area))]
        }
        let exchange = FileExchange(communicator: communicator, tag: Self.partnerTag)
        let expected = CheckpointLayout.shardFileName(rank: local.partners.held[rank])
        var store: ((String, Int) throws(CheckpointError) -> any ByteSink)?
        if let area {
            store = { (name: String, _: Int) throws(CheckpointError) -> any ByteSink in
                guard name == expected else {
                    throw CheckpointError(.corruptData, "the partner sent '\(name)', not '\(expected)'")
                }
                return try local.store.create(name, in: area)
            }
        }
        let received = try exchange.run(
            sending: outgoing,
            to: local.partners.partner[rank],
            from: local.partners.held[rank],
            store: store
        )
        guard case .success = report else { return report }
        if case .failure(let failure) = received, failure.rank == rank { return .failure(failure) }
        try crashes.reached(.partnerCopied)
        return report
    }

    // MARK: Manifests

    private func makeManifest(_ reports: [ShardReport], run: inout Run) throws -> Manifest {
        let clock = Stopwatch()
        func slowest(_ key: KeyPath<Manifest.Timings, Double>) -> Double {
            reports.map { $0.timings[keyPath: key] }.max() ?? 0
        }
        var manifest = Manifest(
            manifestVersion: run.plan.aggregate ? Manifest.currentVersion : Manifest.perRankVersion,
            shardFormat: ShardFormat.version(
                incremental: run.incremental != nil,
                checksum: configuration.resolvedChunkChecksum
            ).description,
            library: "swift-checkpoint \(LibraryVersion.string)",
            zstdVersion: Zstd.versionString,
            step: run.step,
            createdAt: Date().formatted(.iso8601),
            rankCount: reports.count,
            hostName: Syscalls.hostName,
            metadata: configuration.metadata.merging(run.metadata) { _, new in new },
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
        if let plan = run.incremental {
            manifest.incremental = Manifest.Incremental(
                references: Set(reports.flatMap { $0.shard.references ?? [] }).sorted(),
                sinceFull: plan.sinceFull,
                referencedBytes: reports.reduce(0) { $0 + ($1.shard.referencedBytes ?? 0) }
            )
        }
        manifest.authentication = configuration.authentication?.record
        if let lineage = configuration.lineage {
            manifest.lineage = Manifest.Lineage(runID: lineage.runID, previous: levels.lineageHead.withLock { $0 })
        }
        try BlockChecks.checkSaved(manifest.shards)
        // Before the link, whose digest covers the timings.
        manifest.timings.manifestSeconds = clock.elapsed
        run.link = try manifest.link()
        return manifest
    }

    /// The flushed copy's manifest: the node-local one, with the flush's copy timings.
    private func flushedManifest(_ reports: [ShardReport], run: Run) throws -> Manifest {
        guard var manifest = run.committedLocally else { preconditionFailure("a flush without a local commit") }
        manifest.dumps = nil
        for report in reports where report.shard.rank < manifest.shards.count {
            guard report.shard.file == manifest.shards[report.shard.rank].file,
                report.shard.indexSHA256 == manifest.shards[report.shard.rank].indexSHA256
            else {
                throw CheckpointError(.corruptData, "rank \(report.shard.rank) flushed another shard than it committed")
            }
        }
        return manifest
    }

    // MARK: Retention

    /// Deletes checkpoints the retention rule no longer keeps, on each level (shared: rank 0; node-local:
    /// every rank); only ever after a newer commit, and never one a kept checkpoint uses chunks of.
    private func applyRetention() {
        var stores: [any CheckpointStore] = levels.local.map { [$0.store] } ?? []
        if rank == 0 { stores.append(levels.shared) }
        for store in stores {
            do {
                let plan = try store.directory.prunePlan(configuration.retention, among: ownSteps(of: store))
                for step in plan.deletionOrder {
                    try store.delete(step: step)
                    logger.debug(
                        "deleted old checkpoint",
                        metadata: ["step": "\(step)", "level": "\(store.directory.path)"]
                    )
                }
            } catch {
                logger.warning(
                    "could not delete an old checkpoint; it will be retried after the next commit",
                    metadata: ["error": "\(error)", "level": "\(store.directory.path)"]
                )
            }
        }
    }

    /// The committed steps retention counts and may delete. With a key or a lineage configured, a
    /// checkpoint that is not this run's (placed in the directory by someone else) is neither: it
    /// could otherwise push this run's own checkpoints out of `keepLast`.
    private func ownSteps(of store: any CheckpointStore) throws(CheckpointError) -> [Step] {
        let steps = try store.committedSteps()
        guard configuration.authentication != nil || configuration.lineage != nil else { return steps }
        var own: [Step] = []
        for step in steps {
            do throws(CheckpointError) {
                _ = try store.directory.loadManifest(step: step)
            } catch {
                if error.code == .authenticationFailed || error.code == .lineageMismatch {
                    logger.warning(
                        "a checkpoint in the directory is not this run's; retention neither counts nor deletes it",
                        metadata: ["step": "\(step)", "level": "\(store.directory.path)", "reason": "\(error.message)"]
                    )
                    continue
                }
            }
            own.append(step)
        }
        return own
    }

    private func logFailure(_ step: Step, _ failure: RankFailure) {
        logger.error(
            "checkpoint failed; the previous checkpoints are intact",
            metadata: ["step": "\(step)", "error": "\(failure.error)"]
        )
    }
}

extension Communicator {
    /// Every rank learns whether every rank succeeded; the first failing rank's failure otherwise.
    ///
    /// A reduction to the lowest failing rank, then, only on failure, that rank's failure broadcast:
    /// constant data per rank, whatever the number of ranks.
    func agreement(_ local: Shared<Bool>) throws -> Shared<Bool> {
        if size == 1 { return local }
        let failed: Bool
        if case .failure = local { failed = true } else { failed = false }
        let first = Int(try allreduce(Int64(failed ? rank : size), .min))
        guard first < size else { return .success(true) }
        return try broadcastValue(rank == first ? local : nil, root: first)
    }

    /// Every rank learns whether every rank succeeded; on failure all throw the first failing rank's error.
    func agree(_ local: Shared<Bool>) throws {
        if size == 1 { _ = try local.get(); return }
        _ = try agreement(local).get()
    }
}

extension Error {
    /// Whether this is the crash-test seam's error (the commit stops without cleaning up).
    var isSimulatedCrash: Bool {
        (self as? CheckpointError)?.message == SimulatedCrash.error.message
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
            chunks: record.chunks.count,
            fields: record.encoding == .raw ? record.elementType.fields : nil
        )
    }
}
