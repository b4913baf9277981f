/// Standard-library `withUnsafeBytes` methods rethrow untyped errors; this restores the type.
@inline(__always)
func withTypedThrows<Result>(_ body: () throws -> Result) throws(CheckpointError) -> Result {
    do { return try body() } catch let error as CheckpointError { throw error } catch {
        throw CheckpointError(.ioFailure, "unexpected error: \(error)")
    }
}
