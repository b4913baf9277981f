import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How to start a heat built with MPI support under `mpirun`.
struct MPILauncher: Sendable {
    var mpirun: String
    var heat: String

    /// The command that runs `heat --mpi` on `ranks` ranks.
    func command(ranks: Int, _ arguments: [String]) -> [String] {
        var command = [mpirun, "--oversubscribe"]
        if getuid() == 0 { command.append("--allow-run-as-root") }
        return command + ["-np", String(ranks), heat, "--mpi"] + arguments
    }

    /// A launcher when `mpirun` is on the PATH and `heat` runs under it; otherwise `nil`, with the
    /// reason written to `console`.
    static func detect(heat: String?, console: Console) -> MPILauncher? {
        guard let heat else {
            console.note("mpi: not used (no --mpi-heat; Scripts/torture passes one when mpirun exists)")
            return nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard
            let mpirun = path.split(separator: ":").map({ $0 + "/mpirun" }).first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            console.note("mpi: not used (mpirun is not on the PATH)")
            return nil
        }
        let launcher = MPILauncher(mpirun: mpirun, heat: heat)
        let scratch = FileManager.default.temporaryDirectory.path + "/torture-mpi-probe-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            let probe = launcher.command(
                ranks: 2,
                ["--grid", "8", "--steps", "2", "--no-checkpoints", "--dir", scratch]
            )
            let run = try ChildProcess.run(probe, in: scratch, name: "probe", timeout: .seconds(60))
            guard run.succeeded, run.lines.last?.hasPrefix("checksum: ") == true else {
                console.note("mpi: not used (\(heat) under mpirun failed: \(run.ending), \(run.errorTail))")
                return nil
            }
        } catch {
            console.note("mpi: not used (\(error))")
            return nil
        }
        console.note("mpi: \(mpirun) with \(heat)")
        return launcher
    }
}
