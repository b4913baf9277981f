import Foundation

/// A thread of its own that runs a checkpointer's blocking work (file I/O, `fsync`, collectives
/// that wait for other ranks) for `async` callers, so that they suspend instead of blocking a
/// thread of Swift's cooperative pool, which has only as many threads as cores.
///
/// The thread starts at the first job (a program that never calls an `async` method never has
/// it) and runs jobs one at a time, in the order they came.
final class BlockingWorker: @unchecked Sendable {
    private let name: String
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var started = false
    private var stopping = false

    init(name: String) { self.name = name }

    /// Runs `body` on the worker's thread; the caller suspends until it returns.
    ///
    /// `body` and its result cross threads once, while the caller waits: the same hand-over as
    /// a `sending` value, which `UncheckedBox` carries.
    func run<Value>(_ body: @escaping () throws -> Value) async throws -> Value {
        let work = UncheckedBox(body)
        let result = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<UncheckedBox<Value>, any Error>) in
            enqueue { continuation.resume(with: Result { UncheckedBox(try work.value()) }) }
        }
        return result.value
    }

    /// Lets the thread return once its queue is empty.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func enqueue(_ job: @escaping () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        jobs.append(job)
        if !started {
            started = true
            // The thread keeps the worker alive until `stop()` lets it return.
            let thread = Thread { [self] in self.serve() }
            thread.name = name
            thread.stackSize = 4 << 20
            thread.start()
        }
        condition.signal()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            guard !jobs.isEmpty else {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
