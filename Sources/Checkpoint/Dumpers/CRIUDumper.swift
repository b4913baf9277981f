import Foundation

/// Dumps a process with CRIU's command-line tool: `criu dump -t PID -D DIR --leave-running`.
///
/// CRIU needs root or `CAP_CHECKPOINT_RESTORE` (plus `CAP_SYS_PTRACE`), a kernel it supports
/// (`criu check` passes), and a process without unsupported resources (see
/// `Documentation/ProcessDumpers.md`). Images are written with `-o dump.log` in the images directory.
public struct CRIUDumper: ProcessDumper {
    /// The `criu` program (a name looked up in `PATH`, or a path).
    public var executable: String
    /// Pass `--shell-job` (the process has a controlling terminal or session from a shell). Default `true`.
    public var shellJob: Bool
    /// Pass `--tcp-established` to dump open TCP connections (restore needs the same addresses).
    public var tcpEstablished: Bool
    /// Pass `--file-locks`.
    public var fileLocks: Bool
    /// Use `--unprivileged` (CRIU 3.18 and later, with `CAP_CHECKPOINT_RESTORE`); ignored before 3.18.
    public var unprivileged: Bool
    /// Dump incrementally against the previous dump's images (`--track-mem --prev-images-dir`).
    public var incremental: Bool
    /// More arguments for `criu dump`, appended last.
    public var extraArguments: [String]

    /// `"criu"`.
    public var name: String { "criu" }

    /// Creates a CRIU dumper; every option has a default.
    public init(
        executable: String = "criu",
        shellJob: Bool = true,
        tcpEstablished: Bool = false,
        fileLocks: Bool = false,
        unprivileged: Bool = false,
        incremental: Bool = false,
        extraArguments: [String] = []
    ) {
        self.executable = executable
        self.shellJob = shellJob
        self.tcpEstablished = tcpEstablished
        self.fileLocks = fileLocks
        self.unprivileged = unprivileged
        self.incremental = incremental
        self.extraArguments = extraArguments
    }

    /// Runs `criu --version` and `criu check`.
    public func probe() -> DumperProbe {
        let version: String
        do {
            let result = try ExternalProcess.run([executable, "--version"], timeout: 30)
            guard result.status == 0, let parsed = Self.version(in: result.output) else {
                return DumperProbe(isUsable: false, reason: "criu --version failed: \(result.output.lastLines(2))")
            }
            version = parsed
        } catch {
            return DumperProbe(isUsable: false, reason: error.message)
        }
        var check = [executable, "check"]
        if unprivileged && Self.supportsUnprivileged(version) { check.append("--unprivileged") }
        do {
            let result = try ExternalProcess.run(check, timeout: 60)
            guard result.status == 0 else {
                return DumperProbe(
                    isUsable: false,
                    version: version,
                    reason: "criu check failed (exit \(result.status)): \(result.output.lastLines(3))"
                )
            }
        } catch {
            return DumperProbe(isUsable: false, version: version, reason: error.message)
        }
        return DumperProbe(isUsable: true, version: version)
    }

    /// Runs `criu dump` on the request's process.
    public func dump(_ request: DumpRequest) throws -> DumpOutcome {
        let version =
            unprivileged
            ? (try? ExternalProcess.run([executable, "--version"], timeout: 30)).flatMap { Self.version(in: $0.output) }
            : nil
        let arguments = dumpArguments(request, version: version)
        let result = try ExternalProcess.run(arguments, timeout: request.timeout)
        guard result.status == 0 else {
            let log =
                (try? String(contentsOfFile: request.imagesDirectory + "/dump.log", encoding: .utf8)) ?? result.output
            throw CheckpointError(
                .ioFailure,
                "criu dump failed (exit \(result.status)): \(log.lastLines(3))",
                path: request.imagesDirectory,
                underlying: DumperExit(status: result.status)
            )
        }
        return .continued
    }

    /// The `criu dump` command line for a request (`version` decides whether `--unprivileged` is passed).
    public func dumpArguments(_ request: DumpRequest, version: String?) -> [String] {
        var arguments = [
            executable, "dump", "-t", String(request.pid), "-D", request.imagesDirectory, "-o", "dump.log",
        ]
        if request.leaveRunning { arguments.append("--leave-running") }
        if shellJob { arguments.append("--shell-job") }
        if tcpEstablished { arguments.append("--tcp-established") }
        if fileLocks { arguments.append("--file-locks") }
        if incremental, let previous = request.previousImagesDirectory {
            arguments += ["--track-mem", "--prev-images-dir", previous]
        }
        if unprivileged, let version, Self.supportsUnprivileged(version) { arguments.append("--unprivileged") }
        return arguments + extraArguments
    }

    /// The version in `criu --version` output (`Version: 3.17.1`).
    static func version(in output: String) -> String? {
        for line in output.split(separator: "\n") where line.hasPrefix("Version:") {
            return line.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// Whether a CRIU version has `--unprivileged` (3.18 and later).
    static func supportsUnprivileged(_ version: String) -> Bool {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return false }
        return parts[0] > 3 || (parts[0] == 3 && parts[1] >= 18)
    }
}

/// The exit status of a dumper program that failed.
public struct DumperExit: Error, Sendable, CustomStringConvertible {
    /// The status.
    public var status: Int32
    /// `exit status N`.
    public var description: String { "exit status \(status)" }
}
