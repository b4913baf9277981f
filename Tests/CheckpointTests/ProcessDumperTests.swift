import Foundation
import Synchronization
import Testing

@_spi(Testing) @testable import Checkpoint

#if canImport(Glibc)
import Glibc
#endif

// Stand-in dumper programs are shell scripts written into each test's temporary directory, so
// these tests exercise the real process runner (arguments, exit status, output, timeout) without
// CRIU or DMTCP.

/// Writes an executable `#!/bin/sh` script and returns its path.
private func writeScript(_ name: String, in directory: String, _ body: String) throws -> String {
    let path = directory + "/" + name
    try Data(("#!/bin/sh\n" + body + "\n").utf8).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    return path
}

/// A stand-in for a site's dump program: records its arguments (one a line) in `DIR/arguments.txt`,
/// where DIR is its first argument, writes a fake image there, and prints `extraOutput`.
private func recordingDumper(in directory: String, extraOutput: String = "") throws -> String {
    try writeScript(
        "record-dump",
        in: directory,
        """
        printf '%s\\n' "$@" > "$1/arguments.txt"
        printf 'fake pages\\n' > "$1/pages-1.img"
        echo "dumped $# arguments"
        \(extraOutput)
        """
    )
}

/// What the stand-in `criu dump` does.
private enum StandInDump {
    case succeed
    case fail
    /// Opens the FIFO at the path for writing, writes `ready` and sleeps (a hanging dump).
    case hang(fifo: String)
}

/// A stand-in `criu`: answers `--version` with `version`, passes or fails `check`, and for `dump`
/// records its ancestors' pids (`ancestors.txt`) and writes `dump.log` (and `inventory.img` when it
/// succeeds) into the `-D` directory. Every call's arguments are appended to `DIRECTORY/criu-calls.txt`.
private func standInCRIU(
    in directory: String,
    version: String = "3.17.1",
    checkPasses: Bool = true,
    dump behavior: StandInDump = .succeed
) throws -> String {
    let check =
        checkPasses
        ? "echo 'Looks good.'"
        : """
        echo 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds'
            echo 'Error (criu/crtools.c:260): Could not initialize kernel features detection.'
            exit 1
        """
    let dump: String
    switch behavior {
    case .succeed:
        dump = """
            echo '(00.000) Dumping finished successfully' > "$images/dump.log"
                echo 'fake inventory' > "$images/inventory.img"
            """
    case .fail:
        dump = """
            printf '%s\\n' '(00.000) Version: \(version)' '(00.001) first-line-of-the-log' \\
                    '(00.002) Seizing the process' \\
                    '(00.003) Error (criu/seize.c:1011): The criu itself is within dumped tree.' \\
                    '(00.004) Error (criu/cr-dump.c:2099): Dumping FAILED.' > "$images/dump.log"
                echo 'criu printed this on stderr' >&2
                exit 1
            """
    case .hang(let fifo):
        dump = """
            exec 3> '\(fifo)'
                echo ready >&3
                sleep 120
            """
    }
    return try writeScript(
        "criu",
        in: directory,
        """
        echo "$*" >> "\(directory)/criu-calls.txt"
        case "$1" in
        --version)
            echo "Version: \(version)"
            echo "GitID: v\(version)"
            ;;
        check)
            \(check)
            ;;
        dump)
            images=""
            while [ $# -gt 0 ]; do
                if [ "$1" = "-D" ]; then images="$2"; fi
                shift
            done
            pid=$$
            ancestors=""
            while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
                ancestors="$ancestors $pid"
                pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status")
            done
            echo "$ancestors" > "$images/ancestors.txt"
            \(dump)
            ;;
        *)
            echo "unexpected arguments: $*"
            exit 2
            ;;
        esac
        """
    )
}

/// A stand-in `dmtcp_command`: `--status` succeeds when a coordinator "answers", `--bcheckpoint`
/// succeeds or fails. Calls are appended to `DIRECTORY/dmtcp-calls.txt`.
private func standInDMTCP(
    in directory: String,
    coordinator: Bool = true,
    checkpointFails: Bool = false
) throws
    -> String
{
    let status =
        coordinator
        ? "echo 'Coordinator: localhost:7779'; exit 0"
        : "echo \"dmtcp_command: Coordinator not found. Try specifying port with '--port'.\"; exit 1"
    let checkpoint = checkpointFails ? "echo 'checkpoint refused'; exit 4" : "echo 'checkpoint done'; exit 0"
    return try writeScript(
        "dmtcp_command",
        in: directory,
        """
        echo "$*" >> "\(directory)/dmtcp-calls.txt"
        for argument in "$@"; do
            case "$argument" in
            --version) echo 'dmtcp_command (DMTCP) 3.0.0'; exit 0 ;;
            --status) \(status) ;;
            --bcheckpoint) \(checkpoint) ;;
            esac
        done
        exit 2
        """
    )
}

/// The lines of a text file.
private func lines(_ path: String) throws -> [String] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
}

private func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

/// A fresh images directory inside `directory`.
private func makeImages(_ directory: String, _ name: String = "images") throws -> String {
    let path = directory + "/" + name
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The read end of a new FIFO, opened without waiting for a writer.
private func openFIFO(_ path: String) throws -> Int32 {
    guard mkfifo(path, 0o600) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    let descriptor = open(path, O_RDONLY | O_NONBLOCK)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return descriptor
}

/// Waits until a writer wrote `ready` into the FIFO: the program reached the point under test.
/// - Returns: `false` when the writers closed it without writing `ready`.
private func awaitReady(_ descriptor: Int32) -> Bool {
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64)
    while true {
        // Until a writer connects, poll waits (no hang-up is reported for a FIFO never written).
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, -1) > 0 else {
            if errno == EINTR { continue }
            return false
        }
        let count = read(descriptor, &buffer, buffer.count)
        if count > 0 { received += buffer[0..<count] }
        if String(decoding: received, as: UTF8.self).hasPrefix("ready") { return true }
        if count == 0 { return false }
    }
}

