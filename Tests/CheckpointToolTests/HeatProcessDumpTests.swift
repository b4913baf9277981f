import Foundation
import Testing

@testable import Checkpoint

#if canImport(Glibc)
import Glibc
#endif

// The real engines, end to end: a running heat dumps itself through the library's dumper (heat
// --dumper criu / dmtcp), is killed, is restored by the engine's own restore command, and finishes
// with the checksum of an uninterrupted run. Gated: a machine whose CRIU fails `criu check`, or
// without DMTCP, skips with the reason printed — also under CI=true, since Scripts/bootstrap cannot
// install either (Debian's CRIU 3.17 fails `criu check` on recent kernels, DMTCP is not packaged);
// both are built from their sources by hand (Documentation/ProcessDumpers.md).

/// Whether a working CRIU is installed (probed once; the reason is printed when not).
private let criuProbe: DumperProbe = {
    let probe = CRIUDumper().probe()
    if !probe.isUsable { print("skipped: heat under the real CRIU: \(probe.reason ?? "criu is not usable here")") }
    return probe
}()

/// The DMTCP programs, when all are installed (looked up once; the reason is printed when not).
private let dmtcpPrograms: [String: String]? = {
    var found: [String: String] = [:]
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for program in ["dmtcp_coordinator", "dmtcp_launch", "dmtcp_restart"] {
        let directories = path.split(separator: ":").map(String.init)
        guard
            let match = directories.map({ $0 + "/" + program })
                .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            print("skipped: heat under the real DMTCP: \(program) is not installed (build DMTCP from its source)")
            return nil
        }
        found[program] = match
    }
    return found
}()

@Suite("Heat under the real CRIU and DMTCP", .serialized)
struct HeatProcessDumpTests {
    /// 300 steps of 20 ms, a checkpoint every 50 and a dump after every 4th (step 200): the run is
    /// still going when the dump is recorded, and retention (the newest 3) keeps the dumped checkpoint.
    static let run = ["--grid", "64", "--steps", "300", "--checkpoint-every", "50", "--delay-ms", "20"]
    static let dumpedStep = "ckpt-000000000200"

    /// The checksum of an uninterrupted run.
    static func uninterrupted(_ scratch: String) throws -> String {
        let lines = try runExample(try HeatTests.heat(), run + ["--delay-ms", "0", "--dir", scratch + "/reference"])
        return try #require(lines.last)
    }

