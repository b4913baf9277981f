import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

/// Checkpoints sealed with an HMAC under a key: forged, unsealed and wrongly keyed checkpoints are refused.
@Suite("Authenticated checkpoints")
struct AuthenticationTests {
    static let key = try! Authentication.Key(secret: Array(repeating: 0x5A, count: 32))
    static let otherKey = try! Authentication.Key(secret: Array(repeating: 0xA5, count: 32))

    static func configuration(_ authentication: Authentication?) -> Checkpointer.Configuration {
        var configuration = testConfiguration()
        configuration.authentication = authentication
        return configuration
    }

    static func save(_ directory: String, steps: ClosedRange<Int>, _ authentication: Authentication?) throws {
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration(authentication))
        for step in steps { try checkpointer.save(ArrayState(smoothField(3000, seed: UInt64(step))), step: Step(step)) }
    }

    static func restoredStep(_ directory: String, _ authentication: Authentication?) throws -> Step? {
        let restored = try Checkpointer(directory: directory, configuration: configuration(authentication))
            .restoreLatest(ArrayState<Double>.self)
        if let restored { #expect(restored.state == ArrayState(smoothField(3000, seed: restored.step.rawValue))) }
        return restored?.step
    }

    /// Rewrites a manifest the way a forger without the key can: change a value, recompute its SHA-256.
    static func forgeManifest(_ directory: String, step: Step, _ change: (inout Manifest) -> Void) throws {
        let folder = CheckpointDirectory(path: directory).path(for: step)
        var manifest = try CheckpointDirectory(path: directory).loadManifest(step: step)
        manifest.dumps = nil
        change(&manifest)
        let bytes = try manifest.encoded()
        try writeFile(folder + "/" + Manifest.fileName, bytes)
        try writeFile(
            folder + "/" + Manifest.checksumFileName,
            Array((hexString(sha256(bytes)) + "  " + Manifest.fileName + "\n").utf8)
        )
    }

    @Test("A sealed checkpoint records its key, carries a seal, and restores under the key")
    func roundTrip() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...2, Authentication(signingKey: Self.key))
            let folder = CheckpointDirectory(path: directory).path(for: 2)
            #expect(FileManager.default.fileExists(atPath: folder + "/" + Authentication.fileName))
            let keyed = CheckpointDirectory(path: directory, authentication: Authentication(signingKey: Self.key))
            #expect(try keyed.loadManifest(step: 2).authentication?.keyID == Self.key.id)
            try keyed.verify(step: 2)
            #expect(try Self.restoredStep(directory, Authentication(signingKey: Self.key)) == 2)
            // Without a key, a sealed checkpoint reads like any other.
            #expect(try Self.restoredStep(directory, nil) == 2)
        }
    }

    @Test("A manifest changed and re-checksummed passes without a key and is refused with one")
    func forgedManifest() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...2, Authentication(signingKey: Self.key))
            try Self.forgeManifest(directory, step: 2) { $0.metadata["forged"] = "yes" }
            try CheckpointDirectory(path: directory).verify(step: 2)  // integrity holds: digests were recomputed
            let keyed = CheckpointDirectory(path: directory, authentication: Authentication(signingKey: Self.key))
            #expect(throws: CheckpointError.self) { try keyed.verify(step: 2) }
            do throws(CheckpointError) {
                _ = try keyed.loadManifest(step: 2)
            } catch {
                #expect(error.code == .authenticationFailed)
                #expect(error.message.contains("matches none of the configured keys"))
            }
            #expect(try Self.restoredStep(directory, Authentication(signingKey: Self.key)) == 1)
        }
    }

    @Test("A checkpoint written without a key, or its seal removed, is refused under a key")
    func unsealed() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...1, Authentication(signingKey: Self.key))
            // Someone with write access plants a newer checkpoint written by the library without a key.
            try Self.save(directory, steps: 2...2, nil)
            let keyed = CheckpointDirectory(path: directory, authentication: Authentication(signingKey: Self.key))
            #expect(throws: CheckpointError.self) { _ = try keyed.loadManifest(step: 2) }
            #expect(try Self.restoredStep(directory, Authentication(signingKey: Self.key)) == 1)
            // A copied seal does not fit another manifest.
            let seal = try readFile(keyed.path(for: 1) + "/" + Authentication.fileName)
            try writeFile(keyed.path(for: 2) + "/" + Authentication.fileName, seal)
            #expect(throws: CheckpointError.self) { _ = try keyed.loadManifest(step: 2) }
            // Removing the seal of a sealed checkpoint makes it unauthenticated.
            try FileManager.default.removeItem(atPath: keyed.path(for: 1) + "/" + Authentication.fileName)
            do throws(CheckpointError) {
                _ = try keyed.loadManifest(step: 1)
                Issue.record("an unsealed checkpoint was accepted")
            } catch {
                #expect(error.code == .authenticationFailed)
                #expect(error.message.contains("not authenticated"))
            }
            #expect(throws: CheckpointError.self) {
                _ = try Self.restoredStep(directory, Authentication(signingKey: Self.key))
            }
        }
    }

    @Test("A wrong key is refused; a rotated key is accepted while the old one is")
    func keysAndRotation() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...1, Authentication(signingKey: Self.key))
            #expect(throws: CheckpointError.self) {
                _ = try Self.restoredStep(directory, Authentication(signingKey: Self.otherKey))
            }
            let rotated = Authentication(signingKey: Self.otherKey, alsoAccepting: [Self.key])
            #expect(try Self.restoredStep(directory, rotated) == 1)
            try Self.save(directory, steps: 2...2, rotated)
            let manifest = try CheckpointDirectory(path: directory, authentication: rotated).loadManifest(step: 2)
            #expect(manifest.authentication?.keyID == Self.otherKey.id)
            #expect(try Self.restoredStep(directory, Authentication(signingKey: Self.otherKey)) == 2)
        }
    }

    @Test("A manifest that names another key than the one that sealed it is refused")
    func recordMustNameTheKey() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...1, Authentication(signingKey: Self.key))
            let folder = CheckpointDirectory(path: directory).path(for: 1)
            var manifest = try CheckpointDirectory(path: directory).loadManifest(step: 1)
            manifest.dumps = nil
            manifest.authentication = Manifest.Authentication(algorithm: "HMAC-SHA256", keyID: "someone-else")
            // Sealed by the right key (as an insider could), but naming another one.
            let bytes = try manifest.encoded()
            try writeFile(folder + "/" + Manifest.fileName, bytes)
            try writeFile(
                folder + "/" + Manifest.checksumFileName,
                Array((hexString(sha256(bytes)) + "  " + Manifest.fileName + "\n").utf8)
            )
            try writeFile(folder + "/" + Authentication.fileName, Authentication(signingKey: Self.key).seal(bytes))
            let keyed = CheckpointDirectory(path: directory, authentication: Authentication(signingKey: Self.key))
            #expect(throws: CheckpointError.self) { _ = try keyed.loadManifest(step: 1) }
        }
    }

    @Test("Retention neither counts nor deletes checkpoints the key does not authenticate")
    func retentionIgnoresPlanted() throws {
        try withTemporaryDirectory { directory in
            // Planted: two far newer steps, written without the key.
            try Self.save(directory, steps: 900...901, nil)
            var configuration = Self.configuration(Authentication(signingKey: Self.key))
            configuration.retention = .init(keepLast: 2)
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                for step in 1...4 {
                    try checkpointer.save(ArrayState(smoothField(3000, seed: UInt64(step))), step: Step(step))
                }
            }
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [3, 4, 900, 901])
            #expect(try Self.restoredStep(directory, Authentication(signingKey: Self.key)) == 4)
        }
    }

    @Test("Partner copies and flushes are sealed; a lost node comes back authenticated")
    func redundancy() throws {
        try withTemporaryDirectory { root in
            let shared = root + "/shared"
            let local = root + "/local"
            let nodes = ["a", "a", "b", "b"]
            let configuration = {
                var configuration = Self.configuration(Authentication(signingKey: Self.key))
                configuration.redundancy = .init(localDirectory: local, partnerCopy: true, flushEvery: 3)
                return configuration
            }()
            _ = try LocalGroup.run(ranks: 4, timeout: 60, nodes: nodes) { communicator in
                let checkpointer = try Checkpointer(
                    directory: shared,
                    communicator: communicator,
                    configuration: configuration
                )
                for step in 1...4 {
                    try checkpointer.save(RedundancyTests.state(rank: communicator.rank, step: step), step: Step(step))
                }
            }
            let keyed = CheckpointDirectory(path: shared, authentication: configuration.authentication)
            try keyed.verify(step: 3)
            for rank in 0..<4 {
                let folder = CheckpointDirectory(path: local + "/rank-0000\(rank)").path(for: 4)
                #expect(FileManager.default.fileExists(atPath: folder + "/" + Authentication.fileName))
            }
            try FileManager.default.removeItem(atPath: local + "/rank-00002")
            try FileManager.default.removeItem(atPath: local + "/rank-00003")
            let restored = try LocalGroup.run(ranks: 4, timeout: 60, nodes: nodes) { communicator in
                let checkpointer = try Checkpointer(
                    directory: shared,
                    communicator: communicator,
                    configuration: configuration
                )
                return try checkpointer.restoreLatest(RankState.self)?.step
            }
            #expect(restored == [4, 4, 4, 4])
            let recovered = CheckpointDirectory(
                path: local + "/rank-00002",
                authentication: configuration.authentication
            )
            #expect(try recovered.loadManifest(step: 4).authentication?.keyID == Self.key.id)
        }
    }

    @Test("Incremental checkpoints under a key restore, and their bases are authenticated")
    func incremental() throws {
        try withTemporaryDirectory { directory in
            var configuration = Self.configuration(Authentication(signingKey: Self.key))
            configuration.incremental = .on(fullEvery: 4)
            var values = smoothField(20_000, seed: 1)
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                for step in 1...3 {
                    values[step * 100] += 1
                    try checkpointer.save(ArrayState(values), step: Step(step))
                }
            }
            let keyed = CheckpointDirectory(path: directory, authentication: configuration.authentication)
            #expect(try keyed.loadManifest(step: 3).references.isEmpty == false)
            try keyed.verify(step: 3)
            let restored = try Checkpointer(directory: directory, configuration: configuration)
                .restoreLatest(ArrayState<Double>.self)
            #expect(restored?.state == ArrayState(values))
        }
    }

    @Test("Key files must be private; hex and raw key files give the same key")
    func keyFiles() throws {
        try withTemporaryDirectory { directory in
            let secret = (0..<32).map { UInt8($0 * 7 & 0xFF) }
            let raw = directory + "/raw.key"
            let hex = directory + "/hex.key"
            try writeFile(raw, secret)
            try writeFile(hex, Array((hexString(secret) + "\n").utf8))
            for path in [raw, hex] {
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
                do throws(CheckpointError) {
                    _ = try Authentication.Key.contentsOfFile(path)
                    Issue.record("a key file readable by others was accepted")
                } catch {
                    #expect(error.code == .invalidConfiguration)
                    #expect(error.message.contains("chmod 600"))
                }
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            }
            let fromRaw = try Authentication.Key.contentsOfFile(raw)
            let fromHex = try Authentication.Key.contentsOfFile(hex)
            #expect(fromRaw == fromHex)
            #expect(fromRaw.id.count == 16)
            #expect(!"\(fromRaw)".contains(hexString(secret)))
            #expect(try Authentication.Key.contentsOfFile(raw, id: "2026-q4").id == "2026-q4")
            let short = directory + "/short.key"
            try writeFile(short, Array(secret.prefix(16)))
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: short)
            #expect(throws: CheckpointError.self) { _ = try Authentication.Key.contentsOfFile(short) }
            #expect(throws: CheckpointError.self) { _ = try Authentication.Key.contentsOfFile(directory + "/missing") }
            if geteuid() == 0 {
                try FileManager.default.setAttributes([.ownerAccountID: 65534], ofItemAtPath: raw)
                do throws(CheckpointError) {
                    _ = try Authentication.Key.contentsOfFile(raw)
                    Issue.record("another user's key file was accepted")
                } catch {
                    #expect(error.message.contains("owned by user 65534"))
                }
            }
        }
    }

    @Test("A key from the environment, in hex")
    func environmentKey() throws {
        let name = "SWIFT_CHECKPOINT_TEST_KEY_\(UUID().uuidString.prefix(8))"
        #expect(throws: CheckpointError.self) { _ = try Authentication.Key.environment(name) }
        setenv(name, String(repeating: "5a", count: 32), 1)
        defer { unsetenv(name) }
        #expect(try Authentication.Key.environment(name) == Self.key)
        setenv(name, "not hex", 1)
        #expect(throws: CheckpointError.self) { _ = try Authentication.Key.environment(name) }
    }
}
