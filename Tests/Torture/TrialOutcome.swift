/// The fault kinds the harness injects.
enum FaultKind: String, CaseIterable, Codable, Sendable {
    /// kill -9 of the heat example at random instants, then restarts until it finishes.
    case crash
    /// Damage to the newest committed checkpoint, then a restart.
    case corrupt
    /// A small tmpfs that fills up in the middle of a checkpoint.
    case enospc
    /// Failing or slow system calls injected through the storage layer's test seam.
    case storage

    /// Whether the kind has a notion of "the fault was detected" (a crash is not something to detect).
    var detects: Bool { self != .crash }

    /// The counters shown in the table's notes, in order, with their labels.
    var notes: [(key: String, label: String)] {
        switch self {
        case .crash:
            [
                ("runs", "runs"), ("kills", "kills"), ("restarts", "restarts"), ("bit-identical", "bit-identical"),
                ("kills-in-restore", "kills in startup/restore"), ("named", "named crashes"),
                ("named-missed", "named point not reached"), ("async", "async"), ("mpi", "mpi"),
                ("dump-records", "dump records"), ("hangs", "hangs"),
            ]
        case .corrupt:
            [("undetected", "undetected"), ("ckpt-verify", "ckpt verify"), ("heat", "via heat")]
        case .enospc:
            [("not-triggered", "not triggered"), ("async", "async"), ("heat", "heat stopped+resumed")]
        case .storage:
            [
                ("not-triggered", "not triggered"), ("absorbed", "failure absorbed"),
                ("committed-anyway", "committed despite error"),
                ("slow", "slow storage"), ("async", "async"),
            ]
        }
    }

    /// The counters shown in a combination's row (the kind's row shows them all).
    var combinationNotes: [(key: String, label: String)] {
        switch self {
        case .crash:
            [("kills", "kills"), ("named", "named crashes"), ("named-missed", "not reached"), ("mpi", "mpi")]
        case .storage:
            [("not-triggered", "not triggered"), ("absorbed", "absorbed"), ("async", "async")]
        case .corrupt, .enospc: []
        }
    }
}

/// What one trial tried and what survived; the `_trial` child prints it as JSON.
struct TrialOutcome: Codable, Sendable {
    var kind: FaultKind
    var index: Int
    var seed: UInt64
    /// The scenario's category, for the per-kind breakdown (e.g. `flip-bytes`, `truncate`).
    var category: String
    /// The scenario in words.
    var scenario: String
    /// The combination of options the trial ran with (crash and storage kinds), by name.
    var combination: String?
    /// Whether the fault was noticed: an error, a skipped checkpoint (nil for crashes).
    var detected: Bool?
    /// Whether the application got the last good state back (and, for crashes, finished bit-identically).
    var recovered = false
    /// Whether data was lost or a wrong result restored (or the program crashed or hung).
    var lost = false
    /// Why the trial could not run (no root for a mount, say); it then counts for nothing.
    var skipped: String?
    /// Kind-specific tallies (restarts, kills, …).
    var counters: [String: Int] = [:]
    /// What went wrong, when something did.
    var failures: [String] = []
    /// The trial's directory, when it was kept for inspection.
    var directory: String?

    init(kind: FaultKind, index: Int, seed: UInt64, category: String = "", scenario: String = "") {
        self.kind = kind
        self.index = index
        self.seed = seed
        self.category = category
        self.scenario = scenario
    }

    mutating func count(_ key: String, _ amount: Int = 1) { counters[key, default: 0] += amount }

    /// Records a failure that lost data (or restored wrong data, crashed, hung).
    mutating func lose(_ reason: String) {
        lost = true
        failures.append(reason)
    }

    /// Records a problem that lost nothing but breaks a promise (an unclear error, a leftover file).
    mutating func complain(_ reason: String) { failures.append(reason) }

    /// Whether the trial passed: nothing lost, and the fault detected where that applies.
    var passed: Bool { skipped != nil || (!lost && recovered && detected != false && failures.isEmpty) }
}