/// Waits until every writer has closed the FIFO. A process holding the write end closes it when
/// it dies, so this waits for the death of the processes a killed dumper had started, without
/// polling on a timer (the test's time limit ends a wait that never would).
private func awaitWritersGone(_ descriptor: Int32) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 64)
    while true {
        let count = read(descriptor, &buffer, buffer.count)
        if count > 0 { continue }
        if count == 0 { return true }
        guard errno == EAGAIN || errno == EINTR else { return false }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&entry, 1, -1)
    }
}

/// A timer for a dump request whose time is up once the program wrote `ready` into the FIFO.
private func timeUpWhenReady(_ descriptor: Int32, _ ready: Locked<Bool>) -> DumpTimer {
    .when {
        let connected = awaitReady(descriptor)
        ready.withLock { $0 = connected }
    }
}

/// Hook calls in the order they happened, from any thread.
final class DumpEvents: Sendable {
    private let events = Mutex<[String]>([])
    func append(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
}

struct RefusedDump: Error, CustomStringConvertible {
    var description: String { "the socket is busy" }
}

extension DumpParticipants.Hooks {
    /// Hooks that log `willDump NAME`, `didContinue NAME` and `didRestore NAME`.
    static func logging(_ name: String, to events: DumpEvents, refuse: Bool = false) -> Self {
        Self(
            willDump: {
                events.append("willDump \(name)")
                if refuse { throw RefusedDump() }
            },
            didContinue: { events.append("didContinue \(name)") },
            didRestore: { events.append("didRestore \(name)") }
        )
    }
}

// MARK: - The adapters against stand-ins

@Suite("Process dumpers: CommandDumper")
struct ProcessDumperCommandTests {
    @Test("Placeholders are filled in; the program's images land in the images directory", arguments: [nil, "/p/rev"])
    func placeholders(previous: String?) throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let script = try recordingDumper(in: directory)
            let dumper = CommandDumper(arguments: [
                script, "{dir}", "--pid={pid}", "{step}", "{rank}", "{prev}", "s{step}-r{rank}",
            ])
            let request = DumpRequest(
                pid: 4242,
                imagesDirectory: images,
                previousImagesDirectory: previous,
                step: 7,
                rank: 2
            )
            let expected = [images, "--pid=4242", "7", "2", previous ?? "", "s7-r2"]
            #expect(dumper.substituted(request) == [script] + expected)
            #expect(try dumper.dump(request) == .continued)
            #expect(try lines(images + "/arguments.txt") == expected)
            #expect(exists(images + "/pages-1.img"))
        }
    }

    @Test("A line 'outcome: restored' on the program's output means this process is a restored copy")
    func restoredOutcome() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let script = try recordingDumper(in: directory, extraOutput: "echo '  outcome: restored'")
            let request = DumpRequest(pid: 1, imagesDirectory: images, step: 1, rank: 0)
            #expect(try CommandDumper(arguments: [script, "{dir}"]).dump(request) == .restored)
        }
    }

    @Test("A failing program is a CheckpointError carrying its exit status and last output lines")
    func failingProgram() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let script = try writeScript("fail", in: directory, "echo 'no space left for images' >&2\nexit 3")
            let request = DumpRequest(pid: 1, imagesDirectory: images, step: 1, rank: 0)
            let error = try #require(throws: CheckpointError.self) {
                try CommandDumper(arguments: [script]).dump(request)
            }
            #expect(error.code == .ioFailure)
            #expect((error.underlying as? DumperExit)?.status == 3)
            #expect(error.message.contains("exit 3"))
            #expect(error.message.contains("no space left for images"))
        }
    }

    @Test("A hanging program is killed at the timeout and reported as timedOut", .timeLimit(.minutes(1)))
    func hangingProgram() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let pidFile = directory + "/hang.pid"
            // `exec` keeps the pid, so the pid the script wrote is the process that must be killed.
            let script = try writeScript("hang", in: directory, "echo $$ > '\(pidFile)'\nexec sleep 30")
            let request = DumpRequest(pid: 1, imagesDirectory: images, step: 1, rank: 0, timeout: 0.5)
            let error = try #require(throws: CheckpointError.self) {
                try CommandDumper(arguments: [script]).dump(request)
            }
            #expect(error.code == .timedOut)
            #expect(error.message.contains("was killed"))
            // Under heavy load the script may not have written its pid within the timeout.
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                #expect(kill(pid, 0) == -1 && errno == ESRCH, "the program \(pid) is still running")
            }
        }
    }

    @Test("At the timeout, the processes the program started are killed with it", .timeLimit(.minutes(1)))
    func hangingChildren() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let fifo = try openFIFO(directory + "/held")
            defer { close(fifo) }
            // The shell and its `sleep` child both hold the FIFO open; no `exec`, so killing the
            // shell alone would leave the `sleep` running (and the runner waiting for it: the
            // child inherits the descriptor by which Foundation learns that a program ended, so
            // the test would run into its time limit).
            let script = try writeScript(
                "hang-with-child",
                in: directory,
                "exec 3> '\(directory)/held'\necho ready >&3\nsleep 120\necho after"
            )
            // The time is up once the script and its child hold the FIFO, however long a loaded
            // machine takes to get there.
            let ready = Locked(false)
            var request = DumpRequest(pid: 1, imagesDirectory: images, step: 1, rank: 0, timeout: 600)
            request.timer = timeUpWhenReady(fifo, ready)
            let error = try #require(throws: CheckpointError.self) {
                try CommandDumper(arguments: [script]).dump(request)
            }
            #expect(error.code == .timedOut)
            #expect(ready.withLock { $0 }, "the script wrote ready")
            #expect(awaitWritersGone(fifo), "the script's child survived the timeout")
        }
    }

    @Test("A missing program: the probe says why, and a dump throws notFound")
    func missingProgram() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            for program in [directory + "/no-such-dumper", "ckpt-no-such-dumper-in-path"] {
                let dumper = CommandDumper(arguments: [program, "{dir}"])
                let probe = dumper.probe()
                #expect(!probe.isUsable)
                #expect(probe.reason?.contains("not found") == true)
                let request = DumpRequest(pid: 1, imagesDirectory: images, step: 1, rank: 0)
                let error = try #require(throws: CheckpointError.self) { try dumper.dump(request) }
                #expect(error.code == .notFound)
            }
            #expect(!CommandDumper(arguments: []).probe().isUsable)
        }
    }

    @Test("The probe finds programs in PATH and reports the first line of the version output")
    func probeVersion() throws {
        try withTemporaryDirectory { directory in
            let script = try writeScript("versioned", in: directory, "echo 'snapshot 2.1'\necho 'second line'")
            let probe = CommandDumper(arguments: [script, "{dir}"], versionArguments: [script, "--version"]).probe()
            #expect(probe == DumperProbe(isUsable: true, version: "snapshot 2.1"))
            #expect(CommandDumper(arguments: ["sh", "-c", "true"]).probe() == DumperProbe(isUsable: true))
        }
    }

    @Test("Placeholders are replaced in one pass: a value that contains a placeholder is not replaced again")
    func placeholdersInValues() throws {
        let request = DumpRequest(
            pid: 4242,
            imagesDirectory: "/ckpt/b{rank}{step}/images/rank-00002",
            previousImagesDirectory: "/ckpt/{pid}{dir}",
            step: 7,
            rank: 2
        )
        let dumper = CommandDumper(arguments: ["{dir}", "{prev}", "--to={dir}:{rank}", "{{step}}", "{unknown}", "{"])
        #expect(
            dumper.substituted(request) == [
                "/ckpt/b{rank}{step}/images/rank-00002", "/ckpt/{pid}{dir}",
                "--to=/ckpt/b{rank}{step}/images/rank-00002:2", "{7}", "{unknown}", "{",
            ]
        )
    }

    @Test("The program's output goes to an owner-only log beside the images directory, removed afterwards")
    func privateLog() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            // The program reports where its output goes and that file's mode, and says it was restored.
            let script = try writeScript(
                "where",
                in: directory,
                """
                log=$(readlink /proc/$$/fd/1)
                printf '%s\n' "$log" > "$1/log-path.txt"
                stat -c '%a' "$log" >> "$1/log-path.txt"
                echo 'outcome: restored'
                """
            )
            let request = DumpRequest(pid: 1, imagesDirectory: images, step: 1, rank: 0)
            #expect(try CommandDumper(arguments: [script, "{dir}"]).dump(request) == .restored)
            let reported = try lines(images + "/log-path.txt")
            try #require(reported.count == 2)
            #expect(reported[0].hasPrefix(directory + "/.dump-output-"), "the log was \(reported[0])")
            #expect(!reported[0].hasPrefix("/tmp/ckpt-dumper"), "the log was \(reported[0])")
            #expect(reported[1] == "600", "the log's mode was \(reported[1])")
            #expect(!FileManager.default.fileExists(atPath: reported[0]), "the log outlived the dump")
            #expect(try FileManager.default.contentsOfDirectory(atPath: images) == ["log-path.txt"])
        }
    }

    @Test("A probe's output goes to an anonymous file, not into a shared folder")
    func probeLog() throws {
        try withTemporaryDirectory { directory in
            let script = try writeScript("versioned", in: directory, "readlink /proc/$$/fd/1")
            let probe = CommandDumper(arguments: [script], versionArguments: [script]).probe()
            let version = try #require(probe.version)
            #expect(version.hasPrefix("/memfd:"), "the probe's output went to \(version)")
        }
    }

    @Test("A command line is split at spaces, as heat's --dumper 'command:…' gives it")
    func commandLine() {
        let dumper = CommandDumper(commandLine: "/opt/snap  --pid {pid} --to {dir}")
        #expect(dumper.arguments == ["/opt/snap", "--pid", "{pid}", "--to", "{dir}"])
        #expect(dumper.name == "command")
    }
}

