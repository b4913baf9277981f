import Foundation

/// Ranks as threads of one process: the embedded default for multi-rank programs, and what
/// most tests use.
///
/// ```swift
/// let checksums = try LocalGroup.run(ranks: 4) { communicator in
///     let checkpointer = try Checkpointer(directory: "ckpt", communicator: communicator)
///     …
/// }
/// ```
///
/// A rank that throws, or returns while others still wait for it, makes every collective and
/// receive that needs it fail on the surviving ranks with ``CheckpointError/Code/peerFailed`` at
/// once; a rank that is stuck makes them fail with ``CheckpointError/Code/timedOut`` after
/// ``timeout`` seconds. Nothing ever waits forever.
public final class LocalGroup: @unchecked Sendable {
    /// The number of ranks.
    public let size: Int
    /// Seconds a collective or receive waits for a peer before failing with `timedOut`.
    public let timeout: Double
    /// The node name of each rank, when the group simulates several machines.
    public let nodes: [String]?

    private let condition = NSCondition()
    private var nextRound: [Int]
    private var rounds: [Int: Round] = [:]
    private var mailboxes: [MailboxKey: [[UInt8]]] = [:]
    private var failures: [Int: String] = [:]
    private var exited: Set<Int> = []
    private var children: [LocalGroup] = []
    private var duplicatesTaken: [Int]

    private struct Round {
        var kind: String
        var contributions: [[UInt8]?]
        /// The root's value in a ``LocalCommunicator/broadcastValue(_:root:)``.
        var value: (any Sendable)?
        var arrived = 0
        var departed = 0
    }

    private struct MailboxKey: Hashable {
        var source: Int
        var destination: Int
        var tag: Int
    }

    /// Creates a group; hand ``communicator(rank:)`` to each of `size` threads.
    /// - Parameters:
    ///   - size: The number of ranks (at least 1).
    ///   - timeout: Seconds to wait for a peer before failing (default 300).
    ///   - nodes: A node name per rank, to simulate ranks on several machines (default: the host name).
    public init(size: Int, timeout: Double = 300, nodes: [String]? = nil) {
        precondition(size >= 1, "a group needs at least one rank")
        precondition(timeout > 0, "the timeout must be positive")
        precondition(nodes == nil || nodes?.count == size, "give one node name per rank")
        self.size = size
        self.timeout = timeout
        self.nodes = nodes
        nextRound = Array(repeating: 0, count: size)
        duplicatesTaken = Array(repeating: 0, count: size)
    }

    /// The `index`-th child group of `rank`'s duplicates: every rank's k-th call gets the same group.
    func duplicate(for rank: Int) -> LocalGroup {
        condition.lock()
        defer { condition.unlock() }
        let index = duplicatesTaken[rank]
        duplicatesTaken[rank] += 1
        while children.count <= index { children.append(LocalGroup(size: size, timeout: timeout, nodes: nodes)) }
        return children[index]
    }

    /// The communicator of one rank.
    public func communicator(rank: Int) -> LocalCommunicator {
        precondition((0..<size).contains(rank), "rank \(rank) is outside 0..<\(size)")
        return LocalCommunicator(group: self, rank: rank)
    }

    /// Runs `body` once per rank, each on its own thread, and returns the results in rank order.
    ///
    /// - Parameters:
    ///   - ranks: The number of ranks.
    ///   - timeout: Seconds to wait for a peer before failing.
    ///   - nodes: A node name per rank, to simulate several machines (default: the host name).
    ///   - body: What each rank runs.
    /// - Throws: The first error a rank threw that was not merely a consequence of another
    ///   rank's failure (`peerFailed`), so the root cause surfaces.
    public static func run<Result: Sendable>(
        ranks: Int,
        timeout: Double = 300,
        nodes: [String]? = nil,
        _ body: @escaping @Sendable (LocalCommunicator) throws -> Result
    ) throws -> [Result] {
        let group = LocalGroup(size: ranks, timeout: timeout, nodes: nodes)
        let outcomes = Outcomes<Result>(count: ranks)
        let finished = DispatchGroup()
        for rank in 0..<ranks {
            finished.enter()
            let thread = Thread {
                defer { finished.leave() }
                do {
                    outcomes.set(rank, .success(try body(group.communicator(rank: rank))))
                    group.markExited(rank)
                } catch {
                    outcomes.set(rank, .failure(error))
                    group.markFailed(rank, reason: "\(error)")
                }
            }
            thread.stackSize = 8 << 20
            thread.name = "rank-\(rank)"
            thread.start()
        }
        finished.wait()
        return try outcomes.values()
    }

