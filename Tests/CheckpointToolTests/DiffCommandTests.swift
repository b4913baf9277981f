import Checkpoint
import Foundation
import Testing

/// `ckpt diff`.
@Suite struct DiffCommandTests {
    /// `ckpt diff --json`.
    struct Report: Decodable {
        struct Side: Decodable {
            var type: String
            var shape: [Int]
            var rawBytes: Int
            var storedBytes: Int
        }

        struct Entry: Decodable {
            var rank: Int
            var name: String
            var status: String
            var from: Side?
            var to: Side?
            var differingElements: Int?
            var maxAbsDifference: Double?
        }

        struct Sizes: Decodable {
            var from: Int
            var to: Int
        }

        struct Summary: Decodable {
            var added: Int
            var removed: Int
            var changed: Int
            var unchanged: Int
            var rawBytes: Sizes
            var storedBytes: Sizes
        }

        var fromStep: UInt64
        var toStep: UInt64
        var ranks: [Int]
        var summary: Summary
        var entries: [Entry]

        func entry(_ name: String, rank: Int = 0) throws -> Entry {
            try #require(entries.first { $0.name == name && $0.rank == rank }, "no entry '\(name)' of rank \(rank)")
        }
    }

    static let field = (0..<20).map { Double($0) / 4 }

    /// Step 1 and step 2 differ in every way the command reports.
    static func makeHistory(in directory: String) throws {
        try saveCheckpoints(in: directory, steps: [1, 2]) { step in
            var state = NamedArrays()
            var field = Self.field
            state.integers["same"] = [1, 2, 3]
            if step == 1 {
                state.doubles["old"] = [1, 2]
                state.floats["reshaped"] = [1, 2]
                state.integers["counts"] = [10, 20, 30]
            } else {
                field[3] += 0.5
                field[17] -= 2
                state.integers["new"] = [7]
                state.floats["reshaped"] = [1, 2, 3]
                state.integers["counts"] = [10, -5, 30]
            }
            state.doubles["field"] = field
            return state
        }
    }

    @Test func reportsAddedRemovedChangedAndUnchanged() throws {
        try withTemporaryDirectory { directory in
            try Self.makeHistory(in: directory)
            let result = try ckpt("diff", directory, "--step", "1", "--step", "2", "--json")
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            let report = try decodeJSON(Report.self, result)
            #expect(report.fromStep == 1)
            #expect(report.toStep == 2)
            #expect(report.ranks == [0])

            let field = try report.entry("field")
            #expect(field.status == "changed")
            #expect(field.differingElements == 2)
            #expect(field.maxAbsDifference == 2)
            #expect(field.from?.type == "float64")
            #expect(field.from?.shape == [20])
            #expect(field.from?.rawBytes == 160)
            #expect(field.to?.rawBytes == 160)

            let counts = try report.entry("counts")
            #expect(counts.status == "changed")
            #expect(counts.differingElements == 1)
            #expect(counts.maxAbsDifference == 25, "|20 - (-5)|")

            let same = try report.entry("same")
            #expect(same.status == "unchanged")
            #expect(same.differingElements == 0)
            #expect(same.maxAbsDifference == 0)

            let reshaped = try report.entry("reshaped")
            #expect(reshaped.status == "changed")
            #expect(reshaped.from?.shape == [2])
            #expect(reshaped.to?.shape == [3])
            #expect(reshaped.differingElements == nil, "no element-wise comparison across shapes")
            #expect(reshaped.to?.rawBytes == 12)

            let old = try report.entry("old")
            #expect(old.status == "removed")
            #expect(old.to == nil)
            #expect(old.from?.rawBytes == 16)

            let new = try report.entry("new")
            #expect(new.status == "added")
            #expect(new.from == nil)
            #expect(new.to?.type == "int64")

            #expect(report.summary.changed == 3)
            #expect(report.summary.unchanged == 1)
            #expect(report.summary.added == 1)
            #expect(report.summary.removed == 1)
            #expect(report.summary.rawBytes.from == report.entries.reduce(0) { $0 + ($1.from?.rawBytes ?? 0) })
            #expect(report.summary.rawBytes.to == 160 + 24 + 24 + 12 + 8)
            #expect(report.summary.storedBytes.to == report.entries.reduce(0) { $0 + ($1.to?.storedBytes ?? 0) })
        }
    }