@Suite("Process dumpers: CRIUDumper")
struct ProcessDumperCRIUTests {
    static let request = DumpRequest(
        pid: 1234,
        imagesDirectory: "/ckpt/images/rank-00000",
        previousImagesDirectory: "/ckpt-old/images/rank-00000",
        step: 5,
        rank: 0
    )

    @Test("The probe parses `criu --version` and passes when `criu check` does")
    func probeUsable() throws {
        try withTemporaryDirectory { directory in
            let criu = try standInCRIU(in: directory, version: "3.17.1")
            #expect(CRIUDumper(executable: criu).probe() == DumperProbe(isUsable: true, version: "3.17.1"))
            #expect(try lines(directory + "/criu-calls.txt") == ["--version", "check"])
        }
    }

    @Test("A failing `criu check` makes the dumper unusable, quoting CRIU's own words")
    func probeCheckFails() throws {
        try withTemporaryDirectory { directory in
            let probe = CRIUDumper(executable: try standInCRIU(in: directory, checkPasses: false)).probe()
            #expect(!probe.isUsable)
            #expect(probe.version == "3.17.1")
            let reason = try #require(probe.reason)
            #expect(reason.contains("criu check failed (exit 1)"))
            #expect(reason.contains("Unexpected rt vDSO area bounds"))
        }
    }

    @Test("A missing criu is not usable")
    func probeMissing() throws {
        try withTemporaryDirectory { directory in
            let probe = CRIUDumper(executable: directory + "/criu").probe()
            #expect(!probe.isUsable)
            #expect(probe.version == nil)
            #expect(probe.reason?.contains("not found") == true)
        }
    }