    /// Marks a rank as failed: its peers' pending and future collectives fail with `peerFailed`.
    public func markFailed(_ rank: Int, reason: String) {
        condition.lock()
        failures[rank] = reason
        condition.broadcast()
        let children = self.children
        condition.unlock()
        for child in children { child.markFailed(rank, reason: reason) }
    }

    func markExited(_ rank: Int) {
        condition.lock()
        exited.insert(rank)
        condition.broadcast()
        let children = self.children
        condition.unlock()
        for child in children { child.markExited(rank) }
    }

    /// Contributes to the next collective of `rank` and returns every rank's contribution.
    func collective(_ kind: String, rank: Int, contribution: [UInt8]) throws -> [[UInt8]] {
        try collective(kind, rank: rank, contribution: contribution, value: nil).contributions
    }

    /// Contributes bytes and, from the root of a value broadcast, a value to the next collective of
    /// `rank`; returns every rank's bytes and the value.
    private func collective(
        _ kind: String,
        rank: Int,
        contribution: [UInt8],
        value: (any Sendable)?
    ) throws -> (contributions: [[UInt8]], value: (any Sendable)?) {
        condition.lock()
        defer { condition.unlock() }
        let sequence = nextRound[rank]
        nextRound[rank] += 1
        var round = rounds[sequence] ?? Round(kind: kind, contributions: Array(repeating: nil, count: size))
        guard round.kind == kind else {
            let message =
                "rank \(rank) called \(kind) while other ranks called \(round.kind): every rank must call the same collectives in the same order"
            failures[rank] = message
            condition.broadcast()
            throw CheckpointError(.peerFailed, message)
        }
        round.contributions[rank] = contribution
        if let value { round.value = value }
        round.arrived += 1
        rounds[sequence] = round
        if round.arrived == size { condition.broadcast() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while rounds[sequence]!.arrived < size {
            let missing = rounds[sequence]!.contributions.indices.filter { rounds[sequence]!.contributions[$0] == nil }
            try checkPeers(missing, waiting: rank, for: kind)
            if !condition.wait(until: deadline) && rounds[sequence]!.arrived < size {
                throw CheckpointError(
                    .timedOut,
                    "rank \(rank) waited \(timeout) s in \(kind) for ranks \(missing); they are stuck or far behind"
                )
            }
        }
        let result = rounds[sequence]!.contributions.map { $0! }
        let shared = rounds[sequence]!.value
        rounds[sequence]!.departed += 1
        if rounds[sequence]!.departed == size { rounds[sequence] = nil }
        return (result, shared)
    }

    /// The value broadcast's collective: the root's value, handed to every rank without copying
    /// or encoding it.
    func shareValue<Value: Sendable>(_ value: Value?, rank: Int, root: Int) throws -> Value {
        let shared = try collective("broadcastValue", rank: rank, contribution: [], value: rank == root ? value : nil)
        guard let result = shared.value as? Value else {
            preconditionFailure("the root of a value broadcast passed no \(Value.self)")
        }
        return result
    }

    func send(_ bytes: [UInt8], from source: Int, to destination: Int, tag: Int) throws {
        guard (0..<size).contains(destination) else {
            throw CheckpointError(
                .invalidConfiguration,
                "rank \(destination) does not exist; the group has \(size) ranks"
            )
        }
        condition.lock()
        mailboxes[MailboxKey(source: source, destination: destination, tag: tag), default: []].append(bytes)
        condition.broadcast()
        condition.unlock()
    }

    func receive(from source: Int, at destination: Int, tag: Int) throws -> [UInt8] {
        guard (0..<size).contains(source) else {
            throw CheckpointError(.invalidConfiguration, "rank \(source) does not exist; the group has \(size) ranks")
        }
        let key = MailboxKey(source: source, destination: destination, tag: tag)
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while mailboxes[key]?.isEmpty ?? true {
            try checkPeers([source], waiting: destination, for: "receive(tag \(tag))")
            if !condition.wait(until: deadline) && (mailboxes[key]?.isEmpty ?? true) {
                throw CheckpointError(
                    .timedOut,
                    "rank \(destination) waited \(timeout) s for a message from rank \(source) with tag \(tag)"
                )
            }
        }
        return mailboxes[key]!.removeFirst()
    }

    /// Throws `peerFailed` when one of `peers` failed or exited. Call with the lock held.
    private func checkPeers(_ peers: [Int], waiting rank: Int, for operation: String) throws {
        for peer in peers where peer != rank {
            if let reason = failures[peer] {
                throw CheckpointError(
                    .peerFailed,
                    "rank \(peer) failed, so rank \(rank)'s \(operation) cannot complete: \(reason)"
                )
            }
            if exited.contains(peer) {
                throw CheckpointError(.peerFailed, "rank \(peer) finished without joining rank \(rank)'s \(operation)")
            }
        }
    }
}

/// One rank's view of a ``LocalGroup``.
public struct LocalCommunicator: Communicator {
    let group: LocalGroup
    /// This rank.
    public let rank: Int
    /// The group's size.
    public var size: Int { group.size }
    /// `"local group"`.
    public var transportName: String { "local group of \(group.size) threads" }
    /// `true`: every rank of the group is a thread of this process.
    public var ranksShareProcess: Bool { true }
    /// The node name given to the group for this rank, or the host name.
    public var nodeName: String { group.nodes?[rank] ?? Syscalls.hostName }

