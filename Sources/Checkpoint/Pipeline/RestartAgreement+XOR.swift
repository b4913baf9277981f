import Crypto
import Foundation

extension RestartAgreement {
    static let rebuildTag = 7_103

    /// What a rank of an XOR set can give towards rebuilding a lost member's shard of `step`.
    private struct XORStatus: Codable {
        /// Holds its own shard and an intact parity file of its set.
        var intact = false
        /// Per member of its set: the older steps that member's (incremental) shard uses.
        var references: [Int: [Step]] = [:]
    }

    /// What the first surviving member sends the lost one before the parity parts.
    private struct Recipe: Codable {
        var length = 0
        var sha256: [UInt8] = []
        var manifest: [UInt8] = []
        var checksum: [UInt8] = []
        var seal: [UInt8]?
        var failure: String?
    }

    /// A survivor's opened files of one step.
    private struct Contribution {
        var shard: any ByteSource
        var length: Int
        var parity: any ByteSource
        var header: XORParity.Header
    }

    /// Collective: rebuilds, within each XOR set that lost exactly one member's node-local shard of
    /// `step`, that shard (and the older ones its incremental shard uses) from the other members' shards
    /// and parities, verifies it against the digest the parities record, and stores it node-locally.
    /// - Parameter holding: Whether each rank holds its own node-local shard of `step`.
    /// - Returns: Per rank, whether its shard was rebuilt (the same on every rank).
    func rebuildFromXORSets(_ step: Step, holding: [Bool], local: LocalLevel) throws -> [Bool] {
        let size = communicator.size
        // Nothing to rebuild when every rank holds its shard, or none does (all node-local storage
        // gone, or a restart on another number of ranks).
        guard let sets = local.xorSets, holding.contains(false), holding.contains(true) else {
            return Array(repeating: false, count: size)
        }
        let members = sets.members(of: rank)
        var status = XORStatus()
        if holding[rank], let manifest = try? local.store.directory.loadManifest(step: step),
            (try? contribution(step, members: members, local: local)) != nil
        {
            status.intact = true
            for member in members where member < manifest.shards.count {
                status.references[member] = manifest.shards[member].references ?? []
            }
        }
        let statuses = try communicator.allgather(value: status)
        var targets: [Int: [Step]] = [:]
        for set in sets.sets {
            let lost = set.filter { !holding[$0] }
            guard !lost.isEmpty else { continue }
            let survivors = set.filter { holding[$0] }
            let reason: String
            if lost.count > 1 {
                reason = "\(lost.count) members of one XOR set lost their node-local shards; a set rebuilds one"
            } else if let damaged = survivors.first(where: { !statuses[$0].intact }) {
                reason = "rank \(damaged)'s parity or shard in the set is missing or damaged"
            } else {
                targets[lost[0]] = [step] + (statuses[survivors[0]].references[lost[0]] ?? [])
                continue
            }
            logger.jobWide(
                .warning,
                "cannot rebuild from the XOR set; falling back to the partner copy or the flushed checkpoint",
                metadata: [
                    "step": "\(step)", "set": "\(set)", "lost": "\(lost)", "reason": "\(reason)",
                ],
                rank: rank
            )
        }
        let target = targets.first { sets.setOf[$0.key] == sets.setOf[rank] }
        var rebuilt = false
        let scratch = target?.key == rank ? try? Self.recoveryFolder(local) : nil
        defer { if let scratch { try? Syscalls.removeTree(scratch) } }
        var failure: CheckpointError?
        var names: [String] = []
        for older in Set(targets.values.joined()).sorted() {
            // Every rank learns whether every survivor that must give towards `older` can.
            let involved = target.map { $0.value.contains(older) && $0.key != rank } ?? false
            let opened =
                involved
                ? Result { () throws(CheckpointError) in try contribution(older, members: members, local: local) } : nil
            // Each survivor's part size (-1: it cannot give): they must agree, since it fixes how many
            // messages every survivor sends and the lost member receives.
            let ready = try communicator.allgather(value: opened.map { (try? $0.get())?.header.partSize ?? -1 } ?? 0)
            guard let (lost, steps) = target, steps.contains(older) else { continue }
            let partSizes = Set(members.filter { $0 != lost }.map { ready[$0] })
            guard partSizes.count == 1, let partSize = partSizes.first, partSize >= 0 else {
                if rank == lost {
                    failure =
                        failure
                        ?? CheckpointError(
                            .incompleteCheckpoint,
                            "a member's parity or shard of step \(older) is missing or damaged"
                        )
                }
                continue
            }
            if rank == lost {
                do throws(CheckpointError) {
                    names += try receiveRebuilt(
                        older,
                        lost: lost,
                        members: members,
                        partSize: partSize,
                        into: scratch,
                        local: local
                    )
                } catch { failure = failure ?? error }
            } else if let contribution = try? opened?.get() {
                try give(older, contribution, lost: lost, members: members, local: local)
            }
        }
        if let target, target.key == rank {
            do throws(CheckpointError) {
                if let failure { throw failure }
                guard let scratch else { throw CheckpointError(.ioFailure, "no room to rebuild the shard") }
                try withTypedThrows { try install(names, from: scratch, local: local) }
                rebuilt = true
                metrics.partnerRecoveries.increment()
                logger.notice(
                    "rebuilt this rank's lost node-local shard from its XOR set",
                    metadata: ["step": "\(step)", "rank": "\(rank)", "set": "\(members)"]
                )
            } catch {
                logger.warning(
                    "could not rebuild the shard from the XOR set; falling back to the partner copy or the flushed checkpoint",
                    metadata: ["step": "\(step)", "rank": "\(rank)", "set": "\(members)", "error": "\(error)"]
                )
            }
        }
        return try communicator.allgather(value: rebuilt)
    }