    @Test("Relative paths between images directories")
    func relativePaths() {
        let root = "/scratch/run/checkpoints"
        #expect(
            CRIUDumper.relativePath(root + "/ckpt-2/images/rank-00001", from: root + "/ckpt-4/images/rank-00001")
                == "../../../ckpt-2/images/rank-00001"
        )
        #expect(CRIUDumper.relativePath("/a/b", from: "/a/b") == ".")
        #expect(CRIUDumper.relativePath("/a/b/c", from: "/a") == "b/c")
        // A checkpoint directory given relative to the working directory.
        #expect(
            CRIUDumper.relativePath("run/./ckpt-2/images/rank-00000", from: "run/ckpt-4/images/rank-00000")
                == "../../../ckpt-2/images/rank-00000"
        )
        let workingDirectory = FileManager.default.currentDirectoryPath
        #expect(CRIUDumper.relativePath(workingDirectory + "/x", from: "y") == "../x")
    }

    @Test("A dump refused for a session leader outside the PID namespace says to start the job with setsid")
    func sessionLeaderAdvice() {
        let log = "Error (criu/cr-dump.c:1681): A session leader of 15993(15993) is outside of its pid namespace"
        #expect(CRIUDumper.advice(for: log).contains("setsid"))
        #expect(CRIUDumper.advice(for: "Error (criu/cr-dump.c:2128): Dumping FAILED.").isEmpty)
    }

    @Test("Version parsing and the --unprivileged cut-off (3.18)")
    func versions() {
        #expect(CRIUDumper.version(in: "Version: 3.17.1\nGitID: v3.17.1\n") == "3.17.1")
        #expect(CRIUDumper.version(in: "criu: unknown option") == nil)
        for (version, supported) in [
            ("3.17.1", false), ("3.18", true), ("3.19", true), ("4.0", true), ("3.9.2", false), ("garbage", false),
        ] {
            #expect(CRIUDumper.supportsUnprivileged(version) == supported, "\(version)")
        }
    }

    @Test("The default dump command line, with --file-locks for the checkpointer's own lock on .lock")
    func defaultArguments() {
        let arguments = CRIUDumper(executable: "/usr/sbin/criu").dumpArguments(Self.request, version: "3.17.1")
        #expect(
            arguments == [
                "/usr/sbin/criu", "dump", "-t", "1234", "-D", "/ckpt/images/rank-00000", "-o", "dump.log",
                "--leave-running", "--shell-job", "--file-locks",
            ]
        )
        #expect(!CRIUDumper(fileLocks: false).dumpArguments(Self.request, version: nil).contains("--file-locks"))
    }

    @Test("A restored copy is told apart by its start time in /proc/self/stat (field 22)")
    func incarnation() throws {
        let stat = "4321 (my (odd) sim) S 1 4321 4321 0 -1 4194560 9 0 0 0 0 0 0 0 20 0 3 0 1981171 3133440 394"
        #expect(ProcessIncarnation.parse(stat) == ProcessIncarnation(startTime: 1_981_171))
        #expect(ProcessIncarnation.parse("4321 (sim) S 1") == nil)
        let now = try #require(ProcessIncarnation.current())
        #expect(ProcessIncarnation.outcome(since: now) == .continued)
        #expect(ProcessIncarnation.outcome(since: nil) == .continued)
        #expect(ProcessIncarnation.outcome(since: ProcessIncarnation(startTime: now.startTime + 1)) == .restored)
    }

    @Test("Options: --tcp-established, --file-locks, incremental dumps, extra arguments last")
    func optionArguments() {
        let dumper = CRIUDumper(
            executable: "criu",
            shellJob: false,
            tcpEstablished: true,
            fileLocks: true,
            incremental: true,
            extraArguments: ["--ext-unix-sk"]
        )
        let arguments = dumper.dumpArguments(Self.request, version: "3.17.1")
        #expect(!arguments.contains("--shell-job"))
        #expect(arguments.contains("--tcp-established"))
        #expect(arguments.contains("--file-locks"))
        // The previous images are given relative to the new ones, so the pair can move together.
        #expect(
            arguments.joined(separator: " ").contains(
                "--track-mem --prev-images-dir ../../../ckpt-old/images/rank-00000"
            )
        )
        #expect(arguments.last == "--ext-unix-sk")
        // The first dump has no previous images: a full dump, which starts tracking memory.
        var first = Self.request
        first.previousImagesDirectory = nil
        let full = dumper.dumpArguments(first, version: "3.17.1")
        #expect(full.contains("--track-mem"))
        #expect(!full.contains("--prev-images-dir"))
        // Not incremental: previous images are ignored.
        let plain = CRIUDumper().dumpArguments(Self.request, version: nil)
        #expect(!plain.contains("--prev-images-dir") && !plain.contains("--track-mem"))
        var stopped = Self.request
        stopped.leaveRunning = false
        #expect(!CRIUDumper().dumpArguments(stopped, version: nil).contains("--leave-running"))
    }

    @Test(
        "--unprivileged is passed to dump and check only from CRIU 3.18 on",
        arguments: [("3.17.1", false), ("3.19", true)]
    )
    func unprivileged(version: String, passed: Bool) throws {
        #expect(
            CRIUDumper(unprivileged: true).dumpArguments(Self.request, version: version).contains("--unprivileged")
                == passed
        )
        #expect(
            !CRIUDumper(unprivileged: false).dumpArguments(Self.request, version: "3.19").contains("--unprivileged")
        )
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let dumper = CRIUDumper(executable: try standInCRIU(in: directory, version: version), unprivileged: true)
            #expect(dumper.probe().isUsable)
            let request = DumpRequest(pid: 1234, imagesDirectory: images, step: 1, rank: 0)
            #expect(try dumper.dump(request) == .continued)
            let calls = try lines(directory + "/criu-calls.txt")
            let check = try #require(calls.first { $0.hasPrefix("check") })
            let dump = try #require(calls.first { $0.hasPrefix("dump") })
            #expect(check.contains("--unprivileged") == passed)
            #expect(dump.contains("--unprivileged") == passed)
        }
    }

    @Test("A dump against the stand-in runs `criu dump` and leaves its images")
    func dumpSucceeds() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let dumper = CRIUDumper(executable: try standInCRIU(in: directory), tcpEstablished: true)
            let request = DumpRequest(pid: 1234, imagesDirectory: images, step: 1, rank: 0)
            #expect(try dumper.dump(request) == .continued)
            #expect(exists(images + "/inventory.img"))
            #expect(
                try lines(directory + "/criu-calls.txt") == [
                    "dump -t 1234 -D \(images) -o dump.log --leave-running --shell-job --tcp-established --file-locks"
                ]
            )
        }
    }

    @Test("criu runs outside this process's tree of children, since it refuses to dump a tree it is in")
    func detached() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let request = DumpRequest(pid: getpid(), imagesDirectory: images, step: 1, rank: 0)
            #expect(try CRIUDumper(executable: try standInCRIU(in: directory)).dump(request) == .continued)
            let ancestors = try String(contentsOfFile: images + "/ancestors.txt", encoding: .utf8)
                .split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            #expect(ancestors.count >= 1)
            #expect(!ancestors.contains(getpid()), "criu ran as a descendant of the process it dumps")
            let status = try String(contentsOfFile: images + "/dump-status", encoding: .utf8)
            #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            #expect(!exists(images + "/.dump-gate"))
        }
    }

    @Test("A hanging criu is killed at the timeout, with what it started", .timeLimit(.minutes(1)))
    func dumpHangs() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let fifo = try openFIFO(directory + "/held")
            defer { close(fifo) }
            let criu = try standInCRIU(in: directory, dump: .hang(fifo: directory + "/held"))
            let ready = Locked(false)
            var request = DumpRequest(pid: getpid(), imagesDirectory: images, step: 1, rank: 0, timeout: 600)
            request.timer = timeUpWhenReady(fifo, ready)
            let error = try #require(throws: CheckpointError.self) { try CRIUDumper(executable: criu).dump(request) }
            #expect(error.code == .timedOut)
            #expect(ready.withLock { $0 }, "the stand-in criu wrote ready")
            #expect(awaitWritersGone(fifo), "the detached criu survived the timeout")
        }
    }

    @Test("A failed dump quotes the last lines of dump.log, not the program's stderr")
    func dumpFails() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let dumper = CRIUDumper(executable: try standInCRIU(in: directory, dump: .fail))
            let request = DumpRequest(pid: 1234, imagesDirectory: images, step: 1, rank: 0)
            let error = try #require(throws: CheckpointError.self) { try dumper.dump(request) }
            #expect(error.code == .ioFailure)
            #expect((error.underlying as? DumperExit)?.status == 1)
            #expect(error.path == images)
            #expect(error.message.contains("criu dump failed (exit 1)"))
            #expect(error.message.contains("The criu itself is within dumped tree."))
            #expect(error.message.contains("Dumping FAILED."))
            #expect(!error.message.contains("first-line-of-the-log"))
            #expect(!error.message.contains("stderr"))
        }
    }
}

