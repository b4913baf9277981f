/// The aggregation stage: the ranks of a node send their encoded shards to the node's aggregator
/// (its lowest rank), which writes them as regions of one file in the staging area and answers each
/// rank with where its region is (Documentation/Aggregation.md).
///
/// Every rank of a node takes part whatever failed: a rank whose shard could not be encoded sends
/// its failure instead, and the aggregator answers every rank of the node with the node's first
/// failure, so rank 0's gather sees it and every rank throws the same error.
struct AggregationStage {
    let communicator: any Communicator
    let rank: Int
    /// The node name of every rank, in rank order.
    let nodeNames: [String]

    private static let reportTag = 7_200
    private static let bytesTag = 7_201
    private static let answerTag = 7_202

    /// The ranks of this rank's node (ascending), and the node's number: nodes are numbered by
    /// their lowest rank.
    var node: (members: [Int], number: Int) {
        let name = nodeNames[rank]
        let members = nodeNames.indices.filter { nodeNames[$0] == name }
        var seen: Set<String> = []
        var number = 0
        for other in nodeNames where !seen.contains(other) {
            if other == name { break }
            seen.insert(other)
            number += 1
        }
        return (members, number)
    }

    /// Runs this rank's part: sends `report` and `encoded` to the aggregator, or, on the aggregator,
    /// writes the node's file through `create` and calls `written` once it is synced.
    /// - Returns: This rank's report with its region, or the node's first failure.
    /// - Throws: A communication failure (a peer died or timed out), or the crash-test seam's error.
    func run(
        _ report: Shared<ShardReport>,
        encoded: [UInt8],
        create: (String) throws -> any ByteSink,
        written: () throws -> Void
    ) throws -> Shared<ShardReport> {
        let (members, number) = node
        guard let aggregator = members.first, aggregator != rank else {
            return try aggregate(
                report,
                encoded: encoded,
                members: members,
                number: number,
                create: create,
                written: written
            )
        }
        try communicator.send(value: report, to: aggregator, tag: Self.reportTag)
        if case .success = report { try communicator.send(encoded, to: aggregator, tag: Self.bytesTag) }
        return try communicator.receive(value: Shared<ShardReport>.self, from: aggregator, tag: Self.answerTag)
    }

    private func aggregate(
        _ own: Shared<ShardReport>,
        encoded: [UInt8],
        members: [Int],
        number: Int,
        create: (String) throws -> any ByteSink,
        written: () throws -> Void
    ) throws -> Shared<ShardReport> {
        let name = AggregateFile.fileName(node: number)
        var failure: RankFailure?
        var sink: (any ByteSink)?
        if case .success = own {
            do { sink = try create(name) } catch { failure = RankFailure(rank: rank, error: error) }
        }
        defer { sink?.close() }
        var offset = AggregateFile.headerSize
        var regions: [AggregateFile.Region] = []
        var reports: [Int: ShardReport] = [:]
        do {
            try AggregateFile.header().withUnsafeBytes { try sink?.writeAll($0) }
        } catch {
            failure = failure ?? RankFailure(rank: rank, error: error)
        }
        for member in members {
            let report: Shared<ShardReport>
            var bytes: [UInt8] = []
            if member == rank {
                report = own
                bytes = encoded
            } else {
                report = try communicator.receive(value: Shared<ShardReport>.self, from: member, tag: Self.reportTag)
                if case .success = report { bytes = try communicator.receive(from: member, tag: Self.bytesTag) }
            }
            switch report {
            case .failure(let reported): failure = failure ?? reported
            case .success(var shard):
                guard failure == nil, let sink else { continue }
                do {
                    guard bytes.count == shard.shard.fileBytes, shard.shard.rank == member else {
                        throw CheckpointError(.corruptData, "rank \(member) sent another shard than it reported")
                    }
                    try bytes.withUnsafeBytes { buffer in try sink.writeAll(buffer) }
                    regions.append(
                        AggregateFile.Region(rank: member, offset: offset, length: bytes.count, sha256: sha256(bytes))
                    )
                    shard.shard.file = name
                    shard.shard.offset = offset
                    reports[member] = shard
                    offset += bytes.count
                } catch {
                    failure = RankFailure(rank: rank, error: error)
                }
            }
        }
        if failure == nil, let sink {
            do {
                try AggregateFile.trailer(regions, tableOffset: offset).withUnsafeBytes { try sink.writeAll($0) }
                try sink.sync()
                try written()
            } catch {
                if error.isSimulatedCrash { throw error }
                failure = RankFailure(rank: rank, error: error)
            }
        }
        for member in members where member != rank {
            let answer: Shared<ShardReport> = failure.map { .failure($0) } ?? .success(reports[member]!)
            try communicator.send(value: answer, to: member, tag: Self.answerTag)
        }
        if let failure { return .failure(failure) }
        return reports[rank].map { .success($0) } ?? own
    }
}
