import ArgumentParser
import Checkpoint

/// `ckpt prune DIR --keep K`: deletes old checkpoints as a retention rule would.
struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete all but the newest checkpoints.",
        discussion: """
            Keeps the newest K committed checkpoints and, with --keep-every N, every checkpoint whose step is a \
            multiple of N; deletes the rest, newest first (a checkpoint before the older ones whose chunks it uses), each by an atomic rename out of the way. A \
            checkpoint whose chunks a kept incremental checkpoint uses is kept as well (and listed as such), \
            so pruning never breaks a kept checkpoint. With --dry-run nothing is deleted and the checkpoints \
            that would be are listed. Pruning takes the \
            directory's lock, so it refuses (exit status 2) while a running checkpointer uses the directory: \
            a checkpointer prunes by its own retention setting as it goes.
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @Option(help: "How many of the newest checkpoints to keep (at least 1).")
    var keep: Int

    @Option(help: "Also keep every checkpoint whose step is a multiple of this.")
    var keepEvery: Int?

    @Flag(help: "Only list what would be deleted.")
    var dryRun = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard keep >= 1 else {
            throw ValidationError("--keep must be at least 1 (the newest checkpoint is always kept)")
        }
        if let keepEvery, keepEvery < 1 { throw ValidationError("--keep-every must be at least 1") }
    }

    func run() throws {
        let checkpoints = CheckpointDirectory(path: directory)
        let before = try checkpoints.committedSteps()
        // Sizes are read before deleting; a checkpoint whose manifest does not load counts as 0 bytes.
        let sizes = Dictionary(
            uniqueKeysWithValues: before.map { step in
                (step, (try? checkpoints.loadManifest(step: step))?.storedBytes ?? 0)
            }
        )
        let deleted = try prune(checkpoints)
        let gone = Set(deleted)
        // What remains is what the rule keeps, so planning again names the checkpoints kept for references.
        let plan = try checkpoints.prunePlan(.init(keepLast: keep, keepEvery: keepEvery))
        let report = PruneReport(
            dryRun: dryRun,
            deleted: deleted.sorted().map(\.rawValue),
            kept: before.filter { !gone.contains($0) }.map(\.rawValue),
            keptForReferences: plan.keptForReferences.filter { !gone.contains($0.key) }.sorted { $0.key < $1.key }
                .map { PruneReport.Reference(step: $0.key.rawValue, usedBy: $0.value.map(\.rawValue)) },
            freedBytes: Formatting.sum(deleted.map { sizes[$0] ?? 0 })
        )
        if output.json {
            try Console.json(report)
        } else {
            report.lines(sizes: sizes).forEach(Console.line)
        }
    }
}

extension Prune {
    /// Prunes, saying plainly when a running checkpointer holds the lock.
    private func prune(_ checkpoints: CheckpointDirectory) throws -> [Step] {
        do {
            return try checkpoints.prune(.init(keepLast: keep, keepEvery: keepEvery), dryRun: dryRun)
        } catch {
            guard error.code == .invalidConfiguration, error.path?.hasSuffix("/.lock") == true else { throw error }
            throw ToolError.badInput(
                "a running checkpointer holds this directory's lock; nothing was deleted (prune after it has "
                    + "stopped, or set its retention)",
                path: directory
            )
        }
    }
}

/// What `ckpt prune` did (or, with `--dry-run`, would do).
struct PruneReport: Encodable {
    var dryRun: Bool
    /// The steps deleted (or that would be), oldest first.
    var deleted: [UInt64]
    /// The steps kept, oldest first.
    var kept: [UInt64]
    /// The kept steps the rule alone would delete, kept because kept checkpoints use their chunks.
    var keptForReferences: [Reference]
    /// Bytes of shard files deleted (or that would be).
    var freedBytes: Int

    /// A checkpoint kept because others use its chunks.
    struct Reference: Encodable {
        var step: UInt64
        /// The kept checkpoints that use it.
        var usedBy: [UInt64]
    }

    /// One line per deleted checkpoint, one per checkpoint kept for references, then a summary.
    func lines(sizes: [Step: Int]) -> [String] {
        let verb = dryRun ? "would delete" : "deleted"
        var lines = deleted.map { step in
            "\(verb) step \(step) (\(Formatting.bytes(sizes[Step(rawValue: step)] ?? 0)))"
        }
        lines += keptForReferences.map { reference in
            "\(dryRun ? "would keep" : "kept") step \(reference.step): used by step"
                + (reference.usedBy.count == 1 ? " " : "s ") + reference.usedBy.map(String.init).joined(separator: ", ")
        }
        let count = deleted.count == 1 ? "1 checkpoint" : "\(deleted.count) checkpoints"
        let keptText =
            kept.count <= 10
            ? "steps " + kept.map(String.init).joined(separator: ", ")
            : "\(kept.count) checkpoints, steps \(kept[0]) to \(kept[kept.count - 1])"
        lines.append(
            "\(verb) \(count), \(Formatting.bytes(freedBytes)); \(dryRun ? "would keep" : "kept") "
                + (kept.isEmpty ? "none" : keptText)
        )
        return lines
    }
}