@Suite("Process dumpers: DMTCPDumper")
struct ProcessDumperDMTCPTests {
    @Test("Usable when `dmtcp_command --status` reaches a coordinator")
    func probeUsable() throws {
        try withTemporaryDirectory { directory in
            let command = try standInDMTCP(in: directory)
            let probe = DMTCPDumper(command: command, extraArguments: ["--coord-port", "7779"]).probe()
            #expect(probe == DumperProbe(isUsable: true, version: "dmtcp_command (DMTCP) 3.0.0"))
            #expect(try lines(directory + "/dmtcp-calls.txt").last == "--coord-port 7779 --status")
        }
    }

    @Test("Not usable without a coordinator, or without dmtcp_command")
    func probeUnusable() throws {
        try withTemporaryDirectory { directory in
            let probe = DMTCPDumper(command: try standInDMTCP(in: directory, coordinator: false)).probe()
            #expect(!probe.isUsable)
            #expect(probe.reason?.contains("dmtcp_launch") == true)
            #expect(probe.reason?.contains("Coordinator not found") == true)
            let missing = DMTCPDumper(command: directory + "/no-dmtcp_command").probe()
            #expect(!missing.isUsable)
            #expect(missing.reason?.contains("not installed") == true)
        }
    }

    @Test("A dump runs `dmtcp_command --bcheckpoint` and notes where DMTCP put the images")
    func dump() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let dumper = DMTCPDumper(
                command: try standInDMTCP(in: directory),
                extraArguments: ["--coord-port", "7779"]
            )
            let request = DumpRequest(pid: 99, imagesDirectory: images, step: 12, rank: 3)
            #expect(try dumper.dump(request) == .continued)
            #expect(try lines(directory + "/dmtcp-calls.txt") == ["--coord-port 7779 --bcheckpoint"])
            let note = try String(contentsOfFile: images + "/dmtcp.txt", encoding: .utf8)
            #expect(note.contains("step 12, rank 3"))
        }
    }

    @Test("A failed --bcheckpoint is an error with the exit status")
    func dumpFails() throws {
        try withTemporaryDirectory { directory in
            let images = try makeImages(directory)
            let dumper = DMTCPDumper(command: try standInDMTCP(in: directory, checkpointFails: true))
            let request = DumpRequest(pid: 99, imagesDirectory: images, step: 1, rank: 0)
            let error = try #require(throws: CheckpointError.self) { try dumper.dump(request) }
            #expect((error.underlying as? DumperExit)?.status == 4)
            #expect(error.message.contains("checkpoint refused"))
            #expect(!exists(images + "/dmtcp.txt"))
        }
    }
}

// MARK: - Participant hooks

@Suite("Process dumpers: participant hooks")
struct ProcessDumperParticipantTests {
    static func participants(_ events: DumpEvents, refusing: String? = nil) -> DumpParticipants {
        let participants = DumpParticipants()
        for name in ["files", "socket", "device"] {
            participants.register(name, .logging(name, to: events, refuse: name == refusing))
        }
        return participants
    }

