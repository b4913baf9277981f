import Checkpoint
import Foundation

/// One rank's rows of the global field, with a halo row above and below.
public struct Block: Checkpointable {
    let grid: Int
    let firstRow: Int
    let rows: Int
    /// `(rows + 2) * grid` values; row 0 and row `rows + 1` are halos.
    var cells: [Double]

    init(grid: Int, rank: Int, size: Int) {
        self.grid = grid
        let base = grid / size
        let extra = grid % size
        rows = base + (rank < extra ? 1 : 0)
        firstRow = rank * base + min(rank, extra)
        cells = [Double](repeating: 0, count: (rows + 2) * grid)
        // The top edge of the plate is held at 100 degrees; everything else starts cold.
        if firstRow == 0 {
            for column in 0..<grid { cells[grid + column] = 100 }
        }
    }

    var interior: ArraySlice<Double> { cells[grid..<((rows + 1) * grid)] }

    /// Saves the interior rows, the first row's index and the grid size.
    public func save(to writer: inout SnapshotWriter) throws {
        try writer.write(Array(interior), as: "field", shape: [rows, grid])
        try writer.write(value: Int64(firstRow), as: "first-row")
        try writer.write(value: Int64(grid), as: "grid")
    }

    /// Rebuilds a block from a snapshot (halos are refilled by the next exchange).
    public init(from reader: SnapshotReader) throws {
        let field = try reader.read([Double].self, "field")
        grid = Int(try reader.read(Int64.self, "grid"))
        firstRow = Int(try reader.read(Int64.self, "first-row"))
        rows = grid > 0 ? field.count / grid : 0
        cells = [Double](repeating: 0, count: grid) + field + [Double](repeating: 0, count: grid)
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
        precondition(bytes.count == grid * 8, "a halo row has the wrong size")
        cells.withUnsafeMutableBytes { target in
            target.baseAddress!.advanced(by: row * grid * 8).copyMemory(from: bytes, byteCount: bytes.count)
        }
    }
}
