/// Which rank keeps a copy of which rank's shard, chosen so that a copy lives on another node.
///
/// Ranks are ordered by node name (then rank) and each rank's copy goes to the rank as many
/// places further along as the busiest node has ranks: with the same number of ranks on every
/// node, every partner is on another node. With one node (or an uneven layout that allows no
/// better) some partners share a node; ``partnersShareNode`` says so, and the copy then only
/// protects against losing one rank's files, not the node.
struct PartnerMap: Sendable, Equatable {
    /// `partner[r]`: the rank that stores a copy of rank `r`'s shard.
    let partner: [Int]
    /// `held[r]`: the rank whose shard rank `r` stores a copy of (`partner[held[r]] == r`).
    let held: [Int]
    /// Whether any rank's partner runs on the same node.
    let partnersShareNode: Bool

    /// - Parameter nodes: Each rank's node name (host name), in rank order.
    init(nodes: [String]) {
        let count = nodes.count
        let order = (0..<count).sorted { (nodes[$0], $0) < (nodes[$1], $1) }
        var perNode: [String: Int] = [:]
        for node in nodes { perNode[node, default: 0] += 1 }
        let busiest = perNode.values.max() ?? 1
        let shift = perNode.count > 1 && busiest < count ? busiest : 1
        var partner = Array(0..<count)
        var held = Array(0..<count)
        for (position, rank) in order.enumerated() {
            let target = order[(position + shift) % count]
            partner[rank] = target
            held[target] = rank
        }
        self.partner = partner
        self.held = held
        partnersShareNode = count > 1 && (0..<count).contains { nodes[$0] == nodes[partner[$0]] }
    }
}
