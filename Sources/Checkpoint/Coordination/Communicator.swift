import Foundation
import Synchronization

/// The ranks that take checkpoints together, and the few collective operations they need.
///
/// Implementations: ``SingleProcessCommunicator`` (the default, size 1), ``LocalGroup`` (ranks as
/// threads of one process) and `MPICommunicator` in the `CheckpointMPI` module (ranks as MPI
/// processes). Every rank must call the same collectives in the same order, as with MPI.
///
/// Collectives carry bytes and 64-bit integers; conveniences in extensions build the rest:
/// typed send, receive, broadcast, gather and allgather of arrays of `BitwiseCopyable` elements
/// (raw bytes, no per-element encoding) and of `Codable` values (JSON), e.g.
/// `try communicator.receive([Double].self, from: left, tag: 1)` or `try communicator.allgather(value: settings)`.
public protocol Communicator: Sendable {
    /// This rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }

    /// Returns once every rank has called it.
    func barrier() throws

    /// Returns `bytes` from `root` on every rank (the argument is ignored on other ranks).
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8]

    /// Returns `root`'s value on every rank; the other ranks pass `nil`.
    ///
    /// The default encodes the value as JSON and broadcasts the bytes, so every rank decodes it:
    /// work in proportion to its size on each rank. ``LocalCommunicator`` hands the value itself to
    /// the other threads instead, so that a job of many in-process ranks does not decode a manifest
    /// once per rank. A wrapping communicator should forward this call.
    /// - Throws: `encodingFailed` or `decodingFailed`; what ``broadcast(_:root:)`` throws.
    func broadcastValue<Value: Codable & Sendable>(_ value: Value?, root: Int) throws -> Value

    /// Combines `values` element-wise across ranks; every rank gets the result.
    /// All ranks must pass the same number of values.
    func allreduce(_ values: [Int64], _ operation: ReductionOperation) throws -> [Int64]

    /// Collects every rank's bytes on `root`, in rank order; other ranks get `nil`.
    func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]?

    /// Sends bytes to rank `destination` with a `tag`; buffered: returns without waiting for the receive.
    func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws

    /// Receives the next bytes rank `source` sent with `tag`.
    func receive(from source: Int, tag: Int) throws -> [UInt8]

    /// A short description for logs and manifests, e.g. `"local group"` or `"MPI (Open MPI 4.1)"`.
    var transportName: String { get }

    /// A communicator over the same ranks whose collectives and messages never mix with this
    /// one's (like `MPI_Comm_dup`); the asynchronous checkpoint pipeline commits on it from a
    /// background thread. Collective: every rank calls it, in the same order.
    func duplicate() throws -> any Communicator

    /// Whether several ranks live in this process (threads of a ``LocalGroup``); default `false`.
    var ranksShareProcess: Bool { get }

    /// The name of the node (machine) this rank runs on; default: the host name. Ranks with the
    /// same node name are assumed to lose their node-local storage together. `MPICommunicator`
    /// takes the resource manager's name (`SLURMD_NODENAME`), else its shared-memory group's: see ``NodeName``.
    var nodeName: String { get }
}

/// How ``Communicator/allreduce(_:_:)`` combines values.
public enum ReductionOperation: Sendable, Hashable {
    /// The smallest value.
    case min
    /// The largest value.
    case max
    /// The sum.
    case sum

    func combine(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        switch self {
        case .min: Swift.min(lhs, rhs)
        case .max: Swift.max(lhs, rhs)
        case .sum: lhs &+ rhs
        }
    }
}

extension Communicator {
    /// Whether several ranks live in this process (threads of a ``LocalGroup``). Default `false`.
    public var ranksShareProcess: Bool { false }

    /// The host name.
    public var nodeName: String { Syscalls.hostName }

    /// Whether this is rank 0, the one that commits.
    public var isRoot: Bool { rank == 0 }

    /// Sends to `destination` and receives from `source` (each may be `nil`); safe against
    /// deadlock whatever the order neighbours call it in.
    public func exchange(
        send bytes: [UInt8],
        to destination: Int?,
        receiveFrom source: Int?,
        tag: Int
    ) throws -> [UInt8]? {
        if let destination { try send(bytes, to: destination, tag: tag) }
        return try source.map { try receive(from: $0, tag: tag) }
    }

    /// `true` on every rank when `value` is `true` on every rank.
    public func allTrue(_ value: Bool) throws -> Bool { try allreduce([value ? 1 : 0], .min)[0] == 1 }

    /// `true` on every rank when `value` is `true` on any rank.
    public func anyTrue(_ value: Bool) throws -> Bool { try allreduce([value ? 1 : 0], .max)[0] == 1 }

    /// One value combined across ranks.
    public func allreduce(_ value: Int64, _ operation: ReductionOperation) throws -> Int64 {
        try allreduce([value], operation)[0]
    }

    /// Every rank's bytes, in rank order, on every rank.
    public func allgather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let gathered = try gather(bytes, root: 0)
        var packed = ByteBuilder()
        if let gathered {
            for part in gathered {
                packed.append(UInt64(part.count))
                packed.append(contentsOf: part)
            }
        }
        let all = try broadcast(packed.bytes, root: 0)
        var cursor = ByteCursor(all, path: "allgather")
        var parts: [[UInt8]] = []
        for _ in 0..<size {
            let count = try cursor.u64()
            parts.append(try cursor.bytes(Int(count)))
        }
        return parts
    }
}

/// The communicator of a program with one rank: every collective returns at once.
public struct SingleProcessCommunicator: Communicator {
    /// Creates the single-rank communicator.
    public init() {}

    /// Always 0.
    public var rank: Int { 0 }
    /// Always 1.
    public var size: Int { 1 }
    /// `"single process"`.
    public var transportName: String { "single process" }

    /// Returns at once.
    public func barrier() {}
    /// Returns `bytes`.
    public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] { bytes }
    /// Returns `values`.
    public func allreduce(_ values: [Int64], _ operation: ReductionOperation) -> [Int64] { values }
    /// Returns `[bytes]`.
    public func gather(_ bytes: [UInt8], root: Int) -> [[UInt8]]? { [bytes] }

    /// Keeps messages a rank sends to itself.
    public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
        guard destination == 0 else {
            throw CheckpointError(.invalidConfiguration, "rank \(destination) does not exist; size is 1")
        }
        mailbox.withLock { $0[tag, default: []].append(bytes) }
    }

    /// A fresh single-rank communicator with its own mailbox.
    public func duplicate() -> any Communicator { SingleProcessCommunicator() }

    /// Returns a message this rank sent to itself, or throws `timedOut` when there is none.
    public func receive(from source: Int, tag: Int) throws -> [UInt8] {
        guard source == 0 else {
            throw CheckpointError(.invalidConfiguration, "rank \(source) does not exist; size is 1")
        }
        guard let message = mailbox.withLock({ $0[tag]?.isEmpty == false ? $0[tag]!.removeFirst() : nil }) else {
            throw CheckpointError(.timedOut, "no message with tag \(tag) was sent; a single rank would wait forever")
        }
        return message
    }

    private let mailbox = Locked<[Int: [[UInt8]]]>([:])
}
