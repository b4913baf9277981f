import ArgumentParser
import Checkpoint

/// `ckpt diff DIR --step A --step B`: which entries were added, removed or changed between two checkpoints.
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the entries of two checkpoints.",
        discussion: """
            Reads every entry of both checkpoints (every rank, or --rank R), checking every chunk's checksum, and \
            reports each entry as added, removed, changed (its bytes, type or shape differ) or unchanged, with its \
            raw and stored size in both. For numeric arrays of the same type and shape it also reports how many \
            elements differ and the largest absolute difference (in --json, "nan" or "inf" when it is not a finite number). \
            The exit status is 0 whether or not the checkpoints differ.
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Option(name: .customLong("step"), help: "A checkpoint to compare; give two: --step A --step B.")
    var steps: [UInt64] = []

    @Option(help: "Compare only this rank's shards (default: every rank).")
    var rank: Int?

    @Option(help: "Threads that read and check chunks.")
    var threads = Checkpointer.Configuration.defaultThreads

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard steps.count == 2 else {
            throw ValidationError("give two checkpoints to compare: --step A --step B (got \(steps.count))")
        }
        if let rank, rank < 0 { throw ValidationError("--rank must not be negative") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let checkpoints = CheckpointDirectory(path: directory)
        let from = try checkpoints.selectSteps(requested: steps[0])[0]
        let to = try checkpoints.selectSteps(requested: steps[1])[0]
        let manifests = (try checkpoints.loadManifest(step: from), try checkpoints.loadManifest(step: to))
        let rankCount = max(manifests.0.rankCount, manifests.1.rankCount)
        let ranks: [Int]
        if let rank {
            guard rank < rankCount else {
                throw CheckpointError(
                    .notFound,
                    "checkpoints \(from) and \(to) have \(manifests.0.rankCount) and \(manifests.1.rankCount) "
                        + "rank(s); there is no rank \(rank)",
                    path: checkpoints.path
                )
            }
            ranks = [rank]
        } else {
            ranks = Array(0..<rankCount)
        }
        let total = Formatting.sum(
            ranks.flatMap { rank in
                [manifests.0, manifests.1].map { $0.shards.indices.contains(rank) ? $0.shards[rank].rawBytes : 0 }
            }
        )
        let progress = ProgressBar("comparing \(from) and \(to)", total: total)
        defer { progress.finish() }
        var entries: [EntryDiff] = []
        for rank in ranks {
            progress.relabel("comparing \(from) and \(to), rank \(rank)")
            let first = try snapshot(checkpoints, manifests.0, rank)
            let second = try snapshot(checkpoints, manifests.1, rank)
            entries += try EntryDiff.compare(rank: rank, first, second, progress: progress)
        }
        progress.finish()
        let report = DiffReport(from: from, to: to, ranks: ranks, entries: entries)
        if output.json {
            try Console.json(report)
        } else {
            report.lines().forEach(Console.line)
        }
    }

    /// The rank's shard, or `nil` when the checkpoint has fewer ranks.
    private func snapshot(
        _ checkpoints: CheckpointDirectory,
        _ manifest: Manifest,
        _ rank: Int
    ) throws(CheckpointError) -> SnapshotReader? {
        guard rank < manifest.rankCount else { return nil }
        return try checkpoints.openSnapshot(step: manifest.step, rank: rank, threads: threads)
    }
}

/// How one entry of one rank differs between two checkpoints.
struct EntryDiff: Encodable {
    /// The entry in one checkpoint.
    struct Side: Encodable {
        /// The element type as `ckpt inspect` shows it.
        var type: String
        var shape: [Int]
        var rawBytes: Int
        var storedBytes: Int

        init(_ info: EntryInfo) {
            type = InspectReport.Entry(info).typeText
            shape = info.shape
            rawBytes = info.rawBytes
            storedBytes = info.storedBytes
        }
    }

    /// What happened to an entry.
    enum Status: String, Encodable {
        case added, removed, changed, unchanged
    }

    var rank: Int
    var name: String
    var status: Status
    /// The entry in the first checkpoint (`nil` when added).
    var from: Side?
    /// The entry in the second checkpoint (`nil` when removed).
    var to: Side?
    /// Elements that differ, for arrays of the same type and shape in both (not JSON entries).
    var differingElements: Int?
    /// The largest absolute difference, for numeric arrays of the same type and shape in both.
    var maxAbsDifference: Double?

    /// Compares every entry of one rank's shards (either may be missing), reading the entries both have.
    static func compare(
        rank: Int,
        _ first: SnapshotReader?,
        _ second: SnapshotReader?,
        progress: ProgressBar
    ) throws(CheckpointError) -> [EntryDiff] {
        let before = first?.entries ?? []
        let after = second?.entries ?? []
        let afterByName = Dictionary(after.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let beforeNames = Set(before.map(\.name))
        var result: [EntryDiff] = []
        for old in before {
            guard let new = afterByName[old.name], let first, let second else {
                result.append(EntryDiff(rank: rank, name: old.name, status: .removed, from: Side(old)))
                progress.advance(by: old.rawBytes)
                continue
            }
            let oldBytes = try first.readBytes(old.name)
            progress.advance(by: old.rawBytes)
            let newBytes = try second.readBytes(new.name)
            progress.advance(by: new.rawBytes)
            var diff = EntryDiff(rank: rank, name: old.name, status: .unchanged, from: Side(old), to: Side(new))
            let sameLayout =
                old.elementType == new.elementType && old.isEncoded == new.isEncoded && old.shape == new.shape
            let same = oldBytes == newBytes
            if !sameLayout || !same { diff.status = .changed }
            if sameLayout && !old.isEncoded {
                let difference =
                    same
                    ? ElementDifference(unchanged: old.elementType)
                    : ElementDifference(oldBytes, newBytes, type: old.elementType)
                diff.differingElements = difference.differingElements
                diff.maxAbsDifference = difference.maxAbsDifference
            }
            result.append(diff)
        }
        for new in after where !beforeNames.contains(new.name) {
            result.append(EntryDiff(rank: rank, name: new.name, status: .added, to: Side(new)))
            progress.advance(by: new.rawBytes)
        }
        return result
    }

    private enum CodingKeys: String, CodingKey {
        case rank, name, status, from, to, differingElements, maxAbsDifference
    }

    /// Encodes every key, `null` included, so that consumers see one schema.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rank, forKey: .rank)
        try container.encode(name, forKey: .name)
        try container.encode(status, forKey: .status)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(differingElements, forKey: .differingElements)
        try container.encode(maxAbsDifference, forKey: .maxAbsDifference)
    }
}

/// What `ckpt diff` reports.
struct DiffReport: Encodable {
    /// Sizes in the two checkpoints.
    struct Sizes: Encodable {
        var from: Int
        var to: Int
    }

    /// Counts and total sizes.
    struct Summary: Encodable {
        var added = 0
        var removed = 0
        var changed = 0
        var unchanged = 0
        var rawBytes = Sizes(from: 0, to: 0)
        var storedBytes = Sizes(from: 0, to: 0)
    }

    var fromStep: UInt64
    var toStep: UInt64
    var ranks: [Int]
    var summary = Summary()
    var entries: [EntryDiff]

    init(from: Step, to: Step, ranks: [Int], entries: [EntryDiff]) {
        fromStep = from.rawValue
        toStep = to.rawValue
        self.ranks = ranks
        self.entries = entries
        for entry in entries {
            switch entry.status {
            case .added: summary.added += 1
            case .removed: summary.removed += 1
            case .changed: summary.changed += 1
            case .unchanged: summary.unchanged += 1
            }
            summary.rawBytes.from += entry.from?.rawBytes ?? 0
            summary.rawBytes.to += entry.to?.rawBytes ?? 0
            summary.storedBytes.from += entry.from?.storedBytes ?? 0
            summary.storedBytes.to += entry.to?.storedBytes ?? 0
        }
    }

    /// The human-readable report: a summary line, a table, and the totals.
    func lines() -> [String] {
        let rankText = ranks.count == 1 ? "rank \(ranks[0])" : "\(ranks.count) ranks"
        var lines = [
            "step \(fromStep) → step \(toStep) (\(rankText)): \(summary.changed) changed, \(summary.unchanged) "
                + "unchanged, \(summary.added) added, \(summary.removed) removed"
        ]
        var table = TextTable(
            ">RANK",
            "ENTRY",
            "STATUS",
            "TYPE",
            "SHAPE",
            ">RAW",
            ">STORED",
            ">DIFFERING",
            ">MAX |A-B|"
        )
        for entry in entries {
            table.append([
                String(entry.rank), entry.name, entry.status.rawValue,
                Self.change(entry.from?.type, entry.to?.type) { $0 },
                Self.change(entry.from?.shape, entry.to?.shape, Formatting.shape),
                Self.change(entry.from?.rawBytes, entry.to?.rawBytes, Formatting.bytes),
                Self.change(entry.from?.storedBytes, entry.to?.storedBytes, Formatting.bytes),
                entry.differingElements.map(String.init) ?? "-",
                entry.maxAbsDifference.map(Formatting.number) ?? "-",
            ])
        }
        if !entries.isEmpty { lines += table.lines() }
        lines.append(
            "total raw \(Self.total(summary.rawBytes)), stored \(Self.total(summary.storedBytes))"
        )
        return lines
    }

    /// `x`, or `x → y` when the two differ; one side alone when the other is missing.
    static func change<Value: Equatable>(_ from: Value?, _ to: Value?, _ show: (Value) -> String) -> String {
        switch (from, to) {
        case (let from?, let to?): from == to ? show(from) : show(from) + " → " + show(to)
        case (let from?, nil): show(from)
        case (nil, let to?): show(to)
        case (nil, nil): "-"
        }
    }

    /// `16.0 KiB (no change)` or `15.2 KiB → 15.3 KiB (+104 B)`.
    static func total(_ sizes: Sizes) -> String {
        guard sizes.from != sizes.to else { return "\(Formatting.bytes(sizes.from)) (no change)" }
        return "\(Formatting.bytes(sizes.from)) → \(Formatting.bytes(sizes.to)) "
            + "(\(Formatting.signedBytes(sizes.to - sizes.from)))"
    }
}
