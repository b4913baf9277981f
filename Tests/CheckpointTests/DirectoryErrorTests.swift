import Foundation
import Testing

@testable import Checkpoint

@Suite("Checkpoint directory errors")
struct DirectoryErrorTests {
    @Test("A file in the way of the checkpoint directory is named as such")
    func fileInTheWay() throws {
        try withTemporaryDirectory { directory in
            let file = directory + "/data"
            try writeFile(file, [1, 2, 3])
            for path in [file + "/checkpoints", file + "/a/b", file] {
                let error = try #require(throws: CheckpointError.self, "\(path)") {
                    try Checkpointer(directory: path)
                }
                #expect(error.code == .invalidConfiguration, "\(path): \(error)")
                #expect(error.message.contains("not a directory"), "\(path): \(error)")
                #expect(error.path == file, "\(path): \(error)")
            }
            var configuration = Checkpointer.Configuration()
            configuration.createDirectory = false
            let existing = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: file, configuration: configuration)
            }
            #expect(existing.code == .invalidConfiguration && existing.message.contains("a file, not a directory"))
            let missing = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory + "/missing", configuration: configuration)
            }
            #expect(missing.code == .notFound && missing.message.contains("createDirectory"))
        }
    }

    @Test("A directory under /proc is refused as a virtual file system, not reported as missing")
    func virtualFileSystem() throws {
        try #require(Syscalls.isDirectory("/proc"))
        let error = try #require(throws: CheckpointError.self) { try Checkpointer(directory: "/proc/checkpoints") }
        #expect(error.code != .notFound, "\(error)")
        #expect(error.message.contains("'/proc'") && error.message.contains("virtual file system"), "\(error)")
    }
}
