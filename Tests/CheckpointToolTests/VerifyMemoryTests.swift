import Checkpoint
import Foundation
import Testing

/// The memory bound of `Documentation/Security.md`, measured: `ckpt verify` streams chunks, so its
/// peak resident size does not grow with an entry's size.
@Suite struct VerifyMemoryTests {
    /// Runs `ckpt arguments` under a Python parent that reports the child's peak resident size
    /// (`ru_maxrss` of its children, in KiB on Linux), so no other process of the test run counts.
    static func peakResidentBytes(_ arguments: [String]) throws -> (status: Int32, peak: Int) {
        let script = """
            import resource, subprocess, sys
            status = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
            """
        let result = try runProgram(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", "-c", script, try ckptExecutable().path] + arguments
        )
        let fields = result.stdout.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let status = try #require(fields.first ?? nil, "\(result)")
        let peak = try #require(fields.last ?? nil, "\(result)")
        return (Int32(status), peak)
    }

    @Test("verifying a 256 MiB entry that compresses to almost nothing stays far below its size")
    func verifyStreamsChunks() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test (Scripts/bootstrap installs it)")
            return
        }
        try withTemporaryDirectory { directory in
            do {
                let configuration = Checkpointer.Configuration(threads: 2, chunkSize: 4 << 20)
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.save(Zeros(count: 256 << 20), step: 1)
            }
            let stored =
                try FileManager.default.attributesOfItem(
                    atPath: shardPath(directory, step: 1)
                )[.size] as? Int ?? 0
            #expect(stored < 1 << 20, "the shard is small; its entry is 256 MiB")
            let (status, peak) = try Self.peakResidentBytes(["verify", directory, "--threads", "2"])
            #expect(status == 0)
            // Two threads of one 4 MiB chunk each (plus scratch), and the program itself; a verify
            // that decoded the entry whole would need 256 MiB more.
            #expect(peak < 128 << 20, "ckpt verify peaked at \(peak >> 20) MiB")
        }
    }

    /// One entry of `count` zero bytes.
    struct Zeros: Checkpointable {
        var count: Int

        init(count: Int) { self.count = count }

        init(from reader: SnapshotReader) throws { count = try reader.info("zeros").rawBytes }

        func save(to writer: inout SnapshotWriter) throws {
            try writer.write([UInt8](repeating: 0, count: count), as: "zeros")
        }
    }
}
