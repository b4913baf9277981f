import Foundation
import Testing

@testable import Checkpoint

@Suite("System call wrappers")
struct SyscallsTests {
    @Test("fileSize reports a file's size and a missing file as notFound")
    func fileSize() throws {
        try withTemporaryDirectory { directory in
            try writeFile(directory + "/data", [1, 2, 3, 4, 5])
            #expect(try Syscalls.fileSize(directory + "/data") == 5)
            let error = #expect(throws: CheckpointError.self) { try Syscalls.fileSize(directory + "/missing") }
            #expect(error?.code == .notFound)
            #expect(error?.path == directory + "/missing")
            #expect((error?.underlying as? SystemError)?.errno == ENOENT)
        }
    }

    @Test(
        "canHandleSignal admits catchable signals only",
        arguments: [
            (SIGTERM, true), (SIGUSR1, true), (SIGUSR2, true), (SIGINT, true),
            (SIGKILL, false), (SIGSTOP, false), (0, false), (-1, false), (65, false),
        ]
    )
    func canHandleSignal(signal: Int32, handled: Bool) {
        #expect(Syscalls.canHandleSignal(signal) == handled)
    }

    @Test("installSignalHandler refuses a signal that cannot be caught")
    func installRefused() {
        #expect(throws: CheckpointError.self) {
            try Syscalls.installSignalHandler(SIGKILL) { _ in }
        }
    }

    @Test("A spawned program leads its own process group, holds only /dev/null on 0, 1 and 2, and is waited for")
    func spawnAndWait() throws {
        // A descriptor this process would let a child inherit (no O_CLOEXEC): the child must not have it.
        let inheritable = open("/dev/null", O_RDONLY)
        try #require(inheritable > 2)
        defer { close(inheritable) }
        // The shell reports what it finds by its exit status: 3 when everything holds.
        let script = """
            set -- $(cat /proc/$$/stat)
            [ "$5" = "$$" ] || exit 10
            [ ! -e /proc/$$/fd/\(inheritable) ] || exit 11
            for descriptor in 0 1 2; do
                [ "$(readlink /proc/$$/fd/$descriptor)" = /dev/null ] || exit 12
            done
            exit 3
            """
        let pid = try Syscalls.spawnInNewSession("/bin/sh", arguments: ["/bin/sh", "-c", script])
        let status = try Syscalls.waitForExit(of: pid)
        #expect(
            (status >> 8) & 0xff == 3,
            "wait status \(status) (10: not a group leader, 11: inherited a descriptor, 12: not /dev/null)"
        )
        // Waited for once: a second wait has no child to wait for.
        #expect(throws: CheckpointError.self) { try Syscalls.waitForExit(of: pid) }
    }

    @Test("Spawning a program that does not exist throws notFound naming it")
    func spawnMissing() {
        let error = #expect(throws: CheckpointError.self) {
            try Syscalls.spawnInNewSession("/nonexistent/program", arguments: ["program"])
        }
        #expect(error?.code == .notFound)
        #expect(error?.path == "/nonexistent/program")
    }
}
