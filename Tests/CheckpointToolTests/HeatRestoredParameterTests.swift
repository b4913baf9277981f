import Checkpoint
import Foundation
import Testing

/// Issue 12, item 6: `heat` checks the grid size it restores before reading the field.
@Suite struct HeatRestoredParameterTests {
    /// What heat saves (its field as a block of the global array, and the grid size), with the
    /// grid size edited as someone who can write the directory could.
    struct EditedHeatState: Checkpointable {
        var grid: Int
        var recordedGrid: Int64

        init(grid: Int, recordedGrid: Int64) {
            self.grid = grid
            self.recordedGrid = recordedGrid
        }

        init(from reader: SnapshotReader) throws {
            grid = 0
            recordedGrid = try reader.read(Int64.self, "grid")
        }

        func save(to writer: inout SnapshotWriter) throws {
            let layout = try BlockLayout(globalShape: [grid, grid], offset: [0, 0], extent: [grid, grid])
            try writer.write([Double](repeating: 0, count: grid * grid), as: "field", block: layout)
            try writer.write(value: recordedGrid, as: "grid")
        }
    }

    static func runHeat(recordedGrid: Int64) throws -> ToolResult {
        try withTemporaryDirectory { directory in
            do {
                // Released (with the directory's lock) at the end of this scope.
                let checkpointer = try Checkpointer(directory: directory)
                try checkpointer.save(EditedHeatState(grid: 16, recordedGrid: recordedGrid), step: 5)
            }
            return try runProgram(
                try HeatTests.heat(),
                ["--ranks", "1", "--grid", "16", "--steps", "10", "--dir", directory]
            )
        }
    }

    @Test("an edited grid size far beyond the limit is refused before the field is read")
    func hugeGrid() throws {
        // 2^20 cells a side: 8 TiB of doubles for one rank's block, had it been trusted.
        let result = try Self.runHeat(recordedGrid: 1 << 20)
        #expect(result.status != 0)
        #expect(result.stderr.contains("grid of 1048576 cells a side; heat runs grids of 3 to 65536"), "\(result)")
    }

    @Test("a grid size other than --grid is refused before the field is read")
    func otherGrid() throws {
        let result = try Self.runHeat(recordedGrid: 4096)
        #expect(result.status != 0)
        #expect(result.stderr.contains("is for a 4096 x 4096 grid, not 16"), "\(result)")
    }

    @Test("the saved grid size restores")
    func sameGrid() throws {
        let result = try Self.runHeat(recordedGrid: 16)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("resumed-from: 5"), "\(result)")
    }
}
