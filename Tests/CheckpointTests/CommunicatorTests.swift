import Foundation
import Testing

@testable import Checkpoint

@Suite("Communicators")
struct CommunicatorTests {
    @Test("Collectives and messages give the same answers on every rank", arguments: [1, 2, 3, 4, 8])
    func collectives(ranks: Int) throws {
        let results = try LocalGroup.run(ranks: ranks, timeout: 30) { communicator in
            let rank = communicator.rank
            try communicator.barrier()
            let fromRoot: [UInt8] = try communicator.broadcast(rank == 0 ? [7, 8, 9] : [], root: 0)
            let fromLast = try communicator.broadcast(rank == ranks - 1 ? [UInt8(ranks)] : [1, 2], root: ranks - 1)
            let minimum = try communicator.allreduce([Int64(rank), -Int64(rank)], .min)
            let maximum = try communicator.allreduce([Int64(rank), -Int64(rank)], .max)
            let sum = try communicator.allreduce(Int64(rank + 1), .sum)
            let gathered = try communicator.gather([UInt8(rank)], root: ranks - 1)
            let everyone = try communicator.allgather(Array(repeating: UInt8(rank), count: rank))
            let all = try communicator.allTrue(true)
            let anyOdd = try communicator.anyTrue(rank % 2 == 1)
            // A ring where every rank sends before it receives: buffered sends cannot deadlock.
            let next = (rank + 1) % ranks
            let previous = (rank + ranks - 1) % ranks
            let ring = try communicator.exchange(send: [UInt8(rank)], to: next, receiveFrom: previous, tag: 5)
            return Outcome(
                fromRoot: fromRoot,
                fromLast: fromLast,
                minimum: minimum,
                maximum: maximum,
                sum: sum,
                gathered: gathered,
                everyone: everyone,
                all: all,
                anyOdd: anyOdd,
                ring: ring
            )
        }
        for (rank, result) in results.enumerated() {
            #expect(result.fromRoot == [7, 8, 9])
            #expect(result.fromLast == [UInt8(ranks)])
            #expect(result.minimum == [0, -Int64(ranks - 1)])
            #expect(result.maximum == [Int64(ranks - 1), 0])
            #expect(result.sum == Int64(ranks * (ranks + 1) / 2))
            #expect(result.gathered == (rank == ranks - 1 ? (0..<ranks).map { [UInt8($0)] } : nil))
            #expect(result.everyone == (0..<ranks).map { Array(repeating: UInt8($0), count: $0) })
            #expect(result.all)
            #expect(result.anyOdd == (ranks > 1))
            #expect(result.ring == [UInt8((rank + ranks - 1) % ranks)])
        }
    }

    struct Outcome: Sendable {
        var fromRoot: [UInt8]
        var fromLast: [UInt8]
        var minimum: [Int64]
        var maximum: [Int64]
        var sum: Int64
        var gathered: [[UInt8]]?
        var everyone: [[UInt8]]
        var all: Bool
        var anyOdd: Bool
        var ring: [UInt8]?
    }

    struct Boom: Error {}

    @Test("A rank that throws makes its peers' collectives fail at once, and the root cause surfaces")
    func peerThrows() throws {
        let survivors = Survivors()
        #expect(throws: Boom.self) {
            try LocalGroup.run(ranks: 4, timeout: 600) { communicator in
                if communicator.rank == 2 { throw Boom() }
                do { try communicator.barrier() } catch let error as CheckpointError {
                    survivors.record(error.code)
                    throw error
                }
            }
        }
        #expect(survivors.codes == [.peerFailed, .peerFailed, .peerFailed])
    }

    @Test("A rank that returns early, or a receive nobody answers, fails instead of hanging")
    func peerExits() throws {
        let error = try #require(throws: CheckpointError.self) {
            try LocalGroup.run(ranks: 3, timeout: 600) { communicator in
                if communicator.rank == 0 { return }
                _ = try communicator.receive(from: 0, tag: 1)
            }
        }
        #expect(error.code == .peerFailed)
    }

    @Test("A stuck peer makes the others time out")
    func timeout() throws {
        let group = LocalGroup(size: 2, timeout: 0.2)
        let error = try #require(throws: CheckpointError.self) { try group.communicator(rank: 0).barrier() }
        #expect(error.code == .timedOut)
        #expect(error.message.contains("ranks [1]"))
        let receive = try #require(throws: CheckpointError.self) {
            try group.communicator(rank: 1).receive(from: 0, tag: 3)
        }
        #expect(receive.code == .timedOut)
    }

    @Test("Ranks that call different collectives get an error, not a wrong answer")
    func mismatchedCollectives() throws {
        #expect(throws: CheckpointError.self) {
            try LocalGroup.run(ranks: 2, timeout: 30) { communicator in
                if communicator.rank == 0 {
                    try communicator.barrier()
                } else {
                    _ = try communicator.gather([1], root: 0)
                }
            }
        }
    }

    @Test("The single-process communicator")
    func single() throws {
        let communicator = SingleProcessCommunicator()
        #expect(communicator.rank == 0 && communicator.size == 1)
        #expect(try communicator.broadcast([1], root: 0) == [1])
        #expect(try communicator.allreduce([3], .sum) == [3])
        #expect(try communicator.gather([2], root: 0) == [[2]])
        try communicator.send([4], to: 0, tag: 1)
        #expect(try communicator.receive(from: 0, tag: 1) == [4])
        #expect(throws: CheckpointError.self) { try communicator.receive(from: 0, tag: 1) }
        #expect(throws: CheckpointError.self) { try communicator.send([1], to: 1, tag: 1) }
    }
}

final class Survivors: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [CheckpointError.Code] = []
    func record(_ code: CheckpointError.Code) {
        lock.lock()
        recorded.append(code)
        lock.unlock()
    }
    var codes: [CheckpointError.Code] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }
}
