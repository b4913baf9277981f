import Crypto

/// Keys that authenticate checkpoints: every manifest is sealed with an HMAC-SHA256 under a secret
/// key, and with a key configured nothing is restored that the key did not authenticate.
///
/// SHA-256 digests prove that a checkpoint is intact, not who wrote it: anyone who can write the
/// directory can change a value and recompute every digest. A MAC cannot be recomputed without the
/// key. The MAC covers the manifest, which records the SHA-256 of every shard's index, which records
/// the SHA-256 of every chunk (and, for incremental checkpoints, of every chunk used from an older
/// shard), so one MAC binds every byte that is restored. Partner copies and flushes carry the same
/// seal, and a checkpoint is a base for incremental ones only once it authenticates.
///
/// ```swift
/// var configuration = Checkpointer.Configuration()
/// configuration.authentication = Authentication(
///     signingKey: try .contentsOfFile("/home/me/.config/ckpt.key"),
///     alsoAccepting: [try .contentsOfFile("/home/me/.config/ckpt-old.key")]
/// )
/// ```
///
/// The seal is `manifest.json.hmac` beside the manifest (the MAC in hex, in the format of the
/// checksum file) and the manifest's ``Manifest/authentication`` names the key by its ``Key/id``.
/// To rotate keys, sign with the new key and keep accepting the old one until its checkpoints are gone.
public struct Authentication: Sendable, Hashable {
    /// The seal's file name, beside ``Manifest/fileName``.
    public static let fileName = "manifest.json.hmac"
    /// The algorithm recorded in manifests.
    public static let algorithm = "HMAC-SHA256"
    /// The environment variable ``Key/environment(_:id:)`` reads by default.
    public static let environmentVariable = "SWIFT_CHECKPOINT_KEY"

    /// The key new checkpoints are sealed with (it is accepted too).
    public var signingKey: Key
    /// Further keys whose checkpoints are accepted (older keys, during a rotation).
    public var acceptedKeys: [Key]

    /// Seals with `signingKey` and accepts checkpoints sealed by it or by any of `alsoAccepting`.
    /// - Parameters:
    ///   - signingKey: The key new checkpoints are sealed with.
    ///   - alsoAccepting: Keys whose checkpoints are accepted as well.
    public init(signingKey: Key, alsoAccepting: [Key] = []) {
        self.signingKey = signingKey
        self.acceptedKeys = alsoAccepting.filter { $0 != signingKey }
    }

    /// A secret key and its identifier.
    ///
    /// Its description shows the identifier only, never the secret.
    public struct Key: Sendable, Hashable, CustomStringConvertible {
        /// The fewest secret bytes a key may have (256 bits).
        public static let minimumSize = 32
        /// The most secret bytes a key may have.
        public static let maximumSize = 1024

        /// The identifier recorded in manifests: by default the first 16 hex digits of an HMAC of a
        /// fixed label under the key, so it names the key without revealing it.
        public let id: String
        /// The secret bytes (a `SymmetricKey` is made for each use: it is not `Sendable`).
        private let secret: [UInt8]
        var symmetricKey: SymmetricKey { SymmetricKey(data: secret) }

