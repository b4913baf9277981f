/// Something that saves the whole process — CRIU, DMTCP, or any external command — at the
/// consistent point an application-level checkpoint was just committed.
///
/// The application-level checkpoint stays the authoritative, portable fallback; a process image
/// is an optional extra whose outcome is recorded next to the checkpoint's manifest.
public protocol ProcessDumper: Sendable {
    /// A short name recorded with every dump, e.g. `"criu"`.
    var name: String { get }

    /// Whether one dump captures the whole process, so that ranks sharing a process (a
    /// ``LocalGroup``) dump it once, from their lowest rank, instead of once per rank.
    /// Default `true`; ``CommandDumper`` says `false` unless told otherwise.
    var oncePerProcess: Bool { get }

    /// Whether the dumper is installed and usable here, its version, and if not, why.
    func probe() -> DumperProbe

    /// Dumps the process described by `request` into `request.imagesDirectory` (which exists).
    /// - Returns: Whether this process simply continued after the dump, or is a restored copy.
    /// - Throws: ``CheckpointError`` (`ioFailure`, `timedOut`, `notFound`) when the dump failed.
    func dump(_ request: DumpRequest) throws -> DumpOutcome
}

extension ProcessDumper {
    /// `true`: a dumper captures the whole process.
    public var oncePerProcess: Bool { true }
}

/// What ``ProcessDumper/probe()`` found.
public struct DumperProbe: Sendable, Hashable, Codable {
    /// Whether a dump can be attempted.
    public var isUsable: Bool
    /// The dumper's version, when it could be determined.
    public var version: String?
    /// Why it is not usable (or a warning), in the dumper's own words.
    public var reason: String?

    /// Creates a probe result.
    public init(isUsable: Bool, version: String? = nil, reason: String? = nil) {
        self.isUsable = isUsable
        self.version = version
        self.reason = reason
    }
}

/// One dump to perform.
public struct DumpRequest: Sendable, Hashable {
    /// The process to dump (default: this one).
    public var pid: Int32
    /// Where the images go; it exists and is empty.
    public var imagesDirectory: String
    /// The images of the previous dump of the same rank, for incremental (pre-)dumps, if any.
    public var previousImagesDirectory: String?
    /// The step of the application-level checkpoint this dump accompanies.
    public var step: Step
    /// The rank that dumps.
    public var rank: Int
    /// Whether the process keeps running after the dump (default `true`).
    public var leaveRunning: Bool
    /// Seconds after which the dump is abandoned (the dumper process is killed).
    public var timeout: Double
    /// When `timeout` is up: on the monotonic clock, or (in tests) when an event happens.
    @_spi(Testing) public var timer = DumpTimer.monotonic

    /// Creates a request.
    public init(
        pid: Int32,
        imagesDirectory: String,
        previousImagesDirectory: String? = nil,
        step: Step,
        rank: Int,
        leaveRunning: Bool = true,
        timeout: Double = 600
    ) {
        self.pid = pid
        self.imagesDirectory = imagesDirectory
        self.previousImagesDirectory = previousImagesDirectory
        self.step = step
        self.rank = rank
        self.leaveRunning = leaveRunning
        self.timeout = timeout
    }

    /// Whether two requests ask for the same dump (the test-only `timer` is not compared).
    public static func == (lhs: DumpRequest, rhs: DumpRequest) -> Bool {
        (lhs.pid, lhs.imagesDirectory, lhs.previousImagesDirectory, lhs.step, lhs.rank)
            == (rhs.pid, rhs.imagesDirectory, rhs.previousImagesDirectory, rhs.step, rhs.rank)
            && (lhs.leaveRunning, lhs.timeout) == (rhs.leaveRunning, rhs.timeout)
    }

    /// Hashes what `==` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(pid)
        hasher.combine(imagesDirectory)
        hasher.combine(previousImagesDirectory)
        hasher.combine(step)
        hasher.combine(rank)
        hasher.combine(leaveRunning)
        hasher.combine(timeout)
    }
}

/// How a process came out of a dump, as `fork()` tells parent from child.
public enum DumpOutcome: String, Sendable, Hashable, Codable {
    /// The dump was taken and this process went on running.
    case continued
    /// This process is a copy restored from the images.
    case restored
}