    /// This rank's committed shard and parity of `step`, checked to name `members` as its set.
    private func contribution(_ step: Step, members: [Int], local: LocalLevel) throws(CheckpointError) -> Contribution {
        let parity = try local.store.openCommitted(XORParity.fileName(rank: rank), step: step)
        let header = try XORParity.Header.read(parity)
        guard header.members.map(\.rank) == members, header.members[header.position].rank == rank else {
            throw CheckpointError(.corruptData, "the XOR parity names another set than \(members)", path: parity.path)
        }
        let shard = try local.store.openCommitted(CheckpointLayout.shardFileName(rank: rank), step: step)
        let length = try shard.size()
        guard length == header.members[header.position].length else {
            throw CheckpointError(
                .corruptData,
                "the shard's size differs from its XOR parity's record",
                path: shard.path
            )
        }
        return Contribution(shard: shard, length: length, parity: parity, header: header)
    }

    /// A survivor's part: the recipe (first survivor only), then per part of the lost shard either
    /// the matching stretch of its parity or of its own shard, in bounded messages.
    private func give(
        _ step: Step,
        _ contribution: Contribution,
        lost: Int,
        members: [Int],
        local: LocalLevel
    ) throws {
        let setSize = members.count
        let position = members.firstIndex(of: rank)!
        let lostPosition = members.firstIndex(of: lost)!
        if members.first(where: { $0 != lost }) == rank {
            var recipe = Recipe()
            do throws(CheckpointError) {
                recipe.length = contribution.header.members[lostPosition].length
                recipe.sha256 = contribution.header.members[lostPosition].sha256
                func read(_ name: String) throws(CheckpointError) -> [UInt8] {
                    let source = try local.store.openCommitted(name, step: step)
                    let size = try source.size()
                    guard size <= 256 << 20 else { throw CheckpointError(.corruptData, "'\(name)' is too large") }
                    var bytes = [UInt8](repeating: 0, count: size)
                    try withTypedThrows {
                        try bytes.withUnsafeMutableBytes { buffer in try source.read(into: buffer, at: 0) }
                    }
                    return bytes
                }
                recipe.manifest = try read(Manifest.fileName)
                recipe.checksum = try read(Manifest.checksumFileName)
                if local.store.directory.authentication != nil { recipe.seal = try read(Authentication.fileName) }
            } catch { recipe.failure = error.description }
            try communicator.send(Array(try JSONCoding.encoder.encode(recipe)), to: lost, tag: Self.rebuildTag)
        }
        let partSize = contribution.header.partSize
        for part in 0..<setSize - 1 {
            let holder = XORParity.holder(ofPart: part, of: lostPosition, setSize: setSize)
            for offset in stride(from: 0, to: partSize, by: FileExchange.partSize) {
                var bytes = [UInt8](repeating: 0, count: min(FileExchange.partSize, partSize - offset))
                // A failing read sends zeros: the lost member's digest check then refuses the result.
                try? bytes.withUnsafeMutableBytes { buffer throws(CheckpointError) in
                    if holder == position {
                        try contribution.parity.read(into: buffer, at: contribution.header.byteCount + offset)
                    } else {
                        try XORParity.readPart(
                            contribution.shard,
                            length: contribution.length,
                            part: XORParity.part(of: position, heldBy: holder, setSize: setSize),
                            partSize: partSize,
                            offset: offset,
                            into: buffer
                        )
                    }
                }
                try communicator.send(bytes, to: lost, tag: Self.rebuildTag)
            }
        }
    }

