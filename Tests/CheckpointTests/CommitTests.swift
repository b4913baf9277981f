import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

@Suite("Commit protocol, retention and storage errors")
struct CommitTests {
    @Test(
        "A crash between any two steps of a commit never loses the newest committed checkpoint",
        arguments: CrashPoint.commitPointsOfTheSharedStore
    )
    func crashDuringCommit(point: CrashPoint) throws {
        try withTemporaryDirectory { directory in
            let first = ArrayState(smoothField(2000, seed: 1))
            let second = ArrayState(smoothField(2000, seed: 2))
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
                try checkpointer.save(first, step: 1)
                checkpointer.injectCrash(at: point)
                #expect(throws: CheckpointError.self) { try checkpointer.save(second, step: 2) }
            }
            // "Restart": a new checkpointer cleans up and restores whatever is committed.
            let restarted = try Checkpointer(directory: directory, configuration: testConfiguration())
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(!names.contains { $0.hasSuffix(".tmp") }, "stale temporaries removed: \(names)")
            let restored = try #require(try restarted.restoreLatest(ArrayState<Double>.self))
            if point.leavesCheckpointCommitted {
                #expect(restored.step == 2)
                #expect(restored.state == second)
            } else {
                #expect(restored.step == 1)
                #expect(restored.state == first)
            }
        }
    }

    @Test("The manifest records how long rank 0 took to build it; every rank gets the same manifest")
    func manifestTimings() throws {
        try withTemporaryDirectory { directory in
            let manifests = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration()
                )
                return try checkpointer.save(ArrayState(smoothField(100, seed: UInt64(communicator.rank))), step: 1)
            }
            let seconds = try #require(manifests[0].timings.manifestSeconds)
            #expect(seconds >= 0 && seconds < 60)
            #expect(manifests.allSatisfy { $0 == manifests[0] })
            // On disk too (where `commitSeconds` is 0: the file is written before the commit ends).
            #expect(try Checkpointer(directory: directory).checkpoints().first?.timings.manifestSeconds == seconds)
        }
    }

    @Test("Saving a step that exists replaces it atomically")
    func replaceSameStep() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            try checkpointer.save(ArrayState([1.0, 2.0]), step: 5)
            try checkpointer.save(ArrayState([3.0]), step: 5)
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state.values == [3.0])
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [5])
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names.sorted() == [".lock", "ckpt-000000000005"])
        }
    }

    @Test("Retention keeps the newest K and every Nth step forever")
    func retention() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(keepLast: 2)
            configuration.retention.keepEvery = 4
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            for step in 1...10 { try checkpointer.save(ArrayState([Double(step)]), step: Step(step)) }
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [4, 8, 9, 10])
        }
        let rule = Checkpointer.Configuration.Retention(keepLast: 3)
        #expect(rule.stepsToDelete(from: [1, 2, 3, 4, 5]) == [2, 1])
        #expect(rule.stepsToDelete(from: [1]) == [])
    }

    @Test("Files and directories are created owner-only by default")
    func permissions() throws {
        try withTemporaryDirectory { directory in
            let target = directory + "/nested/ckpt"
            try Checkpointer(directory: target, configuration: testConfiguration()).save(ArrayState([1.0]), step: 1)
            let attributes = try FileManager.default.attributesOfItem(atPath: shardPath(target, step: 1))
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let dirAttributes = try FileManager.default.attributesOfItem(
                atPath: CheckpointDirectory(path: target).path(for: 1)
            )
            #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
            var open = testConfiguration()
            open.filePermissions = 0o644
            try withTemporaryDirectory { other in
                try Checkpointer(directory: other, configuration: open).save(ArrayState([1.0]), step: 1)
                let mode = try FileManager.default.attributesOfItem(atPath: shardPath(other, step: 1))[
                    .posixPermissions
                ]
                #expect((mode as? Int) == 0o644)
            }
        }
    }

    @Test("Two checkpointers cannot share a directory")
    func lock() throws {
        try withTemporaryDirectory { directory in
            let first = try Checkpointer(directory: directory)
            let error = try #require(throws: CheckpointError.self) { try Checkpointer(directory: directory) }
            #expect(error.message.contains("another checkpointer"))
            _ = first
        }
    }

    @Test("Missing directory without createDirectory, and a file in its place")
    func missingDirectory() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.createDirectory = false
            let missing = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory + "/absent", configuration: configuration)
            }
            #expect(missing.code == .notFound)
            try writeFile(directory + "/file", [1])
            #expect(throws: CheckpointError.self) { try Checkpointer(directory: directory + "/file") }
            let listing = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory + "/absent").committedSteps()
            }
            #expect(listing.code == .notFound)
            #expect(try Checkpointer(directory: directory + "/empty").restoreLatest(ArrayState<Double>.self) == nil)
        }
    }

    @Test("System errors map to codes that say what to do")
    func errnoMapping() {
        #expect(CheckpointError.system("write", errno: ENOSPC, path: "/x").code == .diskFull)
        #expect(CheckpointError.system("write", errno: EDQUOT, path: "/x").code == .diskFull)
        #expect(CheckpointError.system("open", errno: EACCES, path: "/x").code == .permissionDenied)
        #expect(CheckpointError.system("open", errno: ENOENT, path: "/x").code == .notFound)
        #expect(CheckpointError.system("fsync", errno: EIO, path: "/x").code == .ioFailure)
        #expect(CheckpointError.system("write", errno: ENOSPC, path: "/x").message.contains("free space"))
    }

    @Test("Writing to a full device is a diskFull error")
    func deviceFull() throws {
        // /dev/full accepts opens but every write fails with ENOSPC.
        let writer = try openForWriting("/dev/full")
        let error = try #require(throws: CheckpointError.self) {
            try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try writer.writeAll($0) }
        }
        #expect(error.code == .diskFull)
    }

    @Test("A full file system mid-checkpoint: clear error, previous checkpoint intact, no leftovers")
    func fileSystemFull() throws {
        guard getuid() == 0 else { try toolUnavailable("mounting a small tmpfs needs root") }
        try withTemporaryDirectory { directory in
            guard mountTmpfs(directory, size: "2m") else { try toolUnavailable("mount -t tmpfs is not permitted here") }
            defer { unmount(directory) }
            var configuration = testConfiguration(compression: .none)
            configuration.threads = 1
            let small = ArrayState(smoothField(1000))
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            try checkpointer.save(small, step: 1)
            let error = try #require(throws: CheckpointError.self) {
                try checkpointer.save(ArrayState(smoothField(1_000_000)), step: 2)
            }
            #expect(error.code == .diskFull, "\(error)")
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names.sorted() == [".lock", "ckpt-000000000001"])
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state == small)
        }
    }

    @Test("A directory the process may not write: permissionDenied, nothing changed")
    func permissionDenied() throws {
        try withTemporaryDirectory { directory in
            let target = directory + "/locked"
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
            if getuid() == 0 {
                // Root ignores permission bits; a read-only mount refuses it all the same (EROFS).
                guard run("/bin/mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", target]) else {
                    try toolUnavailable("mount -t tmpfs is not permitted here")
                }
            } else {
                try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: target)
            }
            defer {
                if getuid() == 0 { unmount(target) }
                try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: target)
            }
            let error = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: target, configuration: testConfiguration())
            }
            #expect(error.code == .permissionDenied, "\(error)")
            #expect(error.message.contains("permissions"))
            let nested = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: target + "/sub", configuration: testConfiguration())
            }
            #expect(nested.code == .permissionDenied, "\(nested)")
        }
    }

    @Test("Invalid configuration is refused with a message")
    func invalidConfiguration() throws {
        try withTemporaryDirectory { directory in
            for configuration in [
                Checkpointer.Configuration(threads: 0), Checkpointer.Configuration(chunkSize: 10),
                Checkpointer.Configuration(compression: .zstd(level: 99)),
                Checkpointer.Configuration(retention: .init(keepLast: 0)),
                Checkpointer.Configuration(filePermissions: 0o400),
                Checkpointer.Configuration(retention: .init(keepLast: 2, keepEvery: 0)),
                Checkpointer.Configuration(metadata: ["": "empty key"]),
                Checkpointer.Configuration(mode: .asynchronous(stagingLimit: -1)),
                Checkpointer.Configuration(stopSignals: StopSignals(signals: [SIGKILL])),
                Checkpointer.Configuration(stopSignals: StopSignals(gracePeriod: 0)),
                Checkpointer.Configuration(
                    processDumps: ProcessDumps(dumper: CommandDumper(arguments: ["true"]), everyNthCheckpoint: 0)
                ),
                Checkpointer.Configuration(
                    processDumps: ProcessDumps(dumper: CommandDumper(arguments: ["true"]), timeout: 0)
                ),
            ] {
                let error = try #require(throws: CheckpointError.self) {
                    try Checkpointer(directory: directory, configuration: configuration)
                }
                #expect(error.code == .invalidConfiguration)
            }
        }
    }
}

private func openForWriting(_ path: String) throws -> OpenFile {
    // `createExclusive` refuses existing paths; reach /dev/full through a fresh descriptor.
    try OpenFile.openForWritingForTests(path)
}

/// Mounts a small tmpfs owner-only (a tmpfs root is `1777` by default, which the checkpointer
/// refuses as a directory every user can write).
private func mountTmpfs(_ path: String, size: String) -> Bool {
    run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path])
}

private func unmount(_ path: String) { _ = run("/bin/umount", [path]) }

private func run(_ executable: String, _ arguments: [String]) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    } catch { return false }
}
