import Checkpoint
import Foundation

#if MPI
import CheckpointMPI
#endif

/// The scale scenario under MPI: `mpirun -np N checkpoint-bench --scale-rank DIR CHECKPOINTS` for N
/// in 1, 2, 4, 8, each process one rank (available when this program was built with the MPI trait).
///
/// The launcher is `mpirun` on `PATH` (Open MPI gets `--oversubscribe`, and `--allow-run-as-root`
/// as root), or the command in `CKPT_MPIRUN`.
struct MPIScale {
    var options: Options
    var work: String
    var checkpoints: Int

    /// The samples, or nil when this program was built without MPI.
    func run() throws -> [ScaleScenario.Sample]? {
        #if MPI
        let launcher = try Self.launcher()
        var samples: [ScaleScenario.Sample] = []
        for ranks in [1, 2, 4, 8] {
            progress("scale: \(ranks) MPI processes (\(launcher.joined(separator: " ")))")
            let directory = work + "/scale-mpi-\(ranks)"
            let output = work + "/scale-mpi-\(ranks).json"
            let command =
                (launcher + ["-np", String(ranks), Self.executable, "--scale-rank", directory, String(checkpoints)])
                .map(Self.quoted).joined(separator: " ")
            let status = try shell(command + " > " + Self.quoted(output))
            guard status == 0 else { throw Failure("scale: `\(command)` exited with status \(status)") }
            let measured = try JSONDecoder().decode(
                ScaleScenario.Measured.self,
                from: Data(contentsOf: URL(fileURLWithPath: output))
            )
            samples.append(try ScaleScenario.sample(measured, ranks: ranks, nodes: 1, directory: directory))
        }
        return samples
        #else
        return nil
        #endif
    }

    /// One rank of an MPI run (`--scale-rank DIR CHECKPOINTS`): measures, and rank 0 prints what it
    /// measured as JSON.
    static func rank(directory: String, checkpoints: Int) throws {
        #if MPI
        let communicator = try MPICommunicator.world()
        let measured = try ScaleScenario.measure(
            communicator: communicator,
            directory: directory,
            checkpoints: checkpoints,
            countsOperations: false
        )
        if communicator.rank == 0 {
            print(String(decoding: try JSONEncoder().encode(measured), as: UTF8.self))
        }
        try MPICommunicator.finalize()
        #else
        throw Failure("--scale-rank needs a checkpoint-bench built with --traits MPI")
        #endif
    }

    /// This program's path, for the launcher to start.
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The launcher's command line, without `-np`.
    static func launcher() throws -> [String] {
        if let given = ProcessInfo.processInfo.environment["CKPT_MPIRUN"], !given.isEmpty {
            return given.split(separator: " ").map(String.init)
        }
        let probe = work(temporaryFile: "mpirun-version")
        guard try shell("mpirun --version > \(quoted(probe)) 2>&1") == 0 else {
            throw Failure("scale: no `mpirun` on PATH; set CKPT_MPIRUN to the launcher")
        }
        defer { try? FileManager.default.removeItem(atPath: probe) }
        let version = (try? String(contentsOfFile: probe, encoding: .utf8)) ?? ""
        guard version.contains("Open MPI") else { return ["mpirun"] }
        return ["mpirun", "--oversubscribe"] + (getuid() == 0 ? ["--allow-run-as-root"] : [])
    }

    private static func work(temporaryFile name: String) -> String {
        FileManager.default.temporaryDirectory.path + "/checkpoint-bench-\(getpid())-\(name)"
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
