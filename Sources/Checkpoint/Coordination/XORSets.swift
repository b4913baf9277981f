/// Which ranks form each XOR set (``Checkpointer/Configuration/Redundancy/xorSetSize``).
///
/// The rule: nodes are ordered by name and each node's ranks by rank; ranks are dealt round-robin
/// across the nodes (the first rank of every node, then the second of every node, …) and the sequence
/// is cut into consecutive sets of `setSize`. With as many ranks on every node and at least `setSize`
/// nodes, the members of every set are on different nodes. A last set shorter than 2 joins the set
/// before it. An uneven layout may put two members of a set on one node: ``membersShareNode`` says so,
/// and such a set survives the loss of one rank's files, not of that node.
struct XORSets: Sendable, Equatable {
    /// Every set's ranks, in set order (a member's position is its index).
    let sets: [[Int]]
    /// `setOf[r]`: the index in ``sets`` of rank `r`'s set.
    let setOf: [Int]
    /// Whether some set has two members on one node.
    let membersShareNode: Bool

    /// - Parameters:
    ///   - nodes: Each rank's node name, in rank order.
    ///   - setSize: The members per set (at least 2, at most `nodes.count`).
    init(nodes: [String], setSize: Int) {
        precondition(setSize >= 2 && setSize <= nodes.count)
        var byNode: [String: [Int]] = [:]
        for (rank, node) in nodes.enumerated() { byNode[node, default: []].append(rank) }
        let names = byNode.keys.sorted()
        let deepest = byNode.values.map(\.count).max() ?? 0
        var order: [Int] = []
        for level in 0..<deepest {
            for name in names where level < byNode[name]!.count { order.append(byNode[name]![level]) }
        }
        var sets: [[Int]] = stride(from: 0, to: order.count, by: setSize).map {
            Array(order[$0..<min($0 + setSize, order.count)])
        }
        if sets.count > 1, let last = sets.last, last.count < 2 {
            sets.removeLast()
            sets[sets.count - 1] += last
        }
        var setOf = [Int](repeating: 0, count: nodes.count)
        for (index, members) in sets.enumerated() { for rank in members { setOf[rank] = index } }
        self.sets = sets
        self.setOf = setOf
        membersShareNode = sets.contains { Set($0.map { nodes[$0] }).count < $0.count }
    }

    /// The members of rank `rank`'s set.
    func members(of rank: Int) -> [Int] { sets[setOf[rank]] }
}

extension XORSets {
    /// The sets of a job, after checking that it has enough ranks and nodes for `setSize`.
    /// - Throws: ``CheckpointError/Code/invalidConfiguration`` when the job has fewer ranks or nodes than `setSize`.
    static func validated(nodes: [String], setSize: Int) throws(CheckpointError) -> XORSets {
        guard setSize <= nodes.count else {
            throw CheckpointError(
                .invalidConfiguration,
                "redundancy.xorSetSize is \(setSize) but the job has \(nodes.count) ranks; use a set size of at most \(nodes.count), or partner copies"
            )
        }
        let nodeCount = Set(nodes).count
        guard setSize <= nodeCount else {
            throw CheckpointError(
                .invalidConfiguration,
                "redundancy.xorSetSize is \(setSize) but the ranks run on \(nodeCount) nodes: every member of a set must be on another node; use a set size of at most \(nodeCount), or run on more nodes"
            )
        }
        return XORSets(nodes: nodes, setSize: setSize)
    }
}
