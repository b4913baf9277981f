import Foundation
import Synchronization
import Testing

@_spi(Testing) @testable import Checkpoint

@Suite("Removal walks by descriptor and never leaves the tree")
struct RemovalTests {
    /// A victim folder outside the checkpoint directory, with `count` files.
    private func makeVictim(_ path: String, count: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for index in 0..<count { try writeFile(path + "/precious-\(index)", [UInt8(index & 0xff)]) }
    }

    private func victimFiles(_ path: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).count
    }

    /// A stale temporary directory as a crashed run leaves it: files and a subfolder.
    private func plant(_ path: String) {
        guard mkdir(path, 0o700) == 0 else { return }
        for index in 0..<20 { try? writeFile(path + "/rank-\(index).snap", [1, 2, 3]) }
        if mkdir(path + "/old", 0o700) == 0 {
            for index in 0..<20 { try? writeFile(path + "/old/precious-\(index)", [4]) }
        }
    }

    @Test(
        "Start-up cleanup deletes nothing outside the directory while a planted temporary directory is swapped with a link",
        .timeLimit(.minutes(1))
    )
    func swappedTemporaryDirectory() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            let victim = root + "/victim"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // The names the victim's files share with the planted tree (`old/precious-N`) make a
            // swap in the middle of a walk hit them too.
            try makeVictim(victim, count: 100)
            let planted = directory + "/.ckpt-000000000001.1.a.tmp"
            let bait = directory + "/bait"
            plant(planted)
            #expect(symlink(victim, bait) == 0)
            // Faults are process-wide: taking the turn keeps another test's from failing these calls.
            try withStorageFaults {
                let stop = Atomic<Bool>(false)
                let finished = DispatchSemaphore(value: 0)
                let swaps = Atomic<Int>(0)
                let attacker = Thread {
                    defer { finished.signal() }
                    var info = stat()
                    while !stop.load(ordering: .relaxed) {
                        // Whatever the cleanup removed, put it back: the link where the link was
                        // removed, a planted tree where the tree was.
                        if lstat(planted, &info) != 0 {
                            if lstat(bait, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
                                plant(planted)
                            } else {
                                _ = symlink(victim, planted)
                            }
                        }
                        if lstat(bait, &info) != 0 { _ = symlink(victim, bait) }
                        if (try? Syscalls.exchange(planted, bait)) == true { swaps.add(1, ordering: .relaxed) }
                    }
                }
                attacker.start()
                let store = RenamingStore(
                    directory: CheckpointDirectory(path: directory),
                    permissions: StorePermissions(file: 0o600, directory: 0o700)
                )
                let clock = ContinuousClock()
                let end = clock.now + .seconds(3)
                var attempts = 0
                while clock.now < end && victimFiles(victim) == 100 {
                    _ = try? store.removeUnfinished()
                    attempts += 1
                }
                stop.store(true, ordering: .relaxed)
                finished.wait()
                #expect(swaps.load(ordering: .relaxed) > 0, "the exchange never happened")
                #expect(
                    victimFiles(victim) == 100,
                    "\(100 - victimFiles(victim)) victim files deleted in \(attempts) cleanups"
                )
            }
        }
    }

    @Test("Below a root, a link on the way to the entry is not followed")
    func linkOnTheWay() throws {
        try withTemporaryDirectory { root in
            let victim = root + "/victim"
            try makeVictim(victim, count: 4)
            try writeFile(victim + "/" + Manifest.checksumFileName, [1])
            let directory = root + "/checkpoints"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            #expect(symlink(victim, directory + "/ckpt-000000000005") == 0)
            try Syscalls.removeTree(directory + "/ckpt-000000000005/precious-0", within: directory)
            #expect(victimFiles(victim) == 5)
            // A marker store deleting a step whose folder was replaced by a link deletes nothing through it.
            let store = MarkerStore(
                directory: CheckpointDirectory(path: directory),
                permissions: StorePermissions(file: 0o600, directory: 0o700)
            )
            try? store.delete(step: 5)
            #expect(victimFiles(victim) == 5)
        }
    }

    @Test("A tree deeper than any checkpoint writes is refused with a clear error, not walked")
    func tooDeep() throws {
        try withTemporaryDirectory { root in
            let tree = root + "/tree"
            let deep = tree + String(repeating: "/d", count: Syscalls.maximumRemovalDepth + 2)
            try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
            let error = try #require(throws: CheckpointError.self) { try Syscalls.removeTree(tree) }
            #expect(error.code == .ioFailure)
            #expect(error.message.contains("levels deep"), "\(error)")
        }
    }
}
