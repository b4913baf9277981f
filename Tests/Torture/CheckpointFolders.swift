import Foundation

// What the trials read from disk without the library: which checkpoints are committed at each
// level, which of them a restart can restore, and what a crash or a failure left behind.

/// The name of the file that makes a checkpoint directory committed: written last by a marker
/// store, and present in every directory a renaming store renamed into place.
private let commitMarker = "manifest.json.sha256"

/// Whether `folder` holds the whole commit marker: the checksum line, SHA-256 in hex, two spaces,
/// `manifest.json` and a newline. A run killed while a marker store wrote it leaves it empty or
/// short, and that checkpoint was never committed.
private func holdsCommitMarker(_ folder: String) -> Bool {
    let size = (try? FileManager.default.attributesOfItem(atPath: folder + "/" + commitMarker))?[.size] as? Int
    return size == 64 + 2 + "manifest.json".utf8.count + 1
}

/// The steps of the committed checkpoints (`ckpt-<12+ digits>` holding the commit marker) in
/// `directory`, oldest first.
func committedSteps(_ directory: String) -> [UInt64] {
    entries(directory).compactMap { name in
        guard name.hasPrefix("ckpt-"), let step = UInt64(name.dropFirst(5)),
            holdsCommitMarker(directory + "/" + name)
        else { return nil }
        return step
    }.sorted()
}

/// What a finished or failed commit must not leave in a checkpoint directory: `.ckpt-*.tmp`
/// directories, `ckpt-*` directories without the commit marker (a marker store's unfinished
/// checkpoint), and hidden `*.tmp` files inside committed checkpoints (a shard being replaced).
func temporaries(in directory: String) -> [String] {
    entries(directory).flatMap { name -> [String] in
        if name.hasPrefix(".ckpt-") && name.hasSuffix(".tmp") { return [name] }
        guard name.hasPrefix("ckpt-") else { return [] }
        let folder = directory + "/" + name
        guard holdsCommitMarker(folder) else {
            return [name + " (no commit marker; holds \(entries(folder).sorted()))"]
        }
        return entries(folder).filter { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }.map { name + "/" + $0 }
    }
}

/// The node-local checkpoint directories of every rank (`LOCAL/rank-NNNNN`) that exist.
func nodeLocalStores(_ local: String) -> [String] {
    entries(local).filter { $0.hasPrefix("rank-") }.sorted().map { local + "/" + $0 }
}

/// The steps a restart on `ranks` ranks can restore, oldest first: those committed in the shared
/// directory, and those for which every rank's shard (`rank-NNNNN.snap`) is in a committed
/// node-local checkpoint of that step (its own, or the partner copy another rank keeps), or, with
/// XOR sets (`xorSets`: the ranks of each set), can be rebuilt: in every set at most one member
/// lacks its shard, and every other member holds its shard and its parity (`xor-NNNNN.parity`).
func restorableSteps(shared: String, local: String?, ranks: Int, xorSets: [[Int]] = []) -> [UInt64] {
    var steps = Set(committedSteps(shared))
    guard let local else { return steps.sorted() }
    var holders: [UInt64: Set<String>] = [:]
    // Per step, the ranks whose own committed node-local checkpoint holds their shard and parity.
    var protected: [UInt64: Set<Int>] = [:]
    for store in nodeLocalStores(local) {
        let owner = Int(lastPathComponent(store).dropFirst("rank-".count))
        for step in committedSteps(store) {
            let held = Set(entries(store + "/ckpt-" + zeroPadded(step)))
            holders[step, default: []].formUnion(held.filter { $0.hasPrefix("rank-") && $0.hasSuffix(".snap") })
            if let owner, held.contains(shardName(owner)),
                held.contains("xor-" + zeroPadded(UInt64(owner), width: 5) + ".parity")
            {
                protected[step, default: []].insert(owner)
            }
        }
    }
    let shards = Set((0..<ranks).map(shardName))
    for (step, held) in holders where shards.isSubset(of: held) { steps.insert(step) }
    if !xorSets.isEmpty {
        for (step, members) in protected
        where xorSets.allSatisfy({ set in set.filter { !members.contains($0) }.count <= 1 }) {
            steps.insert(step)
        }
    }
    return steps.sorted()
}

/// The XOR sets of `ranks` ranks with one rank per node (`heat --nodes RANKS`): consecutive runs of
/// `size` ranks, a last set of one rank joining the set before it (Redundancy.md, "The sets").
func xorSets(ranks: Int, size: Int) -> [[Int]] {
    var sets = stride(from: 0, to: ranks, by: size).map { Array($0..<min($0 + size, ranks)) }
    if sets.count > 1, let last = sets.last, last.count == 1 {
        sets.removeLast()
        sets[sets.count - 1] += last
    }
    return sets
}

private func lastPathComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}

/// `value` in decimal, zero-padded to `width` digits (the layout's spelling of steps and ranks).
func zeroPadded(_ value: UInt64, width: Int = 12) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

private func entries(_ directory: String) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
}
