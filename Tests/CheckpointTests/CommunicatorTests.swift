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
            let fromRoot = try communicator.broadcast(rank == 0 ? [7, 8, 9] : [], root: 0)
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

    /// A `Codable` value the typed collectives carry as JSON.
    struct Settings: Codable, Equatable {
        var name: String
        var weights: [Double]
    }

    @Test("Typed collectives carry BitwiseCopyable arrays and Codable values", arguments: [1, 2, 4])
    func typedCollectives(ranks: Int) throws {
        let results = try LocalGroup.run(ranks: ranks, timeout: 30) { communicator in
            let rank = communicator.rank
            let field = (0..<4).map { Double(rank) + Double($0) / 4 }
            let next = (rank + 1) % ranks
            let previous = (rank + ranks - 1) % ranks
            try communicator.send(field, to: next, tag: 3)
            let halo = try communicator.receive([Double].self, from: previous, tag: 3)
            #expect(halo == (0..<4).map { Double(previous) + Double($0) / 4 })
            let ring = try communicator.exchange(send: [Int32(rank)], to: next, receiveFrom: previous, tag: 4)
            #expect(ring == [Int32(previous)])

            let counts = try communicator.broadcast(rank == 0 ? [Int64.max, -1] : [], root: 0)
            #expect(counts == [Int64.max, -1])
            let gathered = try communicator.gather(Array(repeating: Float(rank), count: rank), root: 0)
            #expect(gathered == (rank == 0 ? (0..<ranks).map { Array(repeating: Float($0), count: $0) } : nil))
            let everyone = try communicator.allgather([SIMD2<Double>(Double(rank), 1)])
            #expect(everyone == (0..<ranks).map { [SIMD2<Double>(Double($0), 1)] })

            let settings = Settings(name: "rank \(rank)", weights: [.nan, .infinity, Double(rank)])
            let fromRoot = try communicator.broadcast(value: settings, root: 0)
            #expect(fromRoot.name == "rank 0")
            try communicator.send(value: settings, to: next, tag: 5)
            let received = try communicator.receive(value: Settings.self, from: previous, tag: 5)
            #expect(received.name == "rank \(previous)" && received.weights[1] == .infinity)
            let all = try communicator.allgather(value: settings)
            #expect(all.map(\.name) == (0..<ranks).map { "rank \($0)" })
            let atRoot = try communicator.gather(value: rank, root: ranks - 1)
            #expect(atRoot == (rank == ranks - 1 ? Array(0..<ranks) : nil))
            return all.map { $0.weights[2] }
        }
        #expect(results.allSatisfy { $0 == (0..<ranks).map(Double.init) })
    }

    @Test(
        "A value broadcast gives every rank the root's value: in memory in a local group, as JSON by default",
        arguments: [1, 3, 5]
    )
    func valueBroadcast(ranks: Int) throws {
        let results = try LocalGroup.run(ranks: ranks, timeout: 30) { communicator -> [String] in
            let rank = communicator.rank
            let last = ranks - 1
            let settings = Settings(name: "rank \(rank)", weights: [Double(rank)])
            let local = try communicator.broadcastValue(rank == last ? settings : nil, root: last)
            // The protocol's default, which other communicators (MPI) use: JSON bytes.
            let encoded = try communicator.broadcastFromRoot(rank == 0 ? settings : nil, root: 0)
            let twice = try communicator.broadcastValue(rank == 0 ? [rank, 7] : nil, root: 0)
            return [local.name, encoded.name, "\(twice)"]
        }
        #expect(results.allSatisfy { $0 == ["rank \(ranks - 1)", "rank 0", "[0, 7]"] })
    }

    @Test("The commit agreement gives every rank the lowest failing rank's failure, or success", arguments: [1, 2, 5])
    func agreement(ranks: Int) throws {
        let results = try LocalGroup.run(ranks: ranks, timeout: 30) { communicator -> [String] in
            let rank = communicator.rank
            let success: Shared<Bool> = .success(true)
            let allSucceeded = try communicator.agreement(success)
            func failing(_ ranks: Set<Int>) -> Shared<Bool> {
                ranks.contains(rank)
                    ? .failure(RankFailure(rank: rank, code: "ioFailure", message: "rank \(rank)")) : success
            }
            let someFailed = try communicator.agreement(failing([ranks - 1, ranks / 2]))
            return [allSucceeded, someFailed].map { result in
                switch result {
                case .success: "ok"
                case .failure(let failure): failure.message
                }
            }
        }
        #expect(results.allSatisfy { $0 == ["ok", "rank \(ranks / 2)"] })
    }

    @Test("A typed receive of the wrong type is an error, not a guess")
    func typedMismatch() throws {
        let communicator = SingleProcessCommunicator()
        try communicator.send([UInt8](repeating: 1, count: 5), to: 0, tag: 1)
        let partial = try #require(throws: CheckpointError.self) {
            try communicator.receive([Double].self, from: 0, tag: 1)
        }
        #expect(partial.code == .typeMismatch)
        try communicator.send([Double]([1.5, 2.5]), to: 0, tag: 2)
        let notJSON = try #require(throws: CheckpointError.self) {
            try communicator.receive(value: Settings.self, from: 0, tag: 2)
        }
        #expect(notJSON.code == .decodingFailed)
    }

    @Test("The single-process communicator")
    func single() throws {
        let communicator = SingleProcessCommunicator()
        #expect(communicator.rank == 0 && communicator.size == 1)
        #expect(try communicator.broadcast([1], root: 0) == [1])
        #expect(try communicator.allreduce([3], .sum) == [3])
        #expect(try communicator.gather([2], root: 0) == [[2]])
        try communicator.send([4], to: 0, tag: 1)  // an array literal is bytes, as before the typed overloads
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
