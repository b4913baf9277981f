import Dispatch
import Synchronization

/// Runs independent work items on several threads, each lane with its own worker state (a zstd
/// context and scratch buffers), and rethrows the first error.
enum ParallelWork {
    /// Runs `count` items on `workers.count` threads at most; lane `i` uses `workers[i]`.
    static func run<Worker>(
        count: Int,
        workers: [Worker],
        body: (Worker, Int) throws(CheckpointError) -> Void
    ) throws(CheckpointError) {
        guard count > 0 else { return }
        precondition(!workers.isEmpty)
        let lanes = min(workers.count, count)
        if lanes == 1 {
            for index in 0..<count { try body(workers[0], index) }
            return
        }
        let next = Atomic<Int>(0)
        let failure = Locked<CheckpointError?>(nil)
        // `concurrentPerform` wants a `@Sendable` closure, but it returns only after every
        // iteration finished, so the non-escaping closure it runs cannot outlive this call.
        withoutActuallyEscaping(body) { body in
            let work = UncheckedBox((workers, body))
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                do throws(CheckpointError) {
                    let worker = work.value.0[lane]
                    while failure.withLock({ $0 == nil }) {
                        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                        if index >= count { break }
                        try work.value.1(worker, index)
                    }
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