        /// A key from its secret bytes.
        /// - Parameters:
        ///   - secret: At least ``minimumSize`` random bytes (`head -c 32 /dev/urandom`).
        ///   - id: The identifier to record; derived from the key when `nil`.
        /// - Throws: `invalidConfiguration` when the secret is too short or too long, or the
        ///   identifier is empty, longer than 64 characters, or not printable ASCII.
        public init(secret: [UInt8], id: String? = nil) throws(CheckpointError) {
            guard (Self.minimumSize...Self.maximumSize).contains(secret.count) else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "an authentication key must have \(Self.minimumSize) to \(Self.maximumSize) bytes, not \(secret.count); make one with 'head -c 32 /dev/urandom > KEYFILE' or 'openssl rand -hex 32'"
                )
            }
            let key = SymmetricKey(data: secret)
            let derived = hexString(
                Array(HMAC<SHA256>.authenticationCode(for: Array("swift-checkpoint key id".utf8), using: key))
            )
            let id = id ?? String(derived.prefix(16))
            guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "a key id must be 1 to 64 printable ASCII characters without spaces"
                )
            }
            self.id = id
            self.secret = secret
        }

        /// Reads a key from a file that only its owner can read (mode 0600 or stricter).
        ///
        /// The file holds the secret as raw bytes (`head -c 32 /dev/urandom > KEYFILE`) or as hex
        /// digits (`openssl rand -hex 32 > KEYFILE`); surrounding white space is ignored.
        /// - Parameters:
        ///   - path: The key file.
        ///   - id: The identifier to record; derived from the key when `nil`.
        /// - Throws: `notFound`, `permissionDenied`; `invalidConfiguration` when the file is another
        ///   user's, readable or writable by group or others, or does not hold a key of a valid size.
        public static func contentsOfFile(_ path: String, id: String? = nil) throws(CheckpointError) -> Key {
            let bytes = try OpenFile.readPrivateFile(path, limit: 2 * maximumSize + 2)
            do { return try Key(secret: decodeSecret(bytes), id: id) } catch {
                throw CheckpointError(error.code, error.message, path: path)
            }
        }

        /// Reads a key, as hex digits, from an environment variable.
        ///
        /// Environment variables are visible to the process's owner (`/proc/PID/environ`) and to the
        /// programs it starts; prefer a key file on shared machines.
        /// - Parameters:
        ///   - name: The variable, ``Authentication/environmentVariable`` by default.
        ///   - id: The identifier to record; derived from the key when `nil`.
        /// - Throws: `invalidConfiguration` when the variable is unset or does not hold a key of a
        ///   valid size in hex.
        public static func environment(
            _ name: String = Authentication.environmentVariable,
            id: String? = nil
        ) throws(CheckpointError) -> Key {
            guard let value = Syscalls.environment(name) else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "environment variable \(name) is not set; export it with a key in hex ('openssl rand -hex 32')"
                )
            }
            guard let secret = hexBytes(Array(value.utf8).trimmingWhiteSpace()) else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "environment variable \(name) must hold the key in hex digits ('openssl rand -hex 32')"
                )
            }
            return try Key(secret: secret, id: id)
        }

        /// The identifier only: a key's secret never appears in logs or messages.
        public var description: String { "Authentication.Key(id: \(id))" }

        /// Keys are equal when their identifiers and secrets are.
        public static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.id == rhs.id && lhs.secret == rhs.secret
        }

        /// Hashes the identifier only.
        public func hash(into hasher: inout Hasher) { hasher.combine(id) }

        /// Hex digits when the whole (trimmed) file is hex, otherwise the raw bytes.
        private static func decodeSecret(_ bytes: [UInt8]) -> [UInt8] {
            let trimmed = bytes.trimmingWhiteSpace()
            return hexBytes(trimmed) ?? bytes
        }
    }

    /// The keys a checkpoint is accepted under: the signing key first.
    var keys: [Key] { [signingKey] + acceptedKeys }

    /// The record a manifest sealed with the signing key carries.
    var record: Manifest.Authentication {
        Manifest.Authentication(algorithm: Self.algorithm, keyID: signingKey.id)
    }

    /// The seal file's bytes for a manifest's bytes: its MAC under the signing key, in hex, in the
    /// checksum file's format.
    func seal(_ manifest: [UInt8]) -> [UInt8] {
        Array((hexString(Self.mac(manifest, signingKey)) + "  " + Manifest.fileName + "\n").utf8)
    }

    /// Checks a manifest's seal before the manifest is parsed.
    /// - Parameters:
    ///   - manifest: The manifest's bytes.
    ///   - seal: The seal file's bytes, or `nil` when there is none.
    ///   - path: The manifest's path, for errors.
    /// - Returns: The key that authenticated it.
    /// - Throws: `authenticationFailed` when the seal is missing, malformed, or matches no accepted key.
    func authenticate(_ manifest: [UInt8], seal: [UInt8]?, path: String) throws(CheckpointError) -> Key {
        guard let seal else {
            throw CheckpointError(
                .authenticationFailed,
                "checkpoint is not authenticated (no \(Self.fileName)) but a key is configured: it was written without a key, or its seal was removed",
                path: path
            )
        }
        guard seal.count >= 64, let claimed = hexBytes(Array(seal.prefix(64))) else {
            throw CheckpointError(.authenticationFailed, "\(Self.fileName) does not hold a MAC in hex", path: path)
        }
        // Constant-time comparison, so a forger learns nothing from how long a check took.
        for key in keys
        where HMAC<SHA256>.isValidAuthenticationCode(claimed, authenticating: manifest, using: key.symmetricKey) {
            return key
        }
        throw CheckpointError(
            .authenticationFailed,
            "manifest's MAC matches none of the configured keys (\(keys.map(\.id).joined(separator: ", "))): it was changed after it was written, or sealed with a key that is not configured",
            path: path
        )
    }

    /// Checks that a parsed manifest names the key that authenticated its bytes, and that its shards'
    /// chunk checksums are SHA-256 (format 1.x or 2.x): the seal covers the chunks only through
    /// those checksums, and anyone can forge an XXH3 match (format 3.x).
    func checkRecord(_ manifest: Manifest, sealedBy key: Key, path: String) throws(CheckpointError) {
        guard let record = manifest.authentication, record.algorithm == Self.algorithm, record.keyID == key.id else {
            throw CheckpointError(
                .authenticationFailed,
                "manifest does not name the key that authenticated it (\(key.id))",
                path: path
            )
        }
        guard manifest.shardFormat.hasPrefix("1.") || manifest.shardFormat.hasPrefix("2.") else {
            throw CheckpointError(
                .authenticationFailed,
                "sealed checkpoint uses shard format \(PrintableText.escaped(manifest.shardFormat)), whose chunk checksums are not cryptographic, so the seal does not cover its data; sealed checkpoints need SHA-256 chunk checksums (format 1.x or 2.x)",
                path: path
            )
        }
    }

    private static func mac(_ bytes: [UInt8], _ key: Key) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: bytes, using: key.symmetricKey))
    }
}

extension Manifest {
    /// How a manifest is sealed: the algorithm and the identifier of the key
    /// (see ``Checkpoint/Authentication``).
    public struct Authentication: Codable, Sendable, Hashable {
        /// `"HMAC-SHA256"`.
        public var algorithm: String
        /// The ``Checkpoint/Authentication/Key/id`` of the key that sealed it.
        public var keyID: String
    }
}

/// The bytes of an even number of hex digits, or `nil`.
func hexBytes(_ digits: [UInt8]) -> [UInt8]? {
    guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
    func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
        bytes.append(high << 4 | low)
        index += 2
    }
    return bytes
}

extension [UInt8] {
    /// Without leading and trailing spaces, tabs and line ends.
    fileprivate func trimmingWhiteSpace() -> [UInt8] {
        let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return []
        }
        return Array(self[first...last])
    }
}
