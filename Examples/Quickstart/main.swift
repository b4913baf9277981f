// A one-dimensional diffusion simulation with restart support in three lines.
//
//     swift run quickstart --dir /tmp/quickstart --steps 2000
//
// Kill it at any moment (even with kill -9) and run the same command again: it resumes from
// the newest checkpoint and prints the same final checksum as a run that was never interrupted.

import Checkpoint
import Foundation

/// The simulation's whole state: a temperature field and the time.
struct Diffusion: Checkpointable {
    var field: [Double]
    var time = 0.0

    init(cells: Int) {
        field = (0..<cells).map { index in index > cells / 3 && index < cells / 2 ? 100 : 0 }
    }

    /// One explicit Euler step of u_t = u_xx with fixed ends.
    mutating func advance() {
        let coefficient = 0.25
        var next = field
        for index in 1..<(field.count - 1) {
            next[index] = field[index] + coefficient * (field[index - 1] - 2 * field[index] + field[index + 1])
        }
        field = next
        time += coefficient
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(field, as: "field")
        try writer.write(value: time, as: "time")
    }

    init(from reader: SnapshotReader) throws {
        field = try reader.read([Double].self, "field")
        time = try reader.read(Double.self, "time")
    }

    /// FNV-1a over the field's bits: equal checksums mean bit-identical results.
    var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in field + [time] {
            var bits = value.bitPattern
            for _ in 0..<8 {
                hash = (hash ^ (bits & 0xFF)) &* 0x100_0000_01b3
                bits >>= 8
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

struct Options {
    var directory = "quickstart-checkpoints"
    var steps = 2_000
    var cells = 100_000
    var checkpointEvery = 100
    var delayMilliseconds = 0

    init(arguments: [String]) throws {
        var iterator = arguments.dropFirst().makeIterator()
        func value(_ flag: String) throws -> String {
            guard let value = iterator.next() else { throw UsageError("\(flag) needs a value") }
            return value
        }
        func number(_ flag: String) throws -> Int {
            let text = try value(flag)
            guard let number = Int(text), number >= 0 else {
                throw UsageError("\(flag) needs a non-negative integer, not '\(text)'")
            }
            return number
        }
        while let flag = iterator.next() {
            switch flag {
            case "--dir": directory = try value(flag)
            case "--steps": steps = try number(flag)
            case "--cells": cells = max(3, try number(flag))
            case "--checkpoint-every": checkpointEvery = max(1, try number(flag))
            case "--delay-ms": delayMilliseconds = try number(flag)
            case "--help", "-h":
                print("usage: quickstart [--dir DIR] [--steps N] [--cells N] [--checkpoint-every K] [--delay-ms MS]")
                exit(0)
            default: throw UsageError("unknown argument '\(flag)'; see --help")
            }
        }
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

do {
    let options = try Options(arguments: CommandLine.arguments)
    var configuration = Checkpointer.Configuration()
    configuration.policy = .everySteps(options.checkpointEvery)

    // The three lines: open, restore (or start fresh), checkpoint at every safe point.
    let checkpointer = try Checkpointer(directory: options.directory, configuration: configuration)
    var (sim, step) = try checkpointer.restoreLatest(or: Diffusion(cells: options.cells))
    print(step == 0 ? "fresh-start" : "resumed-from: \(step)")
    while step.intValue < options.steps {
        sim.advance()
        step += 1
        try checkpointer.checkpoint(sim, step: step)
        if options.delayMilliseconds > 0 { usleep(UInt32(options.delayMilliseconds) * 1000) }
    }
    if checkpointer.lastCheckpointStep != step { try checkpointer.save(sim, step: step) }
    print("checksum: \(sim.checksum)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
