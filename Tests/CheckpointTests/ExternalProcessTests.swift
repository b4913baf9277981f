import Foundation
import Testing

@testable import Checkpoint

#if canImport(Glibc)
import Glibc
#endif

/// Starting a dumper program whose file is still open for writing somewhere (`ETXTBSY`).
@Suite("External programs")
struct ExternalProcessTests {
    /// A script just written can be "busy": a process spawned by another thread at that moment
    /// holds the write descriptor until it executes its own program. Starting it is retried
    /// instead of failing the dump (this failed `probeCheckFails` now and then in the whole suite).
    @Test("A program file busy for a moment is started once it is free")
    func busyProgramFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/dump-program"
            try Data("#!/bin/sh\necho started\n".utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            let writer = open(path, O_WRONLY | O_CLOEXEC)
            #expect(writer >= 0)
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { close(writer) }
            let result = try ExternalProcess.run([path], timeout: 30)
            #expect(result.status == 0)
            #expect(result.output == "started\n")
        }
    }

    @Test("A program file busy for good is reported, not retried forever")
    func programFileStaysBusy() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/dump-program"
            try Data("#!/bin/sh\necho started\n".utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            let writer = open(path, O_WRONLY | O_CLOEXEC)
            defer { close(writer) }
            let error = #expect(throws: CheckpointError.self) { try ExternalProcess.run([path], timeout: 30) }
            #expect(error?.code == .ioFailure)
            #expect(error?.message.contains("could not start") == true)
        }
    }
}
