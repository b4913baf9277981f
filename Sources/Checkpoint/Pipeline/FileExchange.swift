import Foundation

/// Streams files from rank to rank in bounded memory: partner copies, and the recovery of a lost
/// rank's files from its partner.
///
/// Every rank sends to at most one rank and receives from at most one, and the senders and
/// receivers form a permutation (``PartnerMap``). The transfer runs in rounds that every rank of
/// the communicator takes part in: in each round a rank sends one message (a file's header, one
/// part of at most ``partSize`` bytes, the end, or nothing) and receives one. A rank can only be
/// one round ahead of the rank it sends to, so at most two parts per rank are ever in flight:
/// memory stays a few part sizes whatever the file sizes, with buffered sends (``LocalGroup``) as
/// with MPI's. A rank that fails locally keeps taking part in every round, so no rank hangs.
struct FileExchange {
    /// The largest message: a part of a file.
    static let partSize = 4 << 20

    /// A file to send: the name it is stored under and where its bytes come from.
    struct Outgoing {
        var name: String
        var source: any ByteSource
    }

    let communicator: any Communicator
    let tag: Int
    var partSize = FileExchange.partSize

    private enum Kind: UInt8 {
        case idle = 0
        case header = 1
        case part = 2
        case end = 3
        case failed = 4
    }

    /// Runs the exchange (collective: every rank calls it, with or without files).
    /// - Parameters:
    ///   - outgoing: The files this rank sends, or its failure (the receiver learns it); `nil`
    ///     when it sends nothing.
    ///   - destination: The rank to send to (`nil`: none).
    ///   - origin: The rank to receive from (`nil`: none).
    ///   - store: Opens a sink for a received file (name, size); `nil` discards what arrives.
    /// - Returns: The received files' names, or the sender's or this rank's failure; `nil` when
    ///   nothing was to be received.
    func run(
        sending outgoing: Result<[Outgoing], CheckpointError>?,
        to destination: Int?,
        from origin: Int?,
        store: ((String, Int) throws(CheckpointError) -> any ByteSink)?
    ) throws -> Shared<[String]>? {
        let rank = communicator.rank
        var messages = Messages(outgoing: destination == nil ? nil : outgoing, partSize: partSize, rank: rank)
        let rounds = try communicator.allreduce([Int64(messages.count)], .max)[0]
        var receiver = Receiver(origin: origin, store: store, rank: rank)
        for _ in 0..<rounds {
            if let destination { try communicator.send(messages.next(), to: destination, tag: tag) }
            if let origin { receiver.accept(try communicator.receive(from: origin, tag: tag)) }
        }
        return origin == nil ? nil : receiver.result
    }

    /// The messages one rank sends, produced a part at a time.
    private struct Messages {
        let files: [Outgoing]
        let failure: RankFailure?
        let partSize: Int
        let rank: Int
        let count: Int
        private var file = 0
        private var offset = -1
        private var finished = false

        init(outgoing: Result<[Outgoing], CheckpointError>?, partSize: Int, rank: Int) {
            self.partSize = partSize
            self.rank = rank
            switch outgoing {
            case nil:
                files = []
                failure = nil
                count = 0
            case .failure(let error):
                files = []
                failure = RankFailure(rank: rank, error: error)
                count = 1
            case .success(let files):
                var sizes: [Int] = []
                var failure: RankFailure?
                for file in files {
                    do { sizes.append(try file.source.size()) } catch {
                        failure = RankFailure(rank: rank, error: error)
                        break
                    }
                }
                self.files = failure == nil ? files : []
                self.failure = failure
                count = failure == nil ? sizes.reduce(1) { $0 + 1 + ($1 + partSize - 1) / partSize } : 1
            }
        }

