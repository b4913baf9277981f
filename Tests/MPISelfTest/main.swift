// mpi-selftest: checks MPICommunicator and the checkpointer over real MPI processes.
//
//     swift build --traits MPI --scratch-path .build-mpi
//     mpirun --oversubscribe -np 4 .build-mpi/debug/mpi-selftest [--dir DIR]
//
// (`--allow-run-as-root` too when running as root; Scripts/test-mpi does all of it.) Every
// collective is checked with real values, in both of the library's modes (MPI_THREAD_MULTIPLE,
// and serialized calls with polling), then checkpoints are saved, restored bit-identically, and a
// corrupted shard makes every rank fall back to the previous checkpoint together. Rank 0 prints
// `mpi-selftest: ok (N ranks)`; any failure prints its reason and aborts the job with status 1.
// DIR (default: the temporary directory) must be shared by all ranks; the test works in a
// subdirectory of it that it removes when it passes.
//
// `--exit-early STATUS` checks instead what happens when a rank exits while the others wait in a
// collective: the last rank calls exit(STATUS), the others a barrier it never joins. With a
// non-zero STATUS the launcher must end the job (the script checks that it does, promptly).

#if MPI
import Checkpoint
@_spi(Testing) import CheckpointMPI
import Foundation

/// Checks and reporting for one rank.
struct SelfTest {
    let mpi: MPICommunicator
    var rank: Int { mpi.rank }
    var size: Int { mpi.size }
    var last: Int { size - 1 }

    /// Prints on rank 0 only.
    func say(_ line: String) {
        if rank == 0 { print(line) }
    }

