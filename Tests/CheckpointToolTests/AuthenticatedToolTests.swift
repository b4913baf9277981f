import Foundation
import Testing

@testable import Checkpoint

/// `ckpt verify --key-file` and `ckpt extract --key-file`/`--run-id`.
@Suite struct AuthenticatedToolTests {
    /// Writes a private key file and returns its path and key.
    static func keyFile(_ directory: String, name: String, byte: UInt8) throws -> (String, Authentication.Key) {
        let path = directory + "/" + name
        let secret = [UInt8](repeating: byte, count: 32)
        _ = FileManager.default.createFile(atPath: path, contents: Data(secret), attributes: [.posixPermissions: 0o600])
        return (path, try Authentication.Key(secret: secret))
    }

    /// Checkpoints of steps 1 and 2 sealed with `key`, in run `job-7`.
    static func makeSealed(_ directory: String, key: Authentication.Key) throws {
        var configuration = Checkpointer.Configuration(policy: .always, threads: 2, chunkSize: 4096)
        configuration.authentication = Authentication(signingKey: key)
        configuration.lineage = try Lineage(runID: "job-7")
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
        for step in [Step(1), Step(2)] { try checkpointer.save(Simulation(seed: step.rawValue), step: step) }
    }

    @Test func verifyChecksTheSeal() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            let (keyPath, key) = try Self.keyFile(root, name: "ckpt.key", byte: 1)
            let (otherPath, _) = try Self.keyFile(root, name: "other.key", byte: 2)
            try Self.makeSealed(directory, key: key)
            let good = try ckpt("verify", directory, "--all", "--key-file", keyPath)
            #expect(good.status == 0, "\(good)")
            #expect(
                good.stdout.contains("step 2: ok") && good.stdout.contains("authenticated by key \(key.id)"),
                "\(good)"
            )
            let wrong = try ckpt("verify", directory, "--key-file", otherPath)
            #expect(wrong.status == 1, "\(wrong)")
            #expect(wrong.stdout.contains("authenticationFailed"), "\(wrong)")
            // Rotation: any of the keys given is accepted.
            #expect(try ckpt("verify", directory, "--key-file", otherPath, "--key-file", keyPath).status == 0)

            // A forger changes the manifest and recomputes its SHA-256: integrity holds, authenticity does not.
            let folder = CheckpointDirectory(path: directory).path(for: 2)
            var manifest = try CheckpointDirectory(path: directory).loadManifest(step: 2)
            manifest.dumps = nil
            manifest.metadata["forged"] = "yes"
            let bytes = try manifest.encoded()
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + Manifest.fileName))
            try Data((hexString(sha256(bytes)) + "  manifest.json\n").utf8)
                .write(to: URL(fileURLWithPath: folder + "/" + Manifest.checksumFileName))
            #expect(try ckpt("verify", directory).status == 0)
            let forged = try ckpt("verify", directory, "--key-file", keyPath, "--json")
            #expect(forged.status == 1, "\(forged)")
            #expect(forged.stdout.contains("\"authenticationFailed\""), "\(forged)")
        }
    }

    @Test func keyFileMustBePrivate() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            let (keyPath, key) = try Self.keyFile(root, name: "ckpt.key", byte: 1)
            try Self.makeSealed(directory, key: key)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyPath)
            let result = try ckpt("verify", directory, "--key-file", keyPath)
            #expect(result.status == 2, "\(result)")
            #expect(result.stderr.contains("chmod 600"), "\(result)")
        }
    }

    @Test func extractRefusesAnotherRun() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            let (keyPath, key) = try Self.keyFile(root, name: "ckpt.key", byte: 1)
            try Self.makeSealed(directory, key: key)
            let output = root + "/time.npy"
            let own = try ckpt(
                "extract",
                directory,
                "--entry",
                "time",
                "-o",
                output,
                "--key-file",
                keyPath,
                "--run-id",
                "job-7"
            )
            #expect(own.status == 0, "\(own)")
            let other = try ckpt("extract", directory, "--entry", "time", "-o", output, "--force", "--run-id", "job-8")
            #expect(other.status == 1, "\(other)")
            #expect(other.stderr.contains("belongs to run 'job-7'"), "\(other)")
        }
    }

    /// Issue 13: `ckpt export` and `ckpt list --verify` honour `--key-file` and `--run-id` as `extract` does.
    @Test func exportAndVerifiedListCheckTheSeal() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/checkpoints"
            let (keyPath, key) = try Self.keyFile(root, name: "ckpt.key", byte: 1)
            let (otherPath, _) = try Self.keyFile(root, name: "other.key", byte: 2)
            try Self.makeSealed(directory, key: key)

            let good = try ckpt(
                "export",
                directory,
                "-o",
                root + "/good.zarr",
                "--key-file",
                keyPath,
                "--run-id",
                "job-7"
            )
            #expect(good.status == 0, "\(good)")
            let wrongKey = try ckpt("export", directory, "-o", root + "/bad.zarr", "--key-file", otherPath)
            #expect(wrongKey.status == 1, "\(wrongKey)")
            #expect(wrongKey.stderr.contains("key"), "\(wrongKey)")
            let wrongRun = try ckpt("export", directory, "-o", root + "/bad.zarr", "--run-id", "job-8")
            #expect(wrongRun.status != 0, "\(wrongRun)")
            #expect(!FileManager.default.fileExists(atPath: root + "/bad.zarr"))

            let listed = try ckpt("list", directory, "--verify", "--key-file", otherPath)
            #expect(listed.status == 1, "\(listed)")
            #expect(listed.stdout.contains("damaged: authenticationFailed"), "\(listed)")
            #expect(try ckpt("list", directory, "--verify", "--key-file", keyPath).status == 0)
        }
    }
}