    @Test("willDump in registration order, didContinue in reverse")
    func order() throws {
        let events = DumpEvents()
        let participants = Self.participants(events)
        #expect(participants.names == ["files", "socket", "device"])
        let result = participants.around {
            events.append("dump")
            return .continued
        }
        #expect(result.outcome == .continued)
        #expect(result.cancelledBy == nil)
        #expect(
            events.all == [
                "willDump files", "willDump socket", "willDump device", "dump",
                "didContinue device", "didContinue socket", "didContinue files",
            ]
        )
    }

    @Test("A restored copy gets didRestore instead of didContinue")
    func restored() {
        let events = DumpEvents()
        let result = Self.participants(events).around { .restored }
        #expect(result.outcome == .restored)
        #expect(
            events.all == [
                "willDump files", "willDump socket", "willDump device",
                "didRestore device", "didRestore socket", "didRestore files",
            ]
        )
    }

    @Test("A throwing willDump cancels the dump; the participants already quiesced continue")
    func refusal() {
        let events = DumpEvents()
        let result = Self.participants(events, refusing: "socket").around {
            events.append("dump")
            return .continued
        }
        #expect(result.outcome == nil)
        #expect(result.cancelledBy?.contains("participant 'socket'") == true)
        #expect(result.cancelledBy?.contains("the socket is busy") == true)
        #expect(events.all == ["willDump files", "willDump socket", "didContinue files"])
    }

    @Test("A failing dump is rethrown after every participant continued")
    func failingDump() {
        let events = DumpEvents()
        let participants = Self.participants(events)
        #expect(throws: RefusedDump.self) {
            try participants.around { throw RefusedDump() }
        }
        #expect(
            events.all == [
                "willDump files", "willDump socket", "willDump device",
                "didContinue device", "didContinue socket", "didContinue files",
            ]
        )
    }

    @Test("Unregistering removes a participant")
    func unregister() {
        let events = DumpEvents()
        let participants = Self.participants(events)
        #expect(participants.unregister("socket"))
        #expect(!participants.unregister("socket"))
        _ = participants.around { .continued }
        #expect(
            events.all == ["willDump files", "willDump device", "didContinue device", "didContinue files"]
        )
    }
}

// MARK: - Integration with the checkpointer

@Suite("Process dumpers: after committed checkpoints")
struct ProcessDumperCheckpointerTests {
    static func configuration(
        _ dumper: any ProcessDumper,
        every: Int = 1,
        onFailure: ProcessDumps.FailureBehavior = .report,
        timeout: Double = 60,
        keepLast: Int = 10
    ) -> Checkpointer.Configuration {
        var configuration = testConfiguration(keepLast: keepLast, threads: 1)
        configuration.processDumps = ProcessDumps(
            dumper: dumper,
            everyNthCheckpoint: every,
            onFailure: onFailure,
            timeout: timeout
        )
        return configuration
    }

    /// The stand-in dumper that records `{dir} {step} {rank} {pid} {prev}`.
    static func recording(_ directory: String, extraOutput: String = "") throws -> CommandDumper {
        let script = try recordingDumper(in: directory, extraOutput: extraOutput)
        return CommandDumper(arguments: [script, "{dir}", "{step}", "{rank}", "{pid}", "{prev}"])
    }

    /// `withTemporaryDirectory` with separate folders for the stand-ins and the checkpoints.
    static func withFolders<R>(_ body: (_ bin: String, _ checkpoints: String) throws -> R) throws -> R {
        try withTemporaryDirectory { directory in
            let bin = try makeImages(directory, "bin")
            return try body(bin, directory + "/checkpoints")
        }
    }

    static func record(_ checkpoints: String, step: Step) throws -> DumpRecord? {
        let dumps = try CheckpointDirectory(path: checkpoints).loadManifest(step: step).dumps
        #expect((dumps?.count ?? 1) == 1)
        return dumps?.first
    }