    func require(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fail(message()) }
    }

    /// Reports the failure and ends the whole job: other ranks may be waiting in a collective.
    func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("mpi-selftest: FAILED on rank \(rank): \(message)\n".utf8))
        mpi.abort(code: 1)
    }

    /// Requires `body` to throw a ``CheckpointError`` with `code`.
    func requireError(_ code: CheckpointError.Code, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            fail("\(what) did not throw")
        } catch let error as CheckpointError {
            require(error.code == code, "\(what) threw \(error.code), expected \(code): \(error)")
        } catch {
            fail("\(what) threw \(error), expected a CheckpointError \(code)")
        }
    }

    // MARK: Collectives

    func checkCollectives(on communicator: MPICommunicator) throws {
        for _ in 0..<3 { try communicator.barrier() }

        // Broadcast from the first and the last rank; other ranks pass bytes that must be ignored.
        for root in Set([0, last]).sorted() {
            let payload = pattern(count: 1000 + root, seed: UInt64(root) + 11)
            let received = try communicator.broadcast(rank == root ? payload : [0xFF, 0xEE], root: root)
            require(received == payload, "broadcast from rank \(root) delivered \(received.count) wrong bytes")
        }
        require(try communicator.broadcast([], root: last).isEmpty, "an empty broadcast delivered bytes")

        // allreduce with several values, against the reduction computed locally for every rank.
        func contribution(_ r: Int) -> [Int64] {
            [Int64(r), -3 * Int64(r), Int64(r * r) + 7, Int64.max - Int64(r), (1 << 40) + Int64(r) * 1_000_003]
        }
        for operation in [ReductionOperation.min, .max, .sum] {
            let expected = (0..<size).map(contribution).reduce(nil as [Int64]?) { partial, values in
                guard let partial else { return values }
                return zip(partial, values).map { a, b in
                    switch operation {
                    case .min: min(a, b)
                    case .max: max(a, b)
                    case .sum: a &+ b
                    }
                }
            }!
            let result = try communicator.allreduce(contribution(rank), operation)
            require(result == expected, "allreduce \(operation) gave \(result), expected \(expected)")
        }
        require(try communicator.allreduce([], .sum).isEmpty, "an empty allreduce returned values")
        require(
            try communicator.allreduce(Int64(rank + 1), .sum) == Int64(size * (size + 1) / 2),
            "allreduce of one value"
        )
        require(try communicator.allTrue(true) && !(try communicator.allTrue(rank != last)), "allTrue")
        require(try communicator.anyTrue(rank == last) && !(try communicator.anyTrue(false)), "anyTrue")

        // Gather to the first and to another root; lengths differ per rank, rank 0's is empty.
        func part(_ r: Int) -> [UInt8] { pattern(count: (r * 37) % 101 + (r == 0 ? 0 : 1), seed: UInt64(r)) }
        for root in Set([0, last, size / 2]).sorted() {
            let gathered = try communicator.gather(part(rank), root: root)
            if rank == root {
                require(gathered == (0..<size).map(part), "gather to rank \(root) delivered wrong parts")
            } else {
                require(gathered == nil, "gather returned parts on rank \(rank), which is not the root \(root)")
            }
        }
        let everything = try communicator.allgather(part(rank))
        require(everything == (0..<size).map(part), "allgather delivered wrong parts")

        // Ring: every rank sends first, then receives; buffered sends must not deadlock.
        let next = (rank + 1) % size
        let previous = (rank + size - 1) % size
        try communicator.send(Array("from \(rank)".utf8), to: next, tag: 7)
        let greeting = try communicator.receive(from: previous, tag: 7)
        require(greeting == Array("from \(previous)".utf8), "ring message from rank \(previous) was wrong")

        // Same tag: messages arrive in order. Different tags: received in any order.
        for index in 0..<3 { try communicator.send([UInt8(index), UInt8(rank)], to: next, tag: 8) }
        try communicator.send([21], to: next, tag: 21)
        try communicator.send([22], to: next, tag: 22)
        require(try communicator.receive(from: previous, tag: 22) == [22], "tag 22 message")
        require(try communicator.receive(from: previous, tag: 21) == [21], "tag 21 message")
        for index in 0..<3 {
            let message = try communicator.receive(from: previous, tag: 8)
            require(message == [UInt8(index), UInt8(previous)], "message \(index) with tag 8 arrived out of order")
        }

        // To itself, and the exchange convenience.
        try communicator.send([1, 2, 3], to: rank, tag: 30)
        require(try communicator.receive(from: rank, tag: 30) == [1, 2, 3], "message to self")
        let exchanged = try communicator.exchange(send: [UInt8(rank)], to: next, receiveFrom: previous, tag: 31)
        require(exchanged == [UInt8(previous)], "exchange")
        try communicator.send([], to: next, tag: 32)
        require(try communicator.receive(from: previous, tag: 32).isEmpty, "an empty message arrived with bytes")

        // 8 MiB: past every eager limit, so MPI uses its rendezvous protocol.
        let large = pattern(count: 8 << 20, seed: UInt64(rank) + 1000)
        try communicator.send(large, to: next, tag: 40)
        let receivedLarge = try communicator.receive(from: previous, tag: 40)
        require(receivedLarge == pattern(count: 8 << 20, seed: UInt64(previous) + 1000), "8 MiB ring message was wrong")
        let broadcastLarge = try communicator.broadcast(rank == last ? large : [], root: last)
        require(broadcastLarge == pattern(count: 8 << 20, seed: UInt64(last) + 1000), "8 MiB broadcast was wrong")

        try checkErrors(on: communicator)
    }

    /// Bad arguments throw `invalidConfiguration` on every rank and leave the communicator usable.
    func checkErrors(on communicator: MPICommunicator) throws {
        requireError(.invalidConfiguration, "send to rank \(size)") { try communicator.send([1], to: size, tag: 1) }
        requireError(.invalidConfiguration, "receive from rank -1") { _ = try communicator.receive(from: -1, tag: 1) }
        requireError(.invalidConfiguration, "send with tag -1") { try communicator.send([1], to: 0, tag: -1) }
        requireError(.invalidConfiguration, "send with tag Int.max") { try communicator.send([1], to: 0, tag: .max) }
        requireError(.invalidConfiguration, "broadcast from rank \(size)") {
            _ = try communicator.broadcast([], root: size)
        }
        requireError(.invalidConfiguration, "gather to rank -1") { _ = try communicator.gather([], root: -1) }
        if size > 1 {
            requireError(.invalidConfiguration, "allreduce with different counts") {
                _ = try communicator.allreduce(Array(repeating: 1, count: rank == 0 ? 2 : 1), .sum)
            }
        }
        try communicator.barrier()
    }

    /// A duplicate and a communicator made from a Fortran handle keep their messages apart, and
    /// collectives on two communicators from two threads at once complete.
    func checkCommunicators() throws {
        let duplicate = try mpi.duplicate() as! MPICommunicator
        let wrapped = try MPICommunicator(fortranHandle: mpi.fortranHandle)
        require(duplicate.rank == rank && wrapped.rank == rank, "ranks differ between communicators")
        require(duplicate.size == size && wrapped.size == size, "sizes differ between communicators")
        let next = (rank + 1) % size
        let previous = (rank + size - 1) % size
        try mpi.send([1], to: next, tag: 50)
        try duplicate.send([2], to: next, tag: 50)
        try wrapped.send([3], to: next, tag: 50)
        require(try wrapped.receive(from: previous, tag: 50) == [3], "the wrapped communicator got another's message")
        require(try duplicate.receive(from: previous, tag: 50) == [2], "the duplicate got another's message")
        require(try mpi.receive(from: previous, tag: 50) == [1], "the world communicator got another's message")
        requireError(.invalidConfiguration, "a bogus Fortran handle") {
            _ = try MPICommunicator(fortranHandle: 987_654)
        }

        // Collectives on the duplicate from a second thread while this one uses the wrapped communicator.
        let finished = DispatchSemaphore(value: 0)
        let background = Thread {
            defer { finished.signal() }
            do {
                for round in 0..<20 {
                    let sum = try duplicate.allreduce([Int64(round), Int64(rank)], .sum)
                    require(
                        sum == [Int64(round * size), Int64(size * (size - 1) / 2)],
                        "background allreduce \(round)"
                    )
                }
                _ = try duplicate.broadcast(pattern(count: 1 << 20, seed: 5), root: 0)
            } catch {
                fail("background collectives: \(error)")
            }
        }
        background.start()
        for round in 0..<20 {
            try wrapped.send([UInt8(round)], to: next, tag: 60)
            require(try wrapped.receive(from: previous, tag: 60) == [UInt8(round)], "foreground ring \(round)")
            _ = try wrapped.allreduce([1], .max)
        }
        finished.wait()
        try mpi.barrier()
    }

    /// The node name comes from the resource manager (`SLURMD_NODENAME` under `srun`), else from
    /// the shared-memory split: ranks with one name share a host, the name is `HOST/LEADER` with
    /// the group's lowest rank, and duplicates keep it. Rank 0 prints every rank's name.
    func checkNodeName() throws {
        let duplicate = try mpi.duplicate()
        require(duplicate.nodeName == mpi.nodeName, "a duplicate has another node name")
        let names = try mpi.allgather(value: mpi.nodeName)
        let hosts = try mpi.allgather(value: NodeName.hostName)
        if let given = NodeName.fromResourceManager() {
            require(mpi.nodeName == given, "node name '\(mpi.nodeName)', but the resource manager says '\(given)'")
        } else {
            let leader = names.firstIndex(of: mpi.nodeName) ?? -1
            require(
                mpi.nodeName == "\(hosts[leader])/\(leader)",
                "node name '\(mpi.nodeName)' is not its shared-memory group's 'HOST/LOWEST-RANK'"
            )
            for other in 0..<size where names[other] == mpi.nodeName {
                require(
                    hosts[other] == NodeName.hostName,
                    "rank \(other) shares node name \(mpi.nodeName) on another host"
                )
            }
        }
        say("node names: \(names.joined(separator: " "))")
        try mpi.barrier()
    }

    // MARK: Checkpoints

    func checkCheckpoints(base: String) throws {
        // Rank 0 names the run directory; every rank must see the same one (shared storage).
        let name = try mpi.broadcast(Array("mpi-selftest-\(getpid())".utf8), root: 0)
        let path = base + "/" + String(decoding: name, as: UTF8.self)
        let configuration = Checkpointer.Configuration(policy: .everySteps(1), threads: 1)
        let checkpointer = try Checkpointer(directory: path, communicator: mpi, configuration: configuration)

        let first = RankState(rank: rank, step: 1)
        let second = RankState(rank: rank, step: 2)
        let manifest = try checkpointer.checkpoint(first, step: 1)
        require(
            manifest?.step == 1 && manifest?.rankCount == size,
            "checkpoint at step 1 was not committed by \(size) ranks"
        )
        try checkpointer.save(second, step: 2)

        guard let restored = try checkpointer.restoreLatest(RankState.self) else { fail("no checkpoint to restore") }
        require(restored.step == 2, "restored step \(restored.step), expected 2")
        require(restored.state.bitEqual(second), "restored values of step 2 differ from the saved ones")

        // Rank 0 damages rank 1's shard of step 2 while the others wait.
        let victim = min(1, last)
        try mpi.barrier()
        if rank == 0 {
            let shard =
                CheckpointDirectory(path: path).path(for: 2) + "/" + CheckpointDirectory.shardFileName(rank: victim)
            flipByte(in: shard)
        }
        try mpi.barrier()
        guard let fallback = try checkpointer.restoreLatest(RankState.self) else {
            fail("no checkpoint after corruption")
        }
        require(
            fallback.step == 1,
            "after damaging rank \(victim)'s shard of step 2, restored step \(fallback.step), expected 1"
        )
        require(fallback.state.bitEqual(first), "restored values of step 1 differ from the saved ones")
        let steps = try mpi.allreduce([Int64(fallback.step.rawValue), -Int64(fallback.step.rawValue)], .min)
        require(steps == [1, -1], "ranks restored different steps after the corruption")

        try mpi.barrier()
        if rank == 0 { try? FileManager.default.removeItem(atPath: path) }
    }

    func flipByte(in path: String) {
        guard let file = FileHandle(forUpdatingAtPath: path) else { fail("cannot open \(path)") }
        defer { try? file.close() }
        do {
            let length = try file.seekToEnd()
            let offset = length / 2
            try file.seek(toOffset: offset)
            guard let byte = try file.read(upToCount: 1)?.first else { fail("cannot read \(path)") }
            try file.seek(toOffset: offset)
            try file.write(contentsOf: [byte ^ 0x5A])
        } catch {
            fail("cannot damage \(path): \(error)")
        }
    }
}

