import Dispatch
import Synchronization

/// Runs `count` independent work items on up to `threads` threads, each with its own worker
/// state (a zstd context and scratch buffers), and rethrows the first error.
enum ParallelWork {
    static func run<Worker>(
        count: Int,
        threads: Int,
        makeWorker: () throws(CheckpointError) -> Worker,
        body: (Worker, Int) throws(CheckpointError) -> Void
    ) throws(CheckpointError) {
        guard count > 0 else { return }
        let lanes = max(1, min(threads, count))
        if lanes == 1 {
            let worker = try makeWorker()
            for index in 0..<count { try body(worker, index) }
            return
        }
        let next = Atomic<Int>(0)
        let failure = Mutex<CheckpointError?>(nil)
        // `concurrentPerform` wants a `@Sendable` closure, but it returns only after every
        // iteration finished, so the non-escaping closures it runs cannot outlive this call.
        withoutActuallyEscaping(makeWorker) { makeWorker in
            withoutActuallyEscaping(body) { body in
                let work = UncheckedBox((makeWorker, body))
                DispatchQueue.concurrentPerform(iterations: lanes) { _ in
                    do throws(CheckpointError) {
                        let worker = try work.value.0()
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
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
