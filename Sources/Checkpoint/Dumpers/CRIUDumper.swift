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
    /// Pass `--file-locks`. Default `true`: a ``Checkpointer`` holds a lock (`flock`) on its
    /// directory's `.lock` for as long as it exists, and CRIU refuses to dump a process that holds a
    /// file lock without this option ("Some file locks are hold by dumping tasks"). With it, `criu
    /// restore --file-locks` takes the lock again for the restored process.
    public var fileLocks: Bool
    /// Use `--unprivileged` (CRIU 3.18 and later, with `CAP_CHECKPOINT_RESTORE`); ignored before 3.18.
    public var unprivileged: Bool
    /// Dump incrementally against the previous dump's images (`--track-mem --prev-images-dir`).
    ///
    /// The images of an incremental dump are incomplete without their predecessors'; keep those
    /// checkpoints (``Checkpointer/Configuration/Retention``) as long as you may restore the newer images.
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
        fileLocks: Bool = true,
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
    ///
    /// `criu` runs outside this process's tree of children (see `ExternalProcess.runDetached`), so it
    /// can dump this process itself; its output and exit status are kept in the images directory
    /// (`dump-output.log`, `dump-status`) beside CRIU's own `dump.log`.
    /// - Returns: ``DumpOutcome/restored`` when the request's process is this one and the call
    ///   returns in a copy that `criu restore` created (its start time differs from the dumped
    ///   process's); otherwise ``DumpOutcome/continued``.
    public func dump(_ request: DumpRequest) throws -> DumpOutcome {
        // A restored copy resumes inside `runDetached`'s wait and finds the status the original's
        // criu left; only the process's start time tells the two apart.
        let before = request.pid == Syscalls.processID ? ProcessIncarnation.current() : nil
        let version =
            unprivileged
            ? (try? ExternalProcess.run([executable, "--version"], timeout: 30)).flatMap { Self.version(in: $0.output) }
            : nil
        let arguments = dumpArguments(request, version: version)
        // criu refuses to dump a tree it is part of, and it would be part of this process's tree (the
        // usual target) as its child: it runs detached instead.
        let result = try ExternalProcess.runDetached(
            arguments,
            timeout: request.timeout,
            timer: request.timer,
            directory: request.imagesDirectory
        )
        guard result.status == 0 else {
            let log =
                Syscalls.exists(request.imagesDirectory + "/dump.log")
                ? ExternalProcess.readText(request.imagesDirectory + "/dump.log") : result.output
            throw CheckpointError(
                .ioFailure,
                "criu dump failed (exit \(result.status)): \(log.lastLines(3))\(Self.advice(for: log))",
                path: request.imagesDirectory,
                underlying: DumperExit(status: result.status)
            )
        }
        let outcome = ProcessIncarnation.outcome(since: before)
        if outcome == .restored { ProcessIncarnation.noteRestore(in: request.imagesDirectory) }
        return outcome
    }

    /// What to do about a failed dump whose log names a cause the user can fix, or an empty string.
    static func advice(for log: String) -> String {
        if log.contains("is outside of its pid namespace") {
            return " (the process's session leader is outside its PID namespace, as under `unshare --pid`:"
                + " start the job with `setsid` so that it leads its own session)"
        }
        return ""
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
        if incremental {
            // Every dump tracks memory, so that the next one can write only the pages changed since.
            arguments.append("--track-mem")
            if let previous = request.previousImagesDirectory {
                arguments += ["--prev-images-dir", Self.relativePath(previous, from: request.imagesDirectory)]
            }
        }
        if unprivileged, let version, Self.supportsUnprivileged(version) { arguments.append("--unprivileged") }
        return arguments + extraArguments
    }

    /// `path` relative to `directory`, as `--prev-images-dir` wants it (relative paths are taken
    /// relative to the working directory first). CRIU keeps it as the images' `parent` link, which
    /// then survives moving the whole checkpoint directory.
    static func relativePath(_ path: String, from directory: String) -> String {
        func components(_ path: String) -> [Substring] {
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            return absolute.split(separator: "/").filter { $0 != "." }
        }
        let target = components(path)
        let base = components(directory)
        var common = 0
        while common < min(target.count, base.count) && target[common] == base[common] { common += 1 }
        let parts = Array(repeating: "..", count: base.count - common) + target[common...].map(String.init)
        return parts.isEmpty ? "." : parts.joined(separator: "/")
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