/// A rank's state: values that differ per rank and step, including NaN payloads, signed zeros and infinities.
struct RankState: Checkpointable {
    var rank: Int
    var step: Int
    var values: [Double]

    init(rank: Int, step: Int) {
        self.rank = rank
        self.step = step
        var generator = SplitMix(seed: UInt64(rank * 1000 + step))
        values = (0..<(20_000 + rank * 1_000)).map { index in
            index.isMultiple(of: 2) ? sin(Double(index) * 0.001 + Double(rank)) : Double(bitPattern: generator.next())
        }
        values[1] = -0.0
        values[3] = .infinity
        values[5] = Double(bitPattern: 0x7FF0_0000_0000_0001)  // a signalling NaN with a payload
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(values, as: "values")
        try writer.write(value: Int64(rank), as: "rank")
        try writer.write(value: Int64(step), as: "step")
    }

    init(from reader: SnapshotReader) throws {
        values = try reader.read([Double].self, "values")
        rank = Int(try reader.read(Int64.self, "rank"))
        step = Int(try reader.read(Int64.self, "step"))
    }

    func bitEqual(_ other: RankState) -> Bool {
        rank == other.rank && step == other.step && values.count == other.values.count
            && zip(values, other.values).allSatisfy { $0.bitPattern == $1.bitPattern }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` reproducible bytes.
func pattern(count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        var word = generator.next()
        for _ in 0..<8 where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            index += 1
        }
    }
    return bytes
}

// MARK: Main

var arguments = CommandLine.arguments.dropFirst()
var base = NSTemporaryDirectory()
var exitEarly: Int32?
while let argument = arguments.popFirst() {
    switch argument {
    case "--dir":
        guard let value = arguments.popFirst() else {
            print("mpi-selftest: --dir needs a directory")
            exit(2)
        }
        base = value
    case "--exit-early":
        guard let value = arguments.popFirst().flatMap({ Int32($0) }) else {
            print("mpi-selftest: --exit-early needs an exit status")
            exit(2)
        }
        exitEarly = value
    default:
        print("mpi-selftest: unknown argument \(argument); usage: mpi-selftest [--dir DIR] [--exit-early STATUS]")
        exit(2)
    }
}
if base.hasSuffix("/") && base.count > 1 { base.removeLast() }

let mpi: MPICommunicator
do {
    mpi = try MPICommunicator.world()
} catch {
    print("mpi-selftest: cannot start MPI: \(error)")
    exit(1)
}
let test = SelfTest(mpi: mpi)
if let exitEarly {
    if mpi.rank == mpi.size - 1 { exit(exitEarly) }
    do { try mpi.barrier() } catch { test.fail("\(error)") }
    test.fail("the barrier returned although rank \(mpi.size - 1) exited without joining it")
}
do {
    test.say("mpi-selftest: \(mpi.transportName), \(mpi.size) ranks")
    test.require(mpi.transportName.hasPrefix("MPI ("), "transportName is \(mpi.transportName)")
    test.require(try MPICommunicator.world() === mpi, "world() returned a second communicator")
    let modes = MPICommunicator.serializesCalls ? ["serialized"] : ["MPI_THREAD_MULTIPLE", "serialized"]
    for mode in modes {
        if mode == "serialized" {
            try mpi.barrier()
            MPICommunicator.forceSerializedCalls()
        }
        try test.checkCollectives(on: mpi)
        try test.checkCommunicators()
        try test.checkNodeName()
        test.say("mpi-selftest: collectives, point to point and communicators ok (\(mode))")
    }
    try test.checkCheckpoints(base: base)
    test.say("mpi-selftest: checkpoints saved, restored bit-identically, and a damaged shard falls back together")
    try mpi.barrier()
    test.say("mpi-selftest: ok (\(mpi.size) ranks)")
    try MPICommunicator.finalize()
    // After finalize, operations throw instead of calling into a finalized MPI.
    do {
        try mpi.barrier()
        print("mpi-selftest: a barrier after MPICommunicator.finalize() did not throw")
        exit(1)
    } catch {
        guard (error as? CheckpointError)?.code == .invalidConfiguration else {
            print("mpi-selftest: a barrier after MPICommunicator.finalize() threw \(error), not invalidConfiguration")
            exit(1)
        }
    }
} catch {
    test.fail("\(error)")
}
#else
print("mpi-selftest: built without MPI; build with `swift build --traits MPI` and run it with mpirun")
#endif
