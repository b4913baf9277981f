import Logging

extension Logger {
    /// Logs a fact about the whole job (one every rank reached together, such as the checkpoint a
    /// restart fell back to) once: from rank 0 at `level`, and from every other rank at debug level
    /// with its rank, so that N ranks do not print N identical lines.
    func jobWide(
        _ level: Logger.Level,
        _ message: @autoclosure () -> Logger.Message,
        metadata: Logger.Metadata = [:],
        rank: Int
    ) {
        if rank == 0 {
            log(level: level, message(), metadata: metadata)
        } else {
            log(level: .debug, message(), metadata: metadata.merging(["rank": "\(rank)"]) { $1 })
        }
    }
}
