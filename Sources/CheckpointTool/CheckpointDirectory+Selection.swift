import Checkpoint

extension CheckpointDirectory {
    /// The committed steps a command acts on.
    ///
    /// - Parameters:
    ///   - requested: A step the user named, or `nil` for the newest.
    ///   - all: Every committed step, oldest first (ignores `requested`).
    /// - Returns: At least one step.
    /// - Throws: `notFound` for a missing directory or an unknown step; `noCheckpoint` when there is none.
    func selectSteps(requested: UInt64?, all: Bool = false) throws(CheckpointError) -> [Step] {
        let steps = try committedSteps()
        guard let newest = steps.last else {
            throw CheckpointError(.noCheckpoint, "no checkpoints (ckpt-<step> folders) in this directory", path: path)
        }
        if all { return steps }
        guard let requested else { return [newest] }
        let step = Step(rawValue: requested)
        guard steps.contains(step) else {
            let present =
                steps.count <= 10
                ? "steps " + steps.map(\.description).joined(separator: ", ")
                : "\(steps.count) checkpoints, steps \(steps[0]) to \(newest)"
            throw CheckpointError(
                .notFound,
                "there is no checkpoint for step \(requested); there are \(present)",
                path: path
            )
        }
        return [step]
    }
}

extension Manifest {
    /// The entries that ranks saved as blocks of a distributed array, each with the first rank that
    /// saved a block of it, in the order they first appear.
    ///
    /// Cost: one pass over the manifest's entries.
    var distributedEntries: [(name: String, rank: Int)] {
        var seen: Set<String> = []
        var entries: [(name: String, rank: Int)] = []
        for shard in shards {
            for entry in shard.entries where entry.block != nil && seen.insert(entry.name).inserted {
                entries.append((entry.name, shard.rank))
            }
        }
        return entries
    }

    /// Throws `notFound` unless the checkpoint has a shard for `rank`.
    /// - Parameters:
    ///   - rank: The rank the user named.
    ///   - path: The checkpoint's folder, for the message.
    func requireRank(_ rank: Int, path: String) throws(CheckpointError) {
        guard rank < rankCount else {
            throw CheckpointError(
                .notFound,
                "checkpoint \(step) has \(rankCount) rank(s); there is no rank \(rank)",
                path: path
            )
        }
    }
}
