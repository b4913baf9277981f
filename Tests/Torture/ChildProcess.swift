import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program the harness started in a session of its own, so that it and everything it starts
/// (mpirun's ranks live in process groups of their own, but stay in its session) can be killed
/// together, the way a node failure ends them.
final class ChildProcess {
    /// How a run ended.
    enum Ending: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .signalled(let signal): "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
            }
        }
    }

    let pid: pid_t
    let arguments: [String]
    let outputPath: String
    let errorPath: String
    let started = ContinuousClock.now
    private(set) var ending: Ending?
    /// When the first byte of standard output appeared, as far as ``poll()`` saw it.
    private(set) var firstOutput: Duration?

    /// Starts `arguments[0]` (a path) with the rest as its arguments, writing its standard output and
    /// error to the two files (created or truncated) and reading standard input from /dev/null.
    init(_ arguments: [String], output: String, error: String) throws {
        precondition(!arguments.isEmpty, "a program to run")
        self.arguments = arguments
        outputPath = output
        errorPath = error
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, error, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // A new session (POSIX_SPAWN_SETSID), so that every process the child starts can be found again.
        posix_spawnattr_setflags(&attributes, Int16(0x80))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], &actions, &attributes, &argv, environ)
        guard status == 0 else {
            throw HarnessError("could not start \(arguments[0]): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    /// Starts a program and waits for it to end (or kills it after `timeout`).
    static func run(_ arguments: [String], in directory: String, name: String, timeout: Duration) throws -> Run {
        let child = try ChildProcess(
            arguments,
            output: directory + "/" + name + ".out",
            error: directory + "/" + name + ".err"
        )
        let hung = !child.wait(until: .now + timeout)
        if hung { child.killSession() }
        return Run(ending: child.waitForEnd(), hung: hung, output: child.output, error: child.errorOutput)
    }

    /// The outcome of ``run(_:in:name:timeout:)``.
    struct Run {
        var ending: Ending
        var hung: Bool
        var output: String
        var error: String

        var lines: [String] { output.split(separator: "\n").map(String.init) }
        var succeeded: Bool { ending == .exited(0) && !hung }
        /// The last few lines of standard error, for reports.
        var errorTail: String { error.split(separator: "\n").suffix(3).joined(separator: " | ") }
    }

    /// Checks (without blocking) whether the child ended; records when output first appeared.
    @discardableResult
    func poll() -> Bool {
        if ending != nil { return true }
        if firstOutput == nil, let size = try? FileManager.default.attributesOfItem(atPath: outputPath)[.size] as? Int,
            size > 0
        {
            firstOutput = ContinuousClock.now - started
        }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            ending = Self.decode(status)
            return true
        }
        return false
    }

    /// Polls until the child ended (`true`) or the deadline passed (`false`).
    func wait(until deadline: ContinuousClock.Instant) -> Bool {
        while !poll() {
            if ContinuousClock.now >= deadline { return false }
            usleep(500)
        }
        return true
    }

    /// Blocks until the child ended and returns how.
    func waitForEnd() -> Ending {
        if let ending { return ending }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let ending = Self.decode(status)
        self.ending = ending
        return ending
    }

    /// SIGKILLs the child and every process of its session, repeatedly until none is left (a
    /// launcher may be starting processes while it dies).
    func killSession() {
        for _ in 0..<50 {
            let members = ProcessTable.session(pid).filter { $0 != getpid() }
            if members.isEmpty { return }
            for member in members { kill(member, SIGKILL) }
            usleep(2_000)
        }
    }

    /// What the child wrote to standard output so far.
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    /// What the child wrote to standard error so far.
    var errorOutput: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    private static func decode(_ status: Int32) -> Ending {
        // WIFEXITED / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }
}

/// Looks processes up in /proc.
enum ProcessTable {
    /// The processes (not yet reaped zombies excluded) whose session is `session`.
    static func session(_ session: pid_t) -> [pid_t] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name),
                let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // After "pid (comm)": state, ppid, pgrp, session, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, fields[0] != "Z", pid_t(fields[3]) == session else { return nil }
            return pid
        }
    }
}

/// A failure of the harness itself (not of the library under test).
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