/// The tallies of one kind over all its trials.
struct KindSummary: Codable, Sendable {
    var kind: FaultKind
    var trials = 0
    var skipped = 0
    var detected = 0
    var recovered = 0
    var lost = 0
    /// Trials that passed none of the checks but lost nothing (an unclear error, say).
    var flawed = 0
    var counters: [String: Int] = [:]
    /// Trials per scenario category.
    var categories: [String: Int] = [:]
    var skipReasons: [String] = []
    var failures: [Failure] = []
    var seconds = 0.0
    /// One row per combination drawn (crash and storage kinds), in the order the kind lists them.
    var combinations: [CombinationRow] = []

    /// The tallies of one combination of options.
    struct CombinationRow: Codable, Sendable {
        var name: String
        var trials = 0
        var skipped = 0
        var detected = 0
        var recovered = 0
        var lost = 0
        var flawed = 0
        var counters: [String: Int] = [:]
        var skipReasons: [String] = []
    }

    /// One failed trial, with how to repeat it.
    struct Failure: Codable, Sendable {
        var index: Int
        var seed: UInt64
        var scenario: String
        var lost: Bool
        var reasons: [String]
        var directory: String?
    }

    init(kind: FaultKind, combinations: [Combination] = []) {
        self.kind = kind
        self.combinations = combinations.map { CombinationRow(name: $0.description) }
    }

    mutating func add(_ outcome: TrialOutcome) {
        if let name = outcome.combination {
            if !combinations.contains(where: { $0.name == name }) { combinations.append(CombinationRow(name: name)) }
            combinations[combinations.firstIndex { $0.name == name }!].add(outcome)
        }
        if let reason = outcome.skipped {
            skipped += 1
            if !skipReasons.contains(reason) { skipReasons.append(reason) }
            return
        }
        trials += 1
        categories[outcome.category, default: 0] += 1
        if outcome.detected == true { detected += 1 }
        if outcome.recovered && !outcome.lost { recovered += 1 }
        if outcome.lost { lost += 1 }
        if !outcome.passed {
            if !outcome.lost { flawed += 1 }
            failures.append(
                Failure(
                    index: outcome.index,
                    seed: outcome.seed,
                    scenario: outcome.scenario,
                    lost: outcome.lost,
                    reasons: outcome.failures.isEmpty ? ["not detected"] : outcome.failures,
                    directory: outcome.directory
                )
            )
        }
        for (key, value) in outcome.counters { counters[key, default: 0] += value }
    }

    /// The rows of the combinations that were drawn (or skipped).
    var drawnCombinations: [CombinationRow] { combinations.filter { $0.trials + $0.skipped > 0 } }

    /// The notes column: the kind's counters, then flaws and skips.
    var notes: String {
        var parts = kind.notes.compactMap { key, label in counters[key].map { "\(label) \($0)" } }
        if flawed > 0 { parts.append("flawed \(flawed)") }
        if skipped > 0 {
            // With combinations, each row says why its trials were skipped.
            parts.append(
                combinations.isEmpty
                    ? "skipped \(skipped): \(skipReasons.joined(separator: "; "))" : "skipped \(skipped) (see the rows)"
            )
        }
        parts.append(String(format: "%.0f s", seconds))
        return parts.joined(separator: ", ")
    }
}

extension KindSummary.CombinationRow {
    mutating func add(_ outcome: TrialOutcome) {
        if let reason = outcome.skipped {
            skipped += 1
            if !skipReasons.contains(reason) { skipReasons.append(reason) }
            return
        }
        trials += 1
        if outcome.detected == true { detected += 1 }
        if outcome.recovered && !outcome.lost { recovered += 1 }
        if outcome.lost { lost += 1 }
        if !outcome.passed && !outcome.lost { flawed += 1 }
        for (key, value) in outcome.counters { counters[key, default: 0] += value }
    }

    /// The notes column of a combination's row.
    func notes(_ kind: FaultKind) -> String {
        var parts = kind.combinationNotes.compactMap { key, label in counters[key].map { "\(label) \($0)" } }
        if flawed > 0 { parts.append("flawed \(flawed)") }
        if skipped > 0 { parts.append("skipped \(skipped): \(skipReasons.joined(separator: "; "))") }
        return parts.joined(separator: ", ")
    }
}