    @Test("Dumps after every 2nd checkpoint, into the checkpoint's folder, recorded beside the manifest")
    func everySecondCheckpoint() throws {
        try Self.withFolders { bin, checkpoints in
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(try Self.recording(bin), every: 2)
            )
            for step in 1...4 { try checkpointer.save(ArrayState([Double(step)]), step: Step(step)) }
            let directory = CheckpointDirectory(path: checkpoints)
            #expect(try directory.loadManifest(step: 1).dumps == nil)
            #expect(try directory.loadManifest(step: 3).dumps == nil)
            #expect(!exists(directory.path(for: 1) + "/images"))
            #expect(!exists(directory.path(for: 3) + "/images"))
            for step: Step in [2, 4] {
                let record = try #require(try Self.record(checkpoints, step: step))
                #expect(record.rank == 0)
                #expect(record.status == "ok")
                #expect(record.dumper == "command")
                #expect(record.imagesDirectory == "images/rank-00000")
                #expect(record.exitStatus == 0)
                #expect(record.message == nil)
                #expect(record.seconds >= 0)
                let images = directory.path(for: step) + "/" + record.imagesDirectory
                #expect(exists(images + "/pages-1.img"))
                // The dump-record files and images do not disturb the checkpoint itself.
                try directory.verify(step: step)
            }
            // The second dump was told where the first one's images are (for incremental dumps).
            let first = directory.path(for: 2) + "/images/rank-00000"
            let second = directory.path(for: 4) + "/images/rank-00000"
            #expect(try lines(first + "/arguments.txt") == [first, "2", "0", "\(getpid())", ""])
            #expect(try lines(second + "/arguments.txt") == [second, "4", "0", "\(getpid())", first])
            let restored = try #require(try checkpointer.restoreLatest(ArrayState<Double>.self))
            #expect(restored.step == 4)
            #expect(restored.state == ArrayState([4.0]))
        }
    }

    @Test("Retention removes an old checkpoint's images with it")
    func retention() throws {
        try Self.withFolders { bin, checkpoints in
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(try Self.recording(bin), every: 2, keepLast: 1)
            )
            for step in 1...4 { try checkpointer.save(ArrayState([Double(step)]), step: Step(step)) }
            let directory = CheckpointDirectory(path: checkpoints)
            #expect(try directory.committedSteps() == [4])
            #expect(!exists(directory.path(for: 2)))
            let images = directory.path(for: 4) + "/images/rank-00000"
            #expect(exists(images + "/pages-1.img"))
            // The previous images went with their checkpoint, so this dump is a full one.
            #expect(try lines(images + "/arguments.txt").last == "")
            #expect(try Self.record(checkpoints, step: 4)?.status == "ok")
        }
    }

    @Test("A failing dumper with .report: the checkpoint is committed and restorable; the record says failed")
    func failureReported() throws {
        try Self.withFolders { bin, checkpoints in
            let script = try writeScript("fail", in: bin, "echo 'images disk is full'\nexit 3")
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(CommandDumper(arguments: [script, "{dir}"]))
            )
            let manifest = try checkpointer.save(ArrayState([1.0, 2.0]), step: 1)
            #expect(manifest.step == 1)
            let directory = CheckpointDirectory(path: checkpoints)
            #expect(try directory.committedSteps() == [1])
            try directory.verify(step: 1)
            let record = try #require(try Self.record(checkpoints, step: 1))
            #expect(record.status == "failed")
            #expect(record.exitStatus == 3)
            #expect(record.message?.contains("images disk is full") == true)
            let restored = try #require(try checkpointer.restoreLatest(ArrayState<Double>.self))
            #expect(restored.state == ArrayState([1.0, 2.0]))
        }
    }

    @Test("A failing dumper with .throw: the save throws, but the checkpoint is committed")
    func failureThrown() throws {
        try Self.withFolders { bin, checkpoints in
            let script = try writeScript("fail", in: bin, "exit 3")
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(CommandDumper(arguments: [script]), onFailure: .throw)
            )
            let error = try #require(throws: CheckpointError.self) {
                try checkpointer.save(ArrayState([5.0]), step: 1)
            }
            #expect((error.underlying as? DumperExit)?.status == 3)
            #expect(try CheckpointDirectory(path: checkpoints).committedSteps() == [1])
            #expect(try Self.record(checkpoints, step: 1)?.status == "failed")
            let restored = try #require(try checkpointer.restoreLatest(ArrayState<Double>.self))
            #expect(restored.step == 1)
            #expect(restored.state == ArrayState([5.0]))
        }
    }

    @Test("A dump that times out is recorded as failed, without an exit status", .timeLimit(.minutes(1)))
    func timeout() throws {
        try Self.withFolders { bin, checkpoints in
            let script = try writeScript("hang", in: bin, "exec sleep 30")
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(CommandDumper(arguments: [script]), timeout: 0.5)
            )
            try checkpointer.save(ArrayState([1.0]), step: 1)
            let record = try #require(try Self.record(checkpoints, step: 1))
            #expect(record.status == "failed")
            #expect(record.exitStatus == nil)
            #expect(record.message?.contains("timedOut") == true)
        }
    }

    @Test("An unusable dumper is recorded as unavailable (and thrown as invalidConfiguration with .throw)")
    func unavailable() throws {
        try Self.withFolders { bin, checkpoints in
            let missing = CommandDumper(arguments: [bin + "/no-such-dumper"])
            do {
                let checkpointer = try Checkpointer(directory: checkpoints, configuration: Self.configuration(missing))
                try checkpointer.save(ArrayState([1.0]), step: 1)
            }
            let record = try #require(try Self.record(checkpoints, step: 1))
            #expect(record.status == "unavailable")
            #expect(record.exitStatus == nil)
            #expect(record.message?.contains("not found") == true)
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(missing, onFailure: .throw)
            )
            let error = try #require(throws: CheckpointError.self) {
                try checkpointer.save(ArrayState([2.0]), step: 2)
            }
            #expect(error.code == .invalidConfiguration)
            #expect(try CheckpointDirectory(path: checkpoints).committedSteps() == [1, 2])
        }
    }

    @Test("A participant that refuses cancels the dump: the dumper does not run; the record says cancelled")
    func cancelled() throws {
        try Self.withFolders { bin, checkpoints in
            let events = DumpEvents()
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                configuration: Self.configuration(try Self.recording(bin))
            )
            checkpointer.dumpParticipants.register("files", .logging("files", to: events))
            checkpointer.dumpParticipants.register("socket", .logging("socket", to: events, refuse: true))
            try checkpointer.save(ArrayState([1.0]), step: 1)
            #expect(events.all == ["willDump files", "willDump socket", "didContinue files"])
            let record = try #require(try Self.record(checkpoints, step: 1))
            #expect(record.status == "cancelled")
            #expect(record.message?.contains("participant 'socket'") == true)
            #expect(record.exitStatus == nil)
            let images = CheckpointDirectory(path: checkpoints).path(for: 1) + "/images/rank-00000"
            #expect(!exists(images + "/arguments.txt"))
        }
    }

    @Test("Participants around a dump through the checkpointer; didRestore when the dumper says restored")
    func participantsThroughCheckpointer() throws {
        try Self.withFolders { bin, checkpoints in
            let events = DumpEvents()
            let restoring = try Self.recording(bin, extraOutput: "echo 'outcome: restored'")
            let checkpointer = try Checkpointer(directory: checkpoints, configuration: Self.configuration(restoring))
            checkpointer.dumpParticipants.register("socket", .logging("socket", to: events))
            try checkpointer.save(ArrayState([1.0]), step: 1)
            #expect(events.all == ["willDump socket", "didRestore socket"])
            #expect(try Self.record(checkpoints, step: 1)?.status == "ok")
        }
    }

    @Test("Every rank dumps at the same steps; the manifest has one record per rank")
    func ranks() throws {
        try Self.withFolders { bin, checkpoints in
            let dumper = try Self.recording(bin)
            _ = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: checkpoints,
                    communicator: communicator,
                    configuration: Self.configuration(dumper, every: 2)
                )
                for step in 1...4 {
                    try checkpointer.save(RankState(rank: communicator.rank, seed: UInt64(step)), step: Step(step))
                }
            }
            let directory = CheckpointDirectory(path: checkpoints)
            #expect(try directory.loadManifest(step: 1).dumps == nil)
            #expect(try directory.loadManifest(step: 3).dumps == nil)
            for step: Step in [2, 4] {
                let dumps = try #require(try directory.loadManifest(step: step).dumps)
                #expect(dumps.map(\.rank) == [0, 1, 2])
                #expect(
                    dumps.map(\.imagesDirectory) == ["images/rank-00000", "images/rank-00001", "images/rank-00002"]
                )
                #expect(dumps.allSatisfy { $0.status == "ok" && $0.exitStatus == 0 })
                for dump in dumps {
                    let arguments = try lines(directory.path(for: step) + "/" + dump.imagesDirectory + "/arguments.txt")
                    #expect(arguments[1] == "\(step)")
                    #expect(arguments[2] == "\(dump.rank)")
                }
                try directory.verify(step: step)
            }
        }
    }

    @Test("Ranks that share a process dump it once when one dump captures the whole process")
    func ranksSharingAProcess() throws {
        try Self.withFolders { bin, checkpoints in
            var recording = try Self.recording(bin)
            recording.oncePerProcess = true
            let dumper = recording
            _ = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: checkpoints,
                    communicator: communicator,
                    configuration: Self.configuration(dumper, every: 1)
                )
                try checkpointer.save(RankState(rank: communicator.rank, seed: 1), step: 1)
            }
            let dumps = try #require(try CheckpointDirectory(path: checkpoints).loadManifest(step: 1).dumps)
            #expect(dumps.map(\.rank) == [0])
            #expect(
                CRIUDumper().oncePerProcess && DMTCPDumper().oncePerProcess
                    && !CommandDumper(arguments: ["x"]).oncePerProcess
            )
        }
    }

    @Test("Asynchronous mode: the dump runs on the application's thread at the next safe point or at finish()")
    func asynchronous() throws {
        try Self.withFolders { bin, checkpoints in
            var configuration = Self.configuration(try Self.recording(bin))
            configuration.mode = .asynchronous()
            let checkpointer = try Checkpointer(directory: checkpoints, configuration: configuration)
            let application = pthread_self()
            let threads = DumpEvents()
            checkpointer.dumpParticipants.register(
                "thread",
                DumpParticipants.Hooks(willDump: {
                    threads.append(pthread_equal(pthread_self(), application) != 0 ? "application" : "other")
                })
            )
            let directory = CheckpointDirectory(path: checkpoints)
            #expect(try checkpointer.checkpoint(ArrayState([1.0]), step: 1) == nil)
            // Wait for the background commit itself: the dump is left for the application's thread.
            #expect(checkpointer.background?.waitUntilIdle() == nil)
            #expect(try directory.committedSteps() == [1])
            #expect(try directory.loadManifest(step: 1).dumps == nil)
            #expect(try checkpointer.checkpoint(ArrayState([2.0]), step: 2) == nil)
            #expect(try Self.record(checkpoints, step: 1)?.status == "ok")
            try checkpointer.finish()
            #expect(try directory.committedSteps() == [1, 2])
            #expect(try Self.record(checkpoints, step: 2)?.status == "ok")
            #expect(threads.all == ["application", "application"])
        }
    }

    @Test("Invalid dump settings are rejected when the checkpointer is created")
    func validation() throws {
        try withTemporaryDirectory { directory in
            let dumper = CommandDumper(arguments: ["true"])
            for dumps in [
                ProcessDumps(dumper: dumper, everyNthCheckpoint: 0),
                ProcessDumps(dumper: dumper, timeout: 0),
            ] {
                var configuration = testConfiguration()
                configuration.processDumps = dumps
                let error = try #require(throws: CheckpointError.self) {
                    try Checkpointer(directory: directory, configuration: configuration)
                }
                #expect(error.code == .invalidConfiguration)
            }
        }
    }
}

