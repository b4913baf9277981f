// nbody: a gravitating cluster of particles whose existing simulation class gets restart support
// by registering its properties with the checkpointer, without being restructured.
//
//     swift run nbody --particles 256 --steps 1000 --checkpoint-every 50 --dir /tmp/nbody
//
// Kill it at any moment (even with kill -9) and run the same command again: it resumes from the
// newest checkpoint. The first line is `fresh-start` or `resumed-from: <step>`, the last
// `checksum: <16 hex digits>`, a hash of the final state's bits that does not depend on how many
// times the run was interrupted. Logs go to standard error.

import ArgumentParser
import Checkpoint
import Foundation

@main
struct NBodyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nbody",
        abstract: "N-body gravity with crash-safe checkpoints of an existing class's state."
    )

    @Option(help: "Number of particles.")
    var particles = 256

    @Option(help: "Total number of steps to reach.")
    var steps = 1_000

    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every K steps.")
    var checkpointEvery = 50

    @Option(help: "Checkpoint directory.")
    var dir = "nbody-checkpoints"

    @Option(
        name: .customLong("delay-ms"),
        help: "Milliseconds to sleep after each step (to make runs slow enough to interrupt)."
    )
    var delayMs = 0

    @Option(help: "Seed of the initial conditions.")
    var seed: UInt64 = 42

    @Option(help: "A label for the run, recorded in every checkpoint.")
    var label = "nbody"

    func validate() throws {
        guard particles >= 2 && particles <= 100_000 else {
            throw ValidationError("--particles must be between 2 and 100000")
        }
        guard steps >= 0 else { throw ValidationError("--steps must not be negative") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1") }
        guard delayMs >= 0 && delayMs <= 60_000 else {
            throw ValidationError("--delay-ms must be between 0 and 60000")
        }
    }

    func run() throws {
        let requested = Setup.standard(label: label, seed: seed, particles: particles)
        let system = ParticleSystem(setup: requested)

        var configuration = Checkpointer.Configuration()
        configuration.policy = .everySteps(checkpointEvery)
        configuration.metadata = ["example": "nbody", "label": label]
        let checkpointer = try Checkpointer(directory: dir, configuration: configuration)

        // Register the existing object's state once: raw arrays, raw scalars and a Codable struct.
        try checkpointer.registry.register("setup", system, \.setup)
        try checkpointer.registry.register("positions", system, \.positions)
        try checkpointer.registry.register("velocities", system, \.velocities)
        try checkpointer.registry.register("masses", system, \.masses)
        try checkpointer.registry.register("species", system, \.species)
        try checkpointer.registry.register("time", system, \.time)
        try checkpointer.registry.register("step", system, \.step)

        // Every entry is read and verified before any property is written back.
        if let restored = try checkpointer.restoreLatest() {
            guard system.setup == requested else {
                let saved = system.setup
                throw NBodyError(
                    "the checkpoint in \(dir) is for run '\(saved.label)' with seed \(saved.seed) and \(saved.particles) particles; use the same --label, --seed and --particles, or another --dir"
                )
            }
            say("resumed-from: \(restored)")
        } else {
            say("fresh-start")
        }

        while system.step < steps {
            system.advance()
            try checkpointer.checkpoint(step: Step(system.step))
            if delayMs > 0 { usleep(UInt32(delayMs) * 1_000) }
        }
        let last = Step(system.step)
        if checkpointer.lastCheckpointStep != last { try checkpointer.save(step: last) }
        say("checksum: \(system.checksum)")
    }
}

/// A failure to report as one line.
struct NBodyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes a line to standard output at once (unbuffered), so it survives a kill -9 right after.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
