import Foundation
import Testing

@testable import Checkpoint

@Suite("Directories other users can write are refused")
struct DirectoryCheckTests {
    /// A fresh directory with the given owner and mode (set explicitly: the umask plays no part).
    private func makeDirectory(_ path: String, mode: mode_t, owner: uid_t? = nil, group: gid_t? = nil) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if owner != nil || group != nil {
            try #require(chown(path, owner ?? geteuid(), group ?? getegid()) == 0, "chown needs root")
        }
        try #require(chmod(path, mode) == 0)
    }

    private func refusal(
        _ path: String,
        _ configuration: Checkpointer.Configuration = Checkpointer.Configuration()
    ) throws -> CheckpointError {
        try #require(throws: CheckpointError.self) { try Checkpointer(directory: path, configuration: configuration) }
    }

    @Test("A directory owned by another user is refused, naming the fix")
    func otherOwner() throws {
        try #require(geteuid() == 0, "changing a directory's owner needs root")
        try withTemporaryDirectory { root in
            let directory = root + "/theirs"
            try makeDirectory(directory, mode: 0o700, owner: 65534)
            let error = try refusal(directory)
            #expect(error.code == .invalidConfiguration, "\(error)")
            #expect(error.message.contains("another user (uid 65534)") && error.message.contains("mkdir -m 700"))
            #expect(error.path == directory)
            // Sharing with the group does not extend to another user's directory.
            #expect(throws: CheckpointError.self) {
                try Checkpointer(directory: directory, configuration: .init(directorySharing: .group))
            }
        }
    }

    @Test("A directory every user can write is refused, with or without the sticky bit", arguments: [0o777, 0o1777])
    func worldWritable(mode: Int) throws {
        try withTemporaryDirectory { root in
            let directory = root + "/open"
            try makeDirectory(directory, mode: mode_t(mode))
            for configuration in [Checkpointer.Configuration(), .init(directorySharing: .group)] {
                let error = try refusal(directory, configuration)
                #expect(error.code == .invalidConfiguration, "\(error)")
                #expect(error.message.contains("writable by every user"), "\(error)")
                #expect(error.message.contains("chmod go-w \(directory)"), "\(error)")
            }
            // Nothing was written into it before the refusal.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        }
    }

    @Test("A group-writable directory is refused by default and accepted when shared with the group on purpose")
    func groupWritable() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/group"
            try makeDirectory(directory, mode: 0o770)
            let error = try refusal(directory)
            #expect(error.code == .invalidConfiguration, "\(error)")
            #expect(error.message.contains("writable by its group") && error.message.contains("chmod g-w"))
            #expect(error.message.contains("directorySharing = .group"), "\(error)")
            var configuration = Checkpointer.Configuration(directorySharing: .group)
            configuration.policy = .everySteps(1)
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            try checkpointer.checkpoint([1.0, 2.0], step: 1)
            #expect(try checkpointer.directory.committedSteps() == [1])
        }
    }

    @Test("A group-writable directory of a group this user is not in is refused even when sharing with the group")
    func foreignGroup() throws {
        try #require(geteuid() == 0, "changing a directory's group needs root")
        let nogroup: gid_t = 65534
        var groups = [gid_t](repeating: 0, count: 256)
        let count = getgroups(256, &groups)
        try #require(getegid() != nogroup && !groups.prefix(Int(max(count, 0))).contains(nogroup))
        try withTemporaryDirectory { root in
            let directory = root + "/foreign"
            try makeDirectory(directory, mode: 0o770, group: nogroup)
            let error = try refusal(directory, .init(directorySharing: .group))
            #expect(error.code == .invalidConfiguration, "\(error)")
            #expect(error.message.contains("not a member"), "\(error)")
        }
    }

    @Test("A node-local directory every user can write is refused, and the folders created in it are private")
    func nodeLocalDirectory() throws {
        try withTemporaryDirectory { root in
            let local = root + "/local"
            try makeDirectory(local, mode: 0o1777)
            var configuration = Checkpointer.Configuration()
            configuration.redundancy = .init(localDirectory: local, partnerCopy: false)
            let error = try refusal(root + "/shared", configuration)
            #expect(error.code == .invalidConfiguration, "\(error)")
            #expect(error.description.contains(local) && error.message.contains("writable by every user"), "\(error)")
            // A private node-local directory is fine, and the rank's folder is created owner-only.
            try #require(chmod(local, 0o700) == 0)
            _ = try Checkpointer(directory: root + "/shared", configuration: configuration)
            var info = stat()
            try #require(stat(local + "/rank-00000", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o700)
        }
    }

    @Test("Directory permissions that let others write are an invalid configuration")
    func permissionsValidated() {
        for (permissions, sharing) in [
            (UInt16(0o777), Checkpointer.Configuration.DirectorySharing.group), (0o770, .privateOnly),
        ] {
            let configuration = Checkpointer.Configuration(directoryPermissions: permissions, directorySharing: sharing)
            let error = #expect(throws: CheckpointError.self) { try configuration.validate() }
            #expect(error?.code == .invalidConfiguration)
        }
        #expect(throws: Never.self) {
            try Checkpointer.Configuration(directoryPermissions: 0o770, directorySharing: .group).validate()
        }
    }

    @Test("A lock file that is a symbolic link is refused, and its target is not created or locked")
    func symlinkedLock() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            try makeDirectory(directory, mode: 0o700)
            let target = root + "/elsewhere"
            #expect(symlink(target, directory + "/.lock") == 0)
            let error = try refusal(directory)
            #expect(error.code == .invalidConfiguration, "\(error)")
            #expect(error.message.contains("symbolic link"), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: target))
        }
    }
}