// MARK: - The real CRIU

/// Whether this machine's CRIU can dump (probed once; the reason is printed when it cannot).
private let realCRIU: DumperProbe = {
    let probe = CRIUDumper().probe()
    if !probe.isUsable {
        print("skipped: the real CRIU test: \(probe.reason ?? "criu is not usable here")")
    }
    return probe
}()

@Suite("Process dumpers: the real CRIU")
struct ProcessDumperRealCRIUTests {
    @Test(
        "criu dumps a child process and `criu restore` brings it back",
        .enabled(if: realCRIU.isUsable, "needs a CRIU whose `criu check` passes (and root or CAP_CHECKPOINT_RESTORE)"),
        .timeLimit(.minutes(2))
    )
    func dumpAndRestore() throws {
        try withTemporaryDirectory { directory in
            // Not through Foundation's Process: its child inherits a socket whose other end is in this
            // process, and criu refuses to dump it ("unix: External socket is used").
            let sleeper = try Syscalls.spawnInNewSession("/bin/sleep", arguments: ["sleep", "60"])
            var reaped = false
            defer {
                if !reaped {
                    kill(sleeper, SIGKILL)
                    _ = try? Syscalls.waitForExit(of: sleeper)
                }
            }
            let images = try makeImages(directory)
            let request = DumpRequest(
                pid: sleeper,
                imagesDirectory: images,
                step: 1,
                rank: 0,
                timeout: 60
            )
            #expect(try CRIUDumper().dump(request) == .continued)
            #expect(exists(images + "/inventory.img"))
            // The restored process gets the original pid back, so the original must be gone.
            kill(sleeper, SIGKILL)
            _ = try Syscalls.waitForExit(of: sleeper)
            reaped = true
            let pidFile = directory + "/restored.pid"
            let restore = try ExternalProcess.run(
                ["criu", "restore", "-D", images, "-d", "--shell-job", "-o", "restore.log", "--pidfile", pidFile],
                timeout: 60
            )
            let log = (try? String(contentsOfFile: images + "/restore.log", encoding: .utf8)) ?? restore.output
            try #require(restore.status == 0, "criu restore failed: \(log.lastLines(5))")
            let text = try String(contentsOfFile: pidFile, encoding: .utf8)
            let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
            defer { kill(pid, SIGKILL) }
            #expect(kill(pid, 0) == 0, "the restored process \(pid) is not running")
        }
    }
}
