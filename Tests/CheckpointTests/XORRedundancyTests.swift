import Foundation
import Logging
import Testing

@_spi(Testing) @testable import Checkpoint

@Suite("XOR redundancy sets")
struct XORRedundancyTests {
    // MARK: Arithmetic and sets

    @Test("Every single lost shard is rebuilt from the others' shards and parities", arguments: [2, 3, 4, 8])
    func parityMath(setSize: Int) {
        var random = SystemRandomNumberGenerator()
        for trial in 0..<20 {
            // Unequal lengths, including empty shards and a set whose shards are all short.
            let shards = (0..<setSize).map { member -> [UInt8] in
                let length = trial == 0 ? member : Int.random(in: 0...300, using: &random)
                return (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            let parities = (0..<setSize).map { XORParity.parity(position: $0, shards: shards) }
            for lost in 0..<setSize {
                var survivors = shards
                survivors[lost] = []
                var kept = parities
                kept[lost] = []
                let rebuilt = XORParity.rebuild(
                    lost: lost,
                    length: shards[lost].count,
                    shards: survivors,
                    parities: kept
                )
                #expect(rebuilt == shards[lost], "set of \(setSize), member \(lost) lost")
            }
        }
    }

    @Test("Each part of each member is in exactly one other member's parity")
    func partAssignment() {
        for setSize in 2...9 {
            for member in 0..<setSize {
                let parts = (0..<setSize).filter { $0 != member }.map {
                    XORParity.part(of: member, heldBy: $0, setSize: setSize)
                }
                #expect(parts.sorted() == Array(0..<setSize - 1))
                for part in 0..<setSize - 1 {
                    let holder = XORParity.holder(ofPart: part, of: member, setSize: setSize)
                    #expect(holder != member)
                    #expect(XORParity.part(of: member, heldBy: holder, setSize: setSize) == part)
                }
            }
        }
    }

    @Test("Set members are on different nodes; a single leftover rank joins the last set")
    func sets() throws {
        let nodes = ["b", "a", "c", "a", "b", "c"]
        let sets = XORSets(nodes: nodes, setSize: 3)
        #expect(sets.sets == [[1, 0, 2], [3, 4, 5]])
        #expect(!sets.membersShareNode)
        for set in sets.sets { #expect(Set(set.map { nodes[$0] }).count == set.count) }
        let leftover = XORSets(nodes: ["a", "b", "c", "d", "a", "b", "c"], setSize: 3)
        #expect(leftover.sets == [[0, 1, 2], [3, 4, 5, 6]])
        #expect(!leftover.membersShareNode)
        #expect(XORSets(nodes: ["a", "b", "c", "a", "b"], setSize: 3).sets == [[0, 1, 2], [3, 4]])
        #expect(XORSets(nodes: ["a", "a", "b", "c"], setSize: 3).membersShareNode)
    }

    @Test("Invalid XOR settings are rejected with what to do")
    func invalidConfiguration() throws {
        var configuration = Checkpointer.Configuration()
        configuration.redundancy = .init(localDirectory: "/tmp/x", xorSetSize: 2)
        let error = #expect(throws: CheckpointError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("partnerCopy") == true)
        configuration.redundancy = .init(localDirectory: "/tmp/x", xorSetSize: 3)
        #expect(throws: Never.self) { try configuration.validate() }

        let tooMany = #expect(throws: CheckpointError.self) {
            _ = try XORSets.validated(nodes: ["a", "b"], setSize: 3)
        }
        #expect(tooMany?.code == .invalidConfiguration)
        #expect(tooMany?.message.contains("at most 2") == true)
        let fewNodes = #expect(throws: CheckpointError.self) {
            _ = try XORSets.validated(nodes: ["a", "b", "a", "b"], setSize: 3)
        }
        #expect(fewNodes?.code == .invalidConfiguration)
        #expect(fewNodes?.message.contains("2 nodes") == true)

        // A checkpointer on too few nodes fails on every rank, with that error.
        try withTemporaryDirectory { root in
            let errors = try LocalGroup.run(ranks: 4, timeout: 60, nodes: ["a", "a", "b", "b"]) { communicator in
                do {
                    _ = try Checkpointer(
                        directory: root + "/shared",
                        communicator: communicator,
                        configuration: Self.configuration(local: root + "/local", setSize: 3)
                    )
                    return CheckpointError.Code.ioFailure
                } catch let error as CheckpointError { return error.code }
            }
            #expect(errors == Array(repeating: .invalidConfiguration, count: 4))
        }
    }

    @Test("A damaged or truncated parity file is refused with a clear error")
    func damagedParityFile() throws {
        try withTemporaryDirectory { root in
            let shards: [[UInt8]] = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
            let header = XORParity.Header(
                position: 0,
                members: shards.enumerated().map { XORParity.Member(rank: $0, length: $1.count, sha256: sha256($1)) },
                partSize: XORParity.partSize(lengths: shards.map(\.count))
            )
            var file = header.encoded() + XORParity.parity(position: 0, shards: shards)
            file += sha256(file)
            let path = root + "/xor-00000.parity"
            try writeFile(path, file)
            #expect(try XORParity.Header.read(OpenFile.openForReading(path)) == header)
            for damaged in [
                Array(file.dropLast()), Array(file.prefix(10)), [], file.enumerated().map { $0 == 40 ? $1 ^ 1 : $1 },
            ] {
                try FileManager.default.removeItem(atPath: path)
                try writeFile(path, damaged)
                let error = #expect(throws: CheckpointError.self) {
                    try XORParity.Header.read(OpenFile.openForReading(path))
                }
                #expect(error?.code == .corruptData)
            }
            // A member count no allocation may follow.
            var huge = file
            huge.replaceSubrange(12..<16, with: [0xFF, 0xFF, 0xFF, 0x7F])
            try FileManager.default.removeItem(atPath: path)
            try writeFile(path, huge)
            #expect(throws: CheckpointError.self) { try XORParity.Header.read(OpenFile.openForReading(path)) }
        }
    }

