#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Processes: starting a program cut off from this process, waiting for it, killing its process
// group, and pausing a polling loop.

/// glibc's `POSIX_SPAWN_SETSID` (2.26 on), which `spawn.h` declares only under `_GNU_SOURCE`.
private let posixSpawnSetSID: Int32 = 0x80

extension Syscalls {
    /// Starts a program as the leader of a new session (and so of a new process group), holding
    /// nothing of this process:
    /// `/dev/null` on descriptors 0, 1 and 2 and no other descriptor, no signal blocked and every
    /// signal at its default action. The environment is this process's.
    ///
    /// Every descriptor above 2 that this process has open is closed in the child (glibc ignores
    /// the ones that were closed meanwhile), so a child that outlives its parent's interest in it
    /// holds no pipe, socket or lock of this process.
    /// - Parameters:
    ///   - executable: The program's path (not looked up in `PATH`).
    ///   - arguments: Its arguments, `argv[0]` first.
    /// A session of its own also makes it dumpable by CRIU wherever this process runs: CRIU refuses a
    /// process whose session leader is outside its PID namespace (a job started by `unshare --pid`).
    /// - Returns: The process id, which is also the new session's and group's id.
    /// - Throws: The `posix_spawn` failure as a ``CheckpointError`` naming `executable`.
    static func spawnInNewSession(_ executable: String, arguments: [String]) throws(CheckpointError) -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(
            &attributes,
            Int16(posixSpawnSetSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        )
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let open = (try? listDirectory("/proc/self/fd")) ?? []
        for descriptor in open.compactMap({ Int32($0) }) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw .system("posix_spawn", errno: result, path: executable) }
        return pid
    }

    /// Waits until the child process `pid` ends; a signal that interrupts the wait does not end it.
    /// - Parameter pid: A child of this process.
    /// - Returns: Its wait status, as `waitpid` encodes it.
    /// - Throws: The `waitpid` failure as a ``CheckpointError`` (`ECHILD`: `pid` is not a child of
    ///   this process, or was already waited for).
    @discardableResult
    static func waitForExit(of pid: Int32) throws(CheckpointError) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            let number = errno
            if number == EINTR { continue }
            throw .system("waitpid (process \(pid))", errno: number, path: nil)
        }
        return status
    }

    /// Kills (`SIGKILL`) every process of the process group `group`; when no such group exists,
    /// the process whose id is `group`. A process that has already ended is not an error: there
    /// is nothing left to kill.
    static func killProcessGroup(_ group: Int32) {
        if kill(-group, SIGKILL) != 0 { _ = kill(group, SIGKILL) }
    }

    /// Suspends the calling thread for about `microseconds` (less when a signal arrives): the pace
    /// of a polling loop.
    static func sleep(microseconds: UInt32) {
        _ = usleep(microseconds)
    }
}