    /// The lost member's part: receives the recipe and every part's contributions, writes the
    /// rebuilt shard and the manifest into `scratch` (named as ``install(_:from:local:)`` expects),
    /// and checks the shard against its recorded length and SHA-256. It receives every message the
    /// survivors send whatever fails, so that none is left for a later exchange.
    /// - Returns: The names written.
    private func receiveRebuilt(
        _ step: Step,
        lost: Int,
        members: [Int],
        partSize: Int,
        into scratch: String?,
        local: LocalLevel
    ) throws(CheckpointError) -> [String] {
        let survivors = members.filter { $0 != lost }
        let setSize = members.count
        var failure: CheckpointError?
        let recipeBytes = try withTypedThrows { try communicator.receive(from: survivors[0], tag: Self.rebuildTag) }
        let recipe = (try? JSONCoding.decoder.decode(Recipe.self, from: Data(recipeBytes))) ?? Recipe()
        if recipe.sha256.isEmpty {
            failure = CheckpointError(.corruptData, "rank \(survivors[0]) sent a malformed rebuild recipe")
        } else if let reason = recipe.failure {
            failure = CheckpointError(
                .incompleteCheckpoint,
                "rank \(survivors[0]) could not send the manifest: \(reason)"
            )
        } else if recipe.length > (setSize - 1) * partSize {
            failure = CheckpointError(.corruptData, "the XOR set records a shard longer than its parts")
        }
        let prefix = String(step.rawValue) + "."
        let permissions = configuration.filePermissions
        var sink: OpenFile?
        if failure == nil {
            do throws(CheckpointError) {
                guard let scratch else { throw CheckpointError(.ioFailure, "no room to rebuild the shard") }
                sink = try OpenFile.createExclusive(
                    scratch + "/" + prefix + CheckpointLayout.shardFileName(rank: lost),
                    permissions: permissions
                )
            } catch { failure = error }
        }
        defer { sink?.close() }
        var hasher = SHA256()
        var written = 0
        for _ in 0..<setSize - 1 {
            for offset in stride(from: 0, to: partSize, by: FileExchange.partSize) {
                let count = min(FileExchange.partSize, partSize - offset)
                var part = [UInt8](repeating: 0, count: count)
                for origin in survivors {
                    let bytes = try withTypedThrows { try communicator.receive(from: origin, tag: Self.rebuildTag) }
                    guard bytes.count == count else {
                        failure = failure ?? CheckpointError(.corruptData, "rank \(origin) sent a part of another size")
                        continue
                    }
                    bytes.withUnsafeBytes { bytes in part.withUnsafeMutableBytes { XORParity.combine(bytes, into: $0) }
                    }
                }
                guard failure == nil, let sink else { continue }
                let keep = max(0, min(count, recipe.length - written))
                do throws(CheckpointError) {
                    try withTypedThrows {
                        try part.withUnsafeBytes { bytes in
                            let kept = UnsafeRawBufferPointer(rebasing: bytes[..<keep])
                            try sink.writeAll(kept)
                            hasher.update(bufferPointer: kept)
                        }
                    }
                } catch { failure = error }
                written += keep
            }
        }
        if let failure { throw failure }
        guard let sink, let scratch else { throw CheckpointError(.ioFailure, "no room to rebuild the shard") }
        try sink.sync()
        guard written == recipe.length, Array(hasher.finalize()) == recipe.sha256 else {
            throw CheckpointError(
                .corruptData,
                "the shard rebuilt from the XOR set does not match the SHA-256 its parities record"
            )
        }
        var names = [prefix + CheckpointLayout.shardFileName(rank: lost)]
        var files = [(Manifest.fileName, recipe.manifest), (Manifest.checksumFileName, recipe.checksum)]
        if let seal = recipe.seal { files.append((Authentication.fileName, seal)) }
        for (name, bytes) in files {
            let file = try OpenFile.createExclusive(scratch + "/" + prefix + name, permissions: permissions)
            defer { file.close() }
            try withTypedThrows { try bytes.withUnsafeBytes { bytes in try file.writeAll(bytes) } }
            try file.sync()
            names.append(prefix + name)
        }
        return names
    }
}