    @Test(
        "criu dumps a running heat (--dumper criu), criu restore brings it back after kill -9, same checksum",
        .enabled(if: criuProbe.isUsable, "needs a CRIU whose `criu check` passes (and root)"),
        .timeLimit(.minutes(3))
    )
    func criu() throws {
        try withTemporaryDirectory { scratch in
            let expected = try Self.uninterrupted(scratch)
            let directory = scratch + "/run"
            let heat = try Self.start(
                try HeatTests.heat().path,
                Self.run + ["--dumper", "criu", "--dump-every", "4", "--dir", directory],
                output: scratch + "/heat.out"
            )
            let images = directory + "/" + Self.dumpedStep + "/images/rank-00000"
            defer { Self.stop(heat) }
            let record = try Self.waitForDumpRecord(directory + "/" + Self.dumpedStep, while: heat)
            #expect(record.contains("\"status\" : \"ok\""), "\(record)")
            // The restored process gets the original pid back: the original must be gone and reaped.
            Self.stop(heat)
            let pidFile = scratch + "/restored.pid"
            let restore = try Self.start(
                try #require(Self.locate("criu")),
                [
                    "restore", "-D", images, "-o", "restore.log", "--shell-job", "--file-locks", "--restore-detached",
                    "--pidfile", pidFile,
                ],
                output: scratch + "/restore.out"
            )
            let status = try restore.wait()
            let log = (try? String(contentsOfFile: images + "/restore.log", encoding: .utf8)) ?? ""
            try #require(status == 0, "criu restore failed: \(log.suffix(600))")
            let pid = try #require(
                Int32(
                    try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                )
            )
            defer { kill(pid, SIGKILL) }
            // Detached: the restored heat is no child of this process; wait for its pid to go away.
            try Self.waitForExit(of: pid)
            let output = try String(contentsOfFile: scratch + "/heat.out", encoding: .utf8)
            #expect(output.split(separator: "\n").last.map(String.init) == expected, "\(output)")
            // The copy's dump call returned .restored (its start time differs), noted beside the images.
            let restores = (try? String(contentsOfFile: images + "/restores.log", encoding: .utf8)) ?? ""
            #expect(restores.hasPrefix("restored ") && restores.contains("pid \(pid)"), "\(restores)")
        }
    }

    @Test(
        "DMTCP checkpoints a heat under dmtcp_launch (--dumper dmtcp), dmtcp_restart continues it, same checksum",
        .enabled(if: dmtcpPrograms != nil, "needs DMTCP (dmtcp_coordinator, dmtcp_launch, dmtcp_restart)"),
        .timeLimit(.minutes(3))
    )
    func dmtcp() throws {
        let programs = try #require(dmtcpPrograms)
        try withTemporaryDirectory { scratch in
            let expected = try Self.uninterrupted(scratch)
            let directory = scratch + "/run"
            let images = scratch + "/dmtcp-images"
            try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
            // A coordinator of this test's own on a free port (its restart script goes beside the images).
            let coordinator = try Self.start(
                programs["dmtcp_coordinator"]!,
                ["--exit-on-last", "--coord-port", "0", "--port-file", scratch + "/port", "--ckptdir", images],
                output: scratch + "/coordinator.out"
            )
            defer { Self.stop(coordinator) }
            let port = try Self.port(in: scratch + "/port")
            let heat = try Self.start(
                programs["dmtcp_launch"]!,
                ["--join-coordinator", "--coord-port", port, "--ckptdir", images, try HeatTests.heat().path]
                    + Self.run + ["--dumper", "dmtcp", "--dump-every", "4", "--dir", directory],
                output: scratch + "/heat.out"
            )
            defer { Self.stop(heat) }
            let record = try Self.waitForDumpRecord(directory + "/" + Self.dumpedStep, while: heat)
            #expect(record.contains("\"status\" : \"ok\""), "\(record)")
            Self.stop(heat)
            let image = try #require(
                try FileManager.default.contentsOfDirectory(atPath: images).first { $0.hasSuffix(".dmtcp") },
                "no DMTCP image in \(images)"
            )
            // dmtcp_restart becomes the restored heat; its output is the restored process's.
            let restart = try Self.start(
                programs["dmtcp_restart"]!,
                [
                    "--new-coordinator", "--coord-port", "0", "--port-file", scratch + "/restart-port",
                    images + "/" + image,
                ],
                output: scratch + "/restart.out"
            )
            defer { Self.stop(restart) }
            let status = try restart.wait()
            let output = try String(contentsOfFile: scratch + "/restart.out", encoding: .utf8)
            #expect(status == 0, "\(output.suffix(800))")
            #expect(output.split(separator: "\n").last.map(String.init) == expected, "\(output.suffix(800))")
            // dmtcp_checkpoint() returned DMTCP_AFTER_RESTART in the copy: .restored, noted beside dmtcp.txt.
            let noted = directory + "/" + Self.dumpedStep + "/images/rank-00000/restores.log"
            let restores = (try? String(contentsOfFile: noted, encoding: .utf8)) ?? ""
            #expect(restores.hasPrefix("restored "), "\(restores)")
        }
    }

    // MARK: Helpers

    /// Starts a program in a process group of its own, its standard output and error in a file.
    ///
    /// Not through Foundation's `Process`: its child inherits a socket whose other end is in this
    /// process, which criu refuses to dump ("unix: External socket is used") and which a program
    /// that daemonizes keeps open, so that `Process` never sees it end.
    static func start(_ executable: String, _ arguments: [String], output: String) throws -> Child {
        let script = "out=$1; shift; exec \"$@\" > \"$out\" 2>&1"
        return Child(
            pid: try Syscalls.spawnInNewSession(
                "/bin/sh",
                arguments: ["sh", "-c", script, "sh", output, executable] + arguments
            )
        )
    }

    /// A child process, reaped at most once (its pid may belong to another process afterwards: a
    /// CRIU restore gives the restored copy the same pid).
    final class Child {
        let pid: Int32
        var status: Int32?
        init(pid: Int32) { self.pid = pid }

        /// Waits for the child to exit and returns its wait status.
        func wait() throws -> Int32 {
            if let status { return status }
            let status = try Syscalls.waitForExit(of: pid)
            self.status = status
            return status
        }
    }

    /// Kills a child process (and its group) and reaps it, so that its pid is free; a child that
    /// has been reaped already is left alone.
    static func stop(_ child: Child) {
        guard child.status == nil else { return }
        Syscalls.killProcessGroup(child.pid)
        _ = try? child.wait()
    }

    /// Whether a process runs (exists and is not a zombie).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// The dump record of a checkpoint, once the running process has written it.
    static func waitForDumpRecord(_ checkpoint: String, while child: Child) throws -> String {
        let path = checkpoint + "/dumps/rank-00000.json"
        while !FileManager.default.fileExists(atPath: path) {
            try #require(isAlive(child.pid), "the process ended before it dumped \(checkpoint)")
            usleep(20_000)
        }
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Waits until no process has `pid` (at most two minutes).
    static func waitForExit(of pid: Int32) throws {
        for _ in 0..<1200 where FileManager.default.fileExists(atPath: "/proc/\(pid)") { usleep(100_000) }
        try #require(!FileManager.default.fileExists(atPath: "/proc/\(pid)"), "process \(pid) did not finish")
    }

    /// The port `dmtcp_coordinator --port-file` wrote, once it has.
    static func port(in portFile: String) throws -> String {
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return String(port)
            }
            usleep(50_000)
        }
        throw ToolMissing(message: "dmtcp_coordinator wrote no port to \(portFile)")
    }

    static func locate(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