        mutating func next() -> [UInt8] {
            if finished { return [Kind.idle.rawValue] }
            if let failure {
                finished = true
                return Self.failed(failure)
            }
            guard file < files.count else {
                finished = true
                return [Kind.end.rawValue]
            }
            let current = files[file]
            do {
                let size = try current.source.size()
                if offset < 0 {
                    offset = 0
                    var header = ByteBuilder()
                    header.append(Kind.header.rawValue)
                    header.append(UInt64(size))
                    header.append(contentsOf: Array(current.name.utf8))
                    if size == 0 { advance() }
                    return header.bytes
                }
                let count = min(partSize, size - offset)
                var part = [UInt8](repeating: Kind.part.rawValue, count: 1 + count)
                try withTypedThrows {
                    try part.withUnsafeMutableBytes { buffer in
                        try current.source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[1...]), at: offset)
                    }
                }
                offset += count
                if offset >= size { advance() }
                return part
            } catch {
                // The receiver drops what it got; this rank idles through the remaining rounds.
                finished = true
                return Self.failed(RankFailure(rank: rank, error: error))
            }
        }

        private mutating func advance() {
            file += 1
            offset = -1
        }

        private static func failed(_ failure: RankFailure) -> [UInt8] {
            [Kind.failed.rawValue] + ((try? JSONCoding.encoder.encode(failure)).map(Array.init) ?? [])
        }
    }

    /// What one rank receives, stored as it arrives.
    private struct Receiver {
        let origin: Int?
        let store: ((String, Int) throws(CheckpointError) -> any ByteSink)?
        let rank: Int
        private var sink: (any ByteSink)?
        private var remaining = 0
        private var names: [String] = []
        private var failure: RankFailure?
        private var ended = false

        init(origin: Int?, store: ((String, Int) throws(CheckpointError) -> any ByteSink)?, rank: Int) {
            self.origin = origin
            self.store = store
            self.rank = rank
        }

        var result: Shared<[String]> {
            if let failure { return .failure(failure) }
            guard ended else {
                return .failure(RankFailure(rank: rank, code: "ioFailure", message: "a file transfer ended early"))
            }
            return .success(names)
        }

        mutating func accept(_ message: [UInt8]) {
            guard let kind = message.first.flatMap(Kind.init(rawValue:)) else {
                fail(RankFailure(rank: rank, code: "corruptData", message: "a file transfer sent a malformed message"))
                return
            }
            do throws(CheckpointError) {
                switch kind {
                case .idle: return
                case .failed:
                    let reported = try? JSONCoding.decoder.decode(RankFailure.self, from: Data(message.dropFirst()))
                    fail(
                        reported ?? RankFailure(rank: origin ?? rank, code: "peerFailed", message: "the sender failed")
                    )
                case .end:
                    if sink != nil || remaining != 0 {
                        fail(RankFailure(rank: rank, code: "ioFailure", message: "a file transfer ended mid-file"))
                    }
                    ended = true
                case .header:
                    var cursor = ByteCursor(Array(message.dropFirst()), path: "transfer from rank \(origin ?? -1)")
                    let size = Int(try cursor.u64())
                    let name = String(decoding: message.dropFirst(9), as: UTF8.self)
                    guard failure == nil, let store else { return }
                    let sink = try store(name, size)
                    names.append(name)
                    remaining = size
                    if size == 0 { try finishFile(sink) } else { self.sink = sink }
                case .part:
                    guard failure == nil, let sink else { return }
                    let count = message.count - 1
                    guard count <= remaining else {
                        throw CheckpointError(.corruptData, "a file transfer sent more bytes than announced")
                    }
                    try withTypedThrows {
                        try message.withUnsafeBytes { bytes in
                            try sink.writeAll(UnsafeRawBufferPointer(rebasing: bytes[1...]))
                        }
                    }
                    remaining -= count
                    if remaining == 0 {
                        self.sink = nil
                        try finishFile(sink)
                    }
                }
            } catch {
                fail(RankFailure(rank: rank, error: error))
            }
        }

        private func finishFile(_ sink: any ByteSink) throws(CheckpointError) {
            try sink.sync()
            sink.close()
        }

        private mutating func fail(_ failure: RankFailure) {
            if self.failure == nil { self.failure = failure }
            sink?.close()
            sink = nil
        }
    }
}
