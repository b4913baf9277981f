import Crypto

extension CommitDriver {
    static let parityTag = 7_102

    /// XOR stage: within each XOR set, every member sends each other member the part of its staged
    /// shard that member's parity holds, and writes the XOR of the parts it receives, with a header
    /// naming the set, into its area. Memory stays a few parts of ``FileExchange/partSize`` per
    /// member. Every rank takes part whatever failed; a rank that fails locally keeps exchanging
    /// (zeros) and reports its failure, so no rank hangs.
    func encodeParity(
        _ area: StagingArea?,
        _ report: Shared<ShardReport>,
        over communicator: any Communicator
    ) throws -> Shared<ShardReport> {
        guard let local = levels.local, let sets = local.xorSets else {
            preconditionFailure("an XOR parity without XOR sets")
        }
        var source: (any ByteSource)?
        let mine = Shared<XORParity.Member>(rank: rank) {
            let shard = try report.get().shard
            guard let area else { throw CheckpointError(.ioFailure, "no staging area") }
            let opened = try local.store.open(shard.file, in: area)
            source = opened
            return XORParity.Member(rank: rank, length: try opened.size(), sha256: try XORParity.digest(of: opened))
        }
        // Every rank learns every rank's record: the same decision everywhere, and a set never waits
        // for a member that failed before it could send.
        let all = try communicator.allgather(value: mine)
        guard case .success = report else { return report }
        for result in all { if case .failure(let failure) = result { return .failure(failure) } }
        guard let source, let area else { preconditionFailure("a staged shard without a source") }
        let members = sets.members(of: rank)
        let position = members.firstIndex(of: rank)!
        let header = XORParity.Header(
            position: position,
            members: members.map { (try? all[$0].get()) ?? XORParity.Member(rank: $0, length: 0, sha256: []) },
            partSize: XORParity.partSize(lengths: members.map { (try? all[$0].get().length) ?? 0 })
        )
        var failure: CheckpointError?
        var sink: (any ByteSink)?
        var hasher = SHA256()
        func write(_ bytes: [UInt8]) {
            guard failure == nil, let sink else { return }
            do throws(CheckpointError) {
                try withTypedThrows {
                    try bytes.withUnsafeBytes { bytes in
                        try sink.writeAll(bytes)
                        hasher.update(bufferPointer: bytes)
                    }
                }
            } catch { failure = error }
        }
        do throws(CheckpointError) { sink = try local.store.create(XORParity.fileName(rank: rank), in: area) } catch {
            failure = error
        }
        defer { sink?.close() }
        write(header.encoded())
        let length = header.members[position].length
        let setSize = members.count
        for offset in stride(from: 0, to: header.partSize, by: FileExchange.partSize) {
            let count = min(FileExchange.partSize, header.partSize - offset)
            for (holder, destination) in members.enumerated() where holder != position {
                var part = [UInt8](repeating: 0, count: count)
                if failure == nil {
                    do throws(CheckpointError) {
                        try withTypedThrows {
                            try part.withUnsafeMutableBytes { buffer in
                                try XORParity.readPart(
                                    source,
                                    length: length,
                                    part: XORParity.part(of: position, heldBy: holder, setSize: setSize),
                                    partSize: header.partSize,
                                    offset: offset,
                                    into: buffer
                                )
                            }
                        }
                    } catch { failure = error }
                }
                try communicator.send(part, to: destination, tag: Self.parityTag)
            }
            var parity = [UInt8](repeating: 0, count: count)
            for (member, origin) in members.enumerated() where member != position {
                let part = try communicator.receive(from: origin, tag: Self.parityTag)
                guard part.count == count else {
                    failure =
                        failure ?? CheckpointError(.corruptData, "rank \(origin) sent a parity part of another size")
                    continue
                }
                part.withUnsafeBytes { part in parity.withUnsafeMutableBytes { XORParity.combine(part, into: $0) } }
            }
            write(parity)
        }
        write(Array(hasher.finalize()))
        if failure == nil, let sink {
            do throws(CheckpointError) { try sink.sync() } catch { failure = error }
        }
        if let failure { return .failure(RankFailure(rank: rank, error: failure)) }
        try crashes.reached(.parityWritten)
        return report
    }
}