    @Test func notANumberShowsAsNaN() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [1, 2]) { step in
                var state = NamedArrays()
                state.doubles["x"] = step == 1 ? [1, 2, 3] : [1, .nan, 4]
                return state
            }
            let result = try ckpt("diff", directory, "--step", "1", "--step", "2", "--json")
            #expect(result.status == 0, "\(result)")
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(
                positiveInfinity: "inf",
                negativeInfinity: "-inf",
                nan: "nan"
            )
            let report = try decoder.decode(Report.self, from: Data(result.stdout.utf8))
            let x = try report.entry("x")
            #expect(x.differingElements == 2)
            #expect(x.maxAbsDifference?.isNaN == true, "a NaN on one side is not hidden by the other differences")
            let human = try ckpt("diff", directory, "--step", "1", "--step", "2")
            #expect(human.stdout.contains("nan"), "\(human)")
        }
    }

    @Test func sameStepIsAllUnchanged() throws {
        try withTemporaryDirectory { directory in
            try Self.makeHistory(in: directory)
            let report = try decodeJSON(
                Report.self,
                try ckpt("diff", directory, "--step", "2", "--step", "2", "--json")
            )
            #expect(report.entries.allSatisfy { $0.status == "unchanged" })
            #expect(report.summary.changed == 0)
            #expect(report.summary.rawBytes.from == report.summary.rawBytes.to)
        }
    }

    @Test func humanReportShowsStatusesAndTotals() throws {
        try withTemporaryDirectory { directory in
            try Self.makeHistory(in: directory)
            let result = try ckpt("diff", directory, "--step", "1", "--step", "2")
            #expect(result.status == 0, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "step 1 → step 2 (rank 0): 3 changed, 1 unchanged, 1 added, 1 removed", "\(result)")
            for text in ["ENTRY", "STATUS", "MAX |A-B|", "added", "removed", "unchanged", "2 → 3", "total raw"] {
                #expect(result.stdout.contains(text), "missing '\(text)': \(result)")
            }
            let field = try #require(lines.first { $0.contains("field") })
            #expect(field.contains("changed") && field.hasSuffix("2"), "\(field)")
        }
    }

    @Test func everyRankByDefaultOrOneRank() throws {
        try withTemporaryDirectory { directory in
            for step: Step in [1, 2] {
                try saveRanks(in: directory, step: step, ranks: 2) { rank in
                    var state = NamedArrays()
                    state.doubles["x"] = [Double(rank), 1]
                    if rank == 1 && step == 2 { state.doubles["x"] = [Double(rank), 1.25] }
                    return state
                }
            }
            let all = try decodeJSON(Report.self, try ckpt("diff", directory, "--step", "1", "--step", "2", "--json"))
            #expect(all.ranks == [0, 1])
            #expect(try all.entry("x", rank: 0).status == "unchanged")
            #expect(try all.entry("x", rank: 1).status == "changed")
            #expect(try all.entry("x", rank: 1).maxAbsDifference == 0.25)

            let result = try ckpt("diff", directory, "--step", "1", "--step", "2", "--rank", "1", "--json")
            let one = try decodeJSON(Report.self, result)
            #expect(one.ranks == [1])
            #expect(one.entries.map(\.rank) == [1])

            let missing = try ckpt("diff", directory, "--step", "1", "--step", "2", "--rank", "2")
            #expect(missing.status == 2, "\(missing)")
            #expect(missing.errorLines.count == 1, "one line: \(missing)")
            #expect(missing.stderr.contains("no rank 2"))
        }
    }

    @Test(arguments: [
        ["diff", "/tmp", "--step", "1"],
        ["diff", "/tmp", "--step", "1", "--step", "2", "--step", "3"],
        ["diff", "/tmp", "--step", "1", "--step", "2", "--rank", "-1"],
    ])
    func badArgumentsExitTwo(arguments: [String]) throws {
        let result = try ckpt(arguments)
        #expect(result.status == 2, "\(result)")
        #expect(result.errorLines.count == 1, "one line: \(result)")
        #expect(result.errorLines.first?.hasPrefix("error: ") == true)
    }

    @Test func unknownStepExitsTwo() throws {
        try withTemporaryDirectory { directory in
            try Self.makeHistory(in: directory)
            let result = try ckpt("diff", directory, "--step", "1", "--step", "7")
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains("no checkpoint for step 7"))
        }
    }

    @Test func damagedShardExitsOne() throws {
        try withTemporaryDirectory { directory in
            try Self.makeHistory(in: directory)
            try flipMiddleByte(of: shardPath(directory, step: 2))
            let result = try ckpt("diff", directory, "--step", "1", "--step", "2")
            #expect(result.status == 1, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
        }
    }
}