    // MARK: Whole runs

    @Test("Each single node lost is rebuilt bit-identically from its XOR sets", arguments: [3, 4, 8])
    func eachNodeLost(setSize: Int) throws {
        let nodes = Self.nodes(count: setSize, ranksPerNode: setSize == 8 ? 1 : 2)
        try withLevels { shared, local in
            try run(steps: 1...2, nodes: nodes, shared: shared, local: local, setSize: setSize)
            // The parity is 1/(S-1) of the set's largest shard, beside the shard.
            let folder = local + "/rank-00000/ckpt-000000000002"
            let shard = try readFile(folder + "/rank-00000.snap").count
            let parity = try readFile(folder + "/" + XORParity.fileName(rank: 0)).count
            #expect(parity < shard / (setSize - 1) + 2_000)
            for node in Set(nodes).sorted() {
                let copy = local + "-" + node
                try FileManager.default.copyItem(atPath: local, toPath: copy)
                defer { try? FileManager.default.removeItem(atPath: copy) }
                let lost = nodes.indices.filter { nodes[$0] == node }
                for rank in lost { try FileManager.default.removeItem(atPath: copy + "/" + Self.folder(rank)) }
                let lines = LogLines()
                #expect(
                    try restore(nodes: nodes, shared: shared, local: copy, setSize: setSize, logger: lines.logger())
                        == 2,
                    "node \(node) lost"
                )
                #expect(
                    lines.count("rebuilt this rank's lost node-local shard from its XOR set", at: .notice) == lost.count
                )
                for rank in lost {
                    #expect(try CheckpointDirectory(path: copy + "/" + Self.folder(rank)).committedSteps() == [2])
                }
            }
        }
    }

    @Test("Two members of one set lost: falls back to the flushed checkpoint, saying which set and ranks")
    func twoMembersLost() throws {
        let nodes = Self.nodes(count: 3, ranksPerNode: 2)
        try withLevels { shared, local in
            try run(steps: 1...4, nodes: nodes, shared: shared, local: local, setSize: 3)
            for rank in [0, 1] { try FileManager.default.removeItem(atPath: local + "/" + Self.folder(rank)) }
            let lines = LogLines()
            #expect(try restore(nodes: nodes, shared: shared, local: local, setSize: 3, logger: lines.logger()) == 3)
            // Once, for the newest checkpoint (step 3, older, is tried next and restored from the flush).
            let reasons = lines.lines.filter {
                $0.message
                    == "cannot rebuild from the XOR set; falling back to the partner copy or the flushed checkpoint"
                    && $0.level == .warning && $0.metadata["step"] == "4"
            }
            #expect(reasons.count == 1)
            #expect(reasons.first?.metadata["lost"] == "[0, 1]")
            #expect(reasons.first?.metadata["set"] == "[0, 1, 2]")
        }
    }

    @Test("A set that cannot rebuild, with partner copies too: the partner copy restores the newest checkpoint")
    func fallsBackToPartnerCopy() throws {
        let nodes = Self.nodes(count: 3, ranksPerNode: 1)
        try withLevels { shared, local in
            try run(steps: 1...4, nodes: nodes, shared: shared, local: local, setSize: 3, partnerCopy: true)
            // Rank 0 is lost and rank 1 (which keeps rank 0's partner copy) lost its parity.
            let parity = local + "/" + Self.folder(1) + "/ckpt-000000000004/" + XORParity.fileName(rank: 1)
            try FileManager.default.removeItem(atPath: parity)
            try FileManager.default.removeItem(atPath: local + "/" + Self.folder(0))
            #expect(
                try restore(nodes: nodes, shared: shared, local: local, setSize: 3, partnerCopy: true) == 4
            )
        }
    }

    @Test("A survivor's damaged parity: falls back to the flushed checkpoint")
    func damagedSurvivorParity() throws {
        let nodes = Self.nodes(count: 3, ranksPerNode: 1)
        try withLevels { shared, local in
            try run(steps: 1...4, nodes: nodes, shared: shared, local: local, setSize: 3)
            let parity = local + "/" + Self.folder(1) + "/ckpt-000000000004/" + XORParity.fileName(rank: 1)
            var bytes = try readFile(parity)
            bytes[bytes.count / 2] ^= 0x40
            try FileManager.default.removeItem(atPath: parity)
            try writeFile(parity, bytes)
            try FileManager.default.removeItem(atPath: local + "/" + Self.folder(0))
            #expect(try restore(nodes: nodes, shared: shared, local: local, setSize: 3) == 3)
        }
    }

    @Test("Incremental checkpoints: a lost node's shard and the older shards it uses are rebuilt")
    func incremental() throws {
        let nodes = Self.nodes(count: 4, ranksPerNode: 1)
        try withLevels { shared, local in
            // Two checkpoints: the third would be flushed, and a flushed checkpoint is full.
            try run(steps: 1...2, nodes: nodes, shared: shared, local: local, setSize: 4, incremental: true)
            let manifest = try CheckpointDirectory(path: local + "/" + Self.folder(0)).loadManifest(step: 2)
            #expect(manifest.shards[2].references == [1], "rank 2's unchanged field is referenced")
            try FileManager.default.removeItem(atPath: local + "/" + Self.folder(2))
            #expect(try restore(nodes: nodes, shared: shared, local: local, setSize: 4, incremental: true) == 2)
            #expect(try CheckpointDirectory(path: local + "/" + Self.folder(2)).committedSteps() == [1, 2])
        }
    }

    @Test("Asynchronous checkpoints write the parity in the background")
    func asynchronous() throws {
        let nodes = Self.nodes(count: 3, ranksPerNode: 2)
        try withLevels { shared, local in
            try run(steps: 1...5, nodes: nodes, shared: shared, local: local, setSize: 3, asynchronous: true)
            for rank in [2, 5] { try FileManager.default.removeItem(atPath: local + "/" + Self.folder(rank)) }
            #expect(try restore(nodes: nodes, shared: shared, local: local, setSize: 3) == 5)
        }
    }

    @Test("A crash after the parity is written leaves the previous checkpoint the newest")
    func crashAfterParity() throws {
        let nodes = Self.nodes(count: 3, ranksPerNode: 1)
        try withLevels { shared, local in
            try run(steps: 1...2, nodes: nodes, shared: shared, local: local, setSize: 3)
            _ = try LocalGroup.run(ranks: 3, timeout: 60, nodes: nodes) { communicator in
                let checkpointer = try Checkpointer(
                    directory: shared,
                    communicator: communicator,
                    configuration: Self.configuration(local: local, setSize: 3)
                )
                checkpointer.injectCrash(at: .parityWritten, occurrence: 1, by: .throwError)
                #expect(throws: CheckpointError.self) {
                    _ = try checkpointer.checkpoint(Self.state(rank: communicator.rank, step: 3), step: 3)
                }
            }
            try FileManager.default.removeItem(atPath: local + "/" + Self.folder(1))
            #expect(try restore(nodes: nodes, shared: shared, local: local, setSize: 3) == 2)
        }
    }

    // MARK: Helpers

    /// `count` simulated nodes with `ranksPerNode` ranks each, ranks dealt round-robin.
    static func nodes(count: Int, ranksPerNode: Int) -> [String] {
        (0..<count * ranksPerNode).map { "node-\($0 % count)" }
    }

    static func folder(_ rank: Int) -> String { "rank-" + zeroPadded(UInt64(rank), width: 5) }

    static func configuration(
        local: String,
        setSize: Int,
        partnerCopy: Bool = false,
        incremental: Bool = false,
        asynchronous: Bool = false
    ) -> Checkpointer.Configuration {
        var configuration = testConfiguration()
        configuration.redundancy = .init(
            localDirectory: local,
            xorSetSize: setSize,
            partnerCopy: partnerCopy,
            flushEvery: 3
        )
        if incremental { configuration.incremental = .on(fullEvery: 10) }
        if asynchronous { configuration.mode = .asynchronous() }
        return configuration
    }

    /// Rank `rank`'s state at `step`; with `incremental`, only rank 0's changes after step 1.
    static func state(rank: Int, step: Int, incremental: Bool = false) -> RankState {
        RankState(rank: rank, seed: UInt64(incremental && rank != 0 ? 1 : step) * 31)
    }

    private func withLevels(_ body: (String, String) throws -> Void) throws {
        try withTemporaryDirectory { root in try body(root + "/shared", root + "/local") }
    }

    private func run(
        steps: ClosedRange<Int>,
        nodes: [String],
        shared: String,
        local: String,
        setSize: Int,
        partnerCopy: Bool = false,
        incremental: Bool = false,
        asynchronous: Bool = false
    ) throws {
        _ = try LocalGroup.run(ranks: nodes.count, timeout: 60, nodes: nodes) { communicator in
            let checkpointer = try Checkpointer(
                directory: shared,
                communicator: communicator,
                configuration: Self.configuration(
                    local: local,
                    setSize: setSize,
                    partnerCopy: partnerCopy,
                    incremental: incremental,
                    asynchronous: asynchronous
                )
            )
            for step in steps {
                let state = Self.state(rank: communicator.rank, step: step, incremental: incremental)
                _ = try checkpointer.checkpoint(state, step: Step(step))
            }
            try checkpointer.finish()
        }
    }

    /// Restores on the same ranks; checks every rank got exactly its state of the restored step.
    private func restore(
        nodes: [String],
        shared: String,
        local: String,
        setSize: Int,
        partnerCopy: Bool = false,
        incremental: Bool = false,
        logger: Logger? = nil
    ) throws -> Int? {
        let results = try LocalGroup.run(ranks: nodes.count, timeout: 60, nodes: nodes) { communicator in
            let checkpointer = try Checkpointer(
                directory: shared,
                communicator: communicator,
                configuration: Self.configuration(
                    local: local,
                    setSize: setSize,
                    partnerCopy: partnerCopy,
                    incremental: incremental
                ),
                logger: logger ?? Logger(label: "test")
            )
            return try checkpointer.restoreLatest(RankState.self).map { ($0.state, Int($0.step.rawValue)) }
        }
        let steps = Set(results.map { $0?.1 })
        #expect(steps.count == 1, "ranks restored different steps: \(steps)")
        for (rank, result) in results.enumerated() {
            if let (state, step) = result {
                #expect(state == Self.state(rank: rank, step: step, incremental: incremental))
            }
        }
        return results[0]?.1
    }
}