    /// Waits for every rank.
    public func barrier() throws { _ = try group.collective("barrier", rank: rank, contribution: []) }

    /// Returns `root`'s bytes on every rank.
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try checkRoot(root)
        return try group.collective("broadcast", rank: rank, contribution: rank == root ? bytes : [])[root]
    }

    /// Returns `root`'s value on every rank, handed over in memory (neither copied nor encoded).
    public func broadcastValue<Value: Codable & Sendable>(_ value: Value?, root: Int) throws -> Value {
        try checkRoot(root)
        if rank == root, value == nil { preconditionFailure("the root of a broadcast has no value") }
        return try group.shareValue(value, rank: rank, root: root)
    }

    /// Combines values element-wise across ranks.
    public func allreduce(_ values: [Int64], _ operation: ReductionOperation) throws -> [Int64] {
        var packed = ByteBuilder()
        for value in values { packed.append(value) }
        let all = try group.collective("allreduce", rank: rank, contribution: packed.bytes)
        guard all.allSatisfy({ $0.count == packed.bytes.count }) else {
            throw CheckpointError(.invalidConfiguration, "ranks passed different numbers of values to allreduce")
        }
        var result: [Int64] = []
        for index in values.indices {
            var combined: Int64?
            for contribution in all {
                var cursor = ByteCursor(Array(contribution[(index * 8)..<(index * 8 + 8)]), path: "allreduce")
                let value = Int64(bitPattern: try cursor.u64())
                combined = combined.map { operation.combine($0, value) } ?? value
            }
            result.append(combined!)
        }
        return result
    }

    /// Collects every rank's bytes on `root`.
    public func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        try checkRoot(root)
        let all = try group.collective("gather", rank: rank, contribution: bytes)
        return rank == root ? all : nil
    }

    /// A communicator of the same rank in a new group of the same size (every rank's k-th
    /// duplicate joins the same group).
    public func duplicate() -> any Communicator { group.duplicate(for: rank).communicator(rank: rank) }

    /// Queues bytes for `destination`.
    public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
        try group.send(bytes, from: rank, to: destination, tag: tag)
    }

    /// Waits for bytes from `source`.
    public func receive(from source: Int, tag: Int) throws -> [UInt8] {
        try group.receive(from: source, at: rank, tag: tag)
    }

    private func checkRoot(_ root: Int) throws {
        guard (0..<size).contains(root) else {
            throw CheckpointError(
                .invalidConfiguration,
                "root rank \(root) does not exist; the group has \(size) ranks"
            )
        }
    }
}

/// Per-rank results of ``LocalGroup/run(ranks:timeout:nodes:_:)``.
private final class Outcomes<Value: Sendable>: Sendable {
    private let results: Locked<[Result<Value, any Error>?]>

    init(count: Int) { results = Locked(Array(repeating: nil, count: count)) }

    func set(_ rank: Int, _ result: Result<Value, any Error>) { results.withLock { $0[rank] = result } }

    /// The values in rank order, or the root-cause error: the first that is not merely `peerFailed`.
    func values() throws -> [Value] {
        let results = self.results.withLock { $0 }
        let errors = results.compactMap { result -> (any Error)? in
            if case .failure(let error) = result { return error }
            return nil
        }
        if let root = errors.first(where: { ($0 as? CheckpointError)?.code != .peerFailed }) ?? errors.first {
            throw root
        }
        return results.map { try! $0!.get() }
    }
}
