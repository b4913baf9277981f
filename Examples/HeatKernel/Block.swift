import Checkpoint
import Foundation

/// One rank's rows of the global field, with a halo row above and below.
///
/// The field is a distributed array: each rank saves its rows with their ``BlockLayout``, so a
/// checkpoint written by N ranks restores on any number M (each new rank reads the rows of its new
/// block from whichever old shards hold them).
public struct Block: Checkpointable {
    /// Where this rank's rows lie in the G x G field.
    let layout: BlockLayout
    /// `(rows + 2) * grid` values; row 0 and row `rows + 1` are halos.
    var cells: [Double]

    var grid: Int { layout.globalShape[1] }

    /// The largest grid heat runs (`--grid`), and so the largest a checkpoint may restore.
    public static let maximumGrid = 65_536

    /// The grid size the run is configured with, bound while it restores (see ``init(from:)``):
    /// a checkpoint for another size is refused before its field is read. `nil` outside a restore.
    @TaskLocal public static var expectedGrid: Int?
    var firstRow: Int { layout.offset[0] }
    var rows: Int { layout.extent[0] }

    /// The initial block of `rank` among `size` ranks: near-equal slabs of rows.
    init(grid: Int, rank: Int, size: Int) throws {
        layout = try BlockLayout.partition([grid, grid], part: rank, of: size)
        cells = [Double](repeating: 0, count: (layout.extent[0] + 2) * grid)
        // The top edge of the plate is held at 100 degrees; everything else starts cold.
        if layout.offset[0] == 0 && layout.extent[0] > 0 {
            for column in 0..<grid { cells[grid + column] = 100 }
        }
    }

    var interior: ArraySlice<Double> { cells[grid..<((rows + 1) * grid)] }

    /// Saves the interior rows as this rank's block of the field, and the grid size (replicated).
    public func save(to writer: inout SnapshotWriter) throws {
        try writer.write(Array(interior), as: "field", block: layout)
        try writer.write(value: Int64(grid), as: "grid")
    }

    /// Rebuilds this rank's block from a snapshot written by any number of ranks (halos are
    /// refilled by the next exchange).
    ///
    /// The restored grid size is checked before the field is read: anyone who can write the
    /// checkpoint directory can edit it, and an unchecked size would make the restore allocate
    /// whatever the file says (an edited value once asked for 4 TB). It must lie in
    /// 3...``maximumGrid``, equal ``expectedGrid`` when the run configured one, and match the
    /// field's saved global shape.
    public init(from reader: SnapshotReader) throws {
        let saved = try reader.read(Int64.self, "grid")
        guard saved >= 3, saved <= Int64(Self.maximumGrid) else {
            throw HeatError(
                "the checkpoint records a grid of \(saved) cells a side; heat runs grids of 3 to \(Self.maximumGrid): the checkpoint was edited or damaged, use another --dir"
            )
        }
        let grid = Int(saved)
        if let expected = Self.expectedGrid, grid != expected {
            throw HeatError(
                "the checkpoint is for a \(grid) x \(grid) grid, not \(expected); use the same --grid or another --dir"
            )
        }
        guard try reader.globalShape(of: "field") == [grid, grid] else {
            throw HeatError(
                "the checkpoint's field is not \(grid) x \(grid) as its grid size says: the checkpoint was edited or damaged, use another --dir"
            )
        }
        layout = try BlockLayout.partition([grid, grid], part: reader.rank, of: reader.rankCount)
        let field = try reader.read([Double].self, "field", block: layout)
        let halo = [Double](repeating: 0, count: grid)
        cells = halo + field + halo
    }

    /// Sends edge rows to the neighbours and receives their edge rows into the halos.
    mutating func exchangeHalos(_ communicator: any Communicator) throws {
        let rank = communicator.rank
        let above = rank > 0 ? rank - 1 : nil
        let below = rank < communicator.size - 1 ? rank + 1 : nil
        let firstInterior = rowBytes(1)
        let lastInterior = rowBytes(rows)
        if let upper = try communicator.exchange(send: firstInterior, to: above, receiveFrom: below, tag: 1) {
            setRow(rows + 1, from: upper)
        }
        if let lower = try communicator.exchange(send: lastInterior, to: below, receiveFrom: above, tag: 2) {
            setRow(0, from: lower)
        }
    }

    /// One step: halo exchange, then relaxation.
    mutating func advance(_ communicator: any Communicator, delayMs: Int) throws {
        try exchangeHalos(communicator)
        relax()
        if delayMs > 0 { usleep(UInt32(delayMs) * 1000) }
    }

    /// One Jacobi step: every interior cell becomes the mean of its four neighbours.
    mutating func relax() {
        var next = cells
        let lastRow = grid - 1
        for local in 1...max(rows, 1) where rows > 0 {
            let global = firstRow + local - 1
            if global == 0 || global == lastRow { continue }
            let base = local * grid
            for column in 1..<(grid - 1) {
                let index = base + column
                next[index] = 0.25 * (cells[index - grid] + cells[index + grid] + cells[index - 1] + cells[index + 1])
            }
        }
        cells = next
    }

    private func rowBytes(_ row: Int) -> [UInt8] {
        cells[(row * grid)..<((row + 1) * grid)].withUnsafeBytes { Array($0) }
    }

    private mutating func setRow(_ row: Int, from bytes: [UInt8]) {
        let grid = grid
        precondition(bytes.count == grid * 8, "a halo row has the wrong size")
        cells.withUnsafeMutableBytes { target in
            target.baseAddress!.advanced(by: row * grid * 8).copyMemory(from: bytes, byteCount: bytes.count)
        }
    }
}
