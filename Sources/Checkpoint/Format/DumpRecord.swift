/// What one rank's dump did, recorded beside the checkpoint's manifest and shown by `ckpt inspect`.
public struct DumpRecord: Codable, Sendable, Hashable {
    /// The rank that dumped.
    public var rank: Int
    /// The dumper's name.
    public var dumper: String
    /// The dumper's version, if known.
    public var version: String?
    /// The images directory, relative to the checkpoint directory (e.g. `images/rank-00000`).
    public var imagesDirectory: String
    /// `"ok"`, `"failed"`, `"cancelled"` (a participant refused) or `"unavailable"` (the probe failed).
    public var status: String
    /// The dumper process's exit status, when it ran.
    public var exitStatus: Int32?
    /// Seconds the dump took (participant hooks included).
    public var seconds: Double
    /// The failure, when there is one.
    public var message: String?

    /// Creates a record.
    public init(
        rank: Int,
        dumper: String,
        version: String?,
        imagesDirectory: String,
        status: String,
        exitStatus: Int32?,
        seconds: Double,
        message: String?
    ) {
        self.rank = rank
        self.dumper = dumper
        self.version = version
        self.imagesDirectory = imagesDirectory
        self.status = status
        self.exitStatus = exitStatus
        self.seconds = seconds
        self.message = message
    }
}
