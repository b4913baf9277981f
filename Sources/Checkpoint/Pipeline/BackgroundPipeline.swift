import Foundation

/// One background thread per checkpointer that filters, compresses, writes, syncs and commits
/// checkpoints while the application computes. At most one checkpoint is in flight.
final class BackgroundPipeline: @unchecked Sendable {
    /// The duplicate communicator the background commits on, so its collectives never mix with
    /// the application's.
    let communicator: any Communicator
    let options: Checkpointer.Configuration.AsynchronousOptions
    /// Staging buffers kept between checkpoints, so staging copies into warm memory.
    let pool: StagingPool

    private let condition = NSCondition()
    private var job: (() throws -> Void)?
    private var busy = false
    private var failure: (any Error)?
    private var stopping = false

    init(communicator: any Communicator, options: Checkpointer.Configuration.AsynchronousOptions, name: String) {
        self.communicator = communicator
        self.options = options
        pool = StagingPool(limit: options.stagingLimit)
        // The thread keeps the pipeline alive until `stop()` lets it return.
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// Whether a checkpoint is being written.
    var isBusy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return busy
    }

    /// Whether the last background checkpoint failed (and the failure was not yet collected).
    var hasFailure: Bool {
        condition.lock()
        defer { condition.unlock() }
        return failure != nil
    }

    /// Starts `work` in the background. The pipeline must be idle.
    func submit(_ work: @escaping () throws -> Void) {
        condition.lock()
        precondition(!busy, "a background checkpoint is already in flight")
        busy = true
        job = work
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until no checkpoint is in flight; returns (and forgets) the last failure.
    func waitUntilIdle() -> (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        while busy { condition.wait() }
        defer { failure = nil }
        return failure
    }

    /// Ends the thread once it is idle.
    func stop() {
        condition.lock()
        while busy { condition.wait() }
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while job == nil && !stopping { condition.wait() }
            guard let work = job else {
                condition.unlock()
                return
            }
            job = nil
            condition.unlock()
            var error: (any Error)?
            do { try work() } catch let thrown { error = thrown }
            condition.lock()
            failure = error
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
