/// A failure on one rank, in a form every rank can receive and rethrow identically.
struct RankFailure: Codable, Sendable, Hashable {
    var rank: Int
    var code: String
    var message: String

    init(rank: Int, code: String, message: String) {
        self.rank = rank
        self.code = code
        self.message = message
    }

    /// Describes `error` thrown on `rank`; non-library errors become `peerFailed` on the others.
    init(rank: Int, error: any Error) {
        self.rank = rank
        if let error = error as? CheckpointError {
            code = error.code.description
            message = error.message + (error.path.map { " (\($0))" } ?? "")
        } else {
            code = CheckpointError.Code.peerFailed.description
            message = "\(error)"
        }
    }

    /// The error every rank throws for this failure: same code, same message.
    var error: CheckpointError {
        let code = CheckpointError.Code.all.first { $0.description == self.code } ?? .peerFailed
        return CheckpointError(code, "rank \(rank): \(message)")
    }
}

/// A result that crosses ranks.
enum Shared<Value: Codable & Sendable>: Codable, Sendable {
    case success(Value)
    case failure(RankFailure)

    init(rank: Int, _ body: () throws -> Value) {
        do { self = .success(try body()) } catch { self = .failure(RankFailure(rank: rank, error: error)) }
    }

    func get() throws(CheckpointError) -> Value {
        switch self {
        case .success(let value): return value
        case .failure(let failure): throw failure.error
        }
    }
}

extension Shared: Equatable where Value: Equatable {}
extension Shared: Hashable where Value: Hashable {}
