import Foundation

/// The harness's output: progress on standard error, the summary on standard output.
struct Console {
    var json: Bool
    var verbose: Bool

    /// A line of standard output (standard error with --json, to keep standard output JSON).
    func say(_ line: String) {
        if json { note(line) } else { write(line, to: .standardOutput) }
    }

    /// A line of standard error.
    func note(_ line: String) { write(line, to: .standardError) }

    /// Reports one finished trial: every trial with --verbose, failures always, progress now and then.
    func trial(_ outcome: TrialOutcome, done: Int, of total: Int) {
        let status =
            outcome.skipped != nil ? "skipped" : outcome.lost ? "LOST" : outcome.passed ? "ok" : "FLAWED"
        if verbose || (!outcome.passed && outcome.skipped == nil) {
            var line = "\(outcome.kind.rawValue) #\(outcome.index): \(status): \(outcome.scenario)"
            if let reason = outcome.skipped { line += " (\(reason))" }
            if !outcome.failures.isEmpty { line += " — " + outcome.failures.joined(separator: "; ") }
            note(line)
        } else if done == total || done % max(1, total / 10) == 0 {
            note("\(outcome.kind.rawValue): \(done)/\(total) trials")
        }
    }

    /// The breakdown of what was tried, the table, the failures and the `lost:` line.
    /// - Parameter repeatOptions: The options that, with `--seed`, `--kinds` and `--only`, repeat one trial.
    func summary(_ summaries: [KindSummary], seed: UInt64, repeatOptions: [String] = []) {
        let lost = summaries.reduce(0) { $0 + $1.lost }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let document = Document(seed: seed, kinds: summaries, lost: lost)
            write(String(decoding: (try? encoder.encode(document)) ?? Data(), as: UTF8.self), to: .standardOutput)
            return
        }
        for summary in summaries where !summary.categories.isEmpty {
            let tried = summary.categories.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            say("\(summary.kind.rawValue) tried: " + tried.joined(separator: ", "))
        }
        say("")
        say(row("kind", "trials", "detected", "recovered", "lost", "notes"))
        for summary in summaries {
            say(
                row(
                    summary.kind.rawValue,
                    "\(summary.trials)",
                    summary.kind.detects ? "\(summary.detected)" : "-",
                    "\(summary.recovered)",
                    "\(summary.lost)",
                    summary.notes
                )
            )
            for combination in summary.drawnCombinations {
                say(
                    row(
                        "  " + combination.name,
                        "\(combination.trials)",
                        summary.kind.detects ? "\(combination.detected)" : "-",
                        "\(combination.recovered)",
                        "\(combination.lost)",
                        combination.notes(summary.kind)
                    )
                )
            }
        }
        let failures = summaries.flatMap { summary in summary.failures.map { (summary.kind, $0) } }
        if !failures.isEmpty {
            say("")
            let options = (["--seed", "\(seed)", "--kinds", "KIND"] + repeatOptions + ["--only", "INDEX"])
            say("failed trials (repeat one with \(options.joined(separator: " "))):")
            for (kind, failure) in failures {
                var line =
                    "  \(kind.rawValue) #\(failure.index) \(failure.lost ? "LOST" : "flawed"): \(failure.scenario) — "
                    + failure.reasons.joined(separator: "; ")
                if let directory = failure.directory { line += " [kept: \(directory)]" }
                say(line)
            }
        }
        say("lost: \(lost)")
    }

    private func row(
        _ kind: String,
        _ trials: String,
        _ detected: String,
        _ recovered: String,
        _ lost: String,
        _ notes: String
    )
        -> String
    {
        func pad(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        let label = kind + String(repeating: " ", count: max(1, 33 - kind.count))
        return label + pad(trials, 7) + pad(detected, 10)
            + pad(recovered, 11) + pad(lost, 6) + "   " + notes
    }

    private func write(_ line: String, to handle: FileHandle) {
        handle.write(Data((line + "\n").utf8))
    }

    /// The --json document.
    struct Document: Encodable {
        var seed: UInt64
        var kinds: [KindSummary]
        var lost: Int
    }
}
