import Foundation
import Synchronization
import Testing

@testable import Checkpoint

#if canImport(Glibc)
import Glibc
#endif

/// Sends `signal` to this process and waits until the library's handler has counted it (the
/// kernel runs the handler on whichever thread it picks, not necessarily before `kill` returns).
/// - Throws: When the handler did not run within a minute (it is not installed).
func raiseAndAwait(_ signal: Int32) throws {
    let before = SignalMonitor.count.load(ordering: .sequentiallyConsistent)
    kill(getpid(), signal)
    for _ in 0..<60_000 where SignalMonitor.count.load(ordering: .sequentiallyConsistent) == before {
        usleep(1_000)
    }
    try #require(SignalMonitor.count.load(ordering: .sequentiallyConsistent) > before, "the handler ran")
}

/// Runs `body` as the only test that sends stop signals.
///
/// A signal reaches every checkpointer in the process that handles it (that is the point), so a
/// test that asserts that a checkpointer did *not* see a signal must not overlap another test that
/// sends one.
func withStopSignalTurn<R>(_ body: () throws -> R) rethrows -> R {
    stopSignalTurn.lock()
    defer { stopSignalTurn.unlock() }
    return try body()
}

private let stopSignalTurn = NSLock()

/// Stop signals are process-wide, and Swift Testing runs tests in parallel in one process: every
/// checkpointer must see every signal, whatever the others do.
@Suite("Stop signals with several checkpointers in one process")
struct StopSignalTests {
    static func configuration(deadline: Deadline? = nil) -> Checkpointer.Configuration {
        var configuration = testConfiguration(threads: 1)
        configuration.policy = .never
        configuration.deadline = deadline
        configuration.stopSignals = StopSignals(signals: [SIGUSR2], gracePeriod: 86_400)
        return configuration
    }

    @Test("Each checkpointer acts on a signal once; another one stopping (here at its deadline) does not hide it")
    func severalCheckpointers() throws {
        try withStopSignalTurn {
            try withTemporaryDirectory { directory in
                let first = try Checkpointer(directory: directory + "/first", configuration: Self.configuration())
                let second = try Checkpointer(directory: directory + "/second", configuration: Self.configuration())
                // Stops at its first safe point because of its deadline: before the fix, acting on any
                // stop cleared the process-wide signal flag, and the others never saw the signal.
                let early = try Checkpointer(
                    directory: directory + "/early",
                    configuration: Self.configuration(deadline: .after(seconds: 0))
                )
                #expect(try first.checkpoint(ArrayState([1.0]), step: 1) == nil, "no signal yet, policy never")
                try raiseAndAwait(SIGUSR2)
                #expect(try early.checkpoint(ArrayState([1.0]), step: 2) != nil)
                #expect(early.shouldStop)
                #expect(try first.checkpoint(ArrayState([1.0]), step: 2) != nil, "the signal reaches the first")
                #expect(first.shouldStop)
                #expect(try second.checkpoint(ArrayState([1.0]), step: 2) != nil, "and the second")
                #expect(second.shouldStop)
                #expect(
                    try first.checkpoint(ArrayState([1.0]), step: 3) == nil,
                    "one stop checkpoint, not one per step"
                )
                #expect(try CheckpointDirectory(path: directory + "/second").committedSteps() == [2])
            }
        }
    }

    @Test("A checkpointer created after a signal does not act on it")
    func laterCheckpointer() throws {
        try withStopSignalTurn {
            try withTemporaryDirectory { directory in
                let first = try Checkpointer(directory: directory + "/first", configuration: Self.configuration())
                try raiseAndAwait(SIGUSR2)
                let later = try Checkpointer(directory: directory + "/later", configuration: Self.configuration())
                #expect(try later.checkpoint(ArrayState([1.0]), step: 1) == nil)
                #expect(!later.shouldStop)
                #expect(try first.checkpoint(ArrayState([1.0]), step: 1) != nil)
            }
        }
    }

    @Test("The watchdog stands down once a safe point acted on the signals it waits for")
    func watchdogAcknowledged() throws {
        let watchdog = StopWatchdog()
        watchdog.acknowledge(upTo: 2)
        #expect(watchdog.waitForAcknowledgement(of: 1, seconds: 86_400))
        #expect(watchdog.waitForAcknowledgement(of: 2, seconds: 86_400))
    }

    @Test("The watchdog wakes when a safe point acts on the signal while it waits")
    func watchdogWakes() throws {
        let watchdog = StopWatchdog()
        let waiting = DispatchSemaphore(value: 0)
        let outcome = Mutex<Bool?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            waiting.signal()
            let acknowledged = watchdog.waitForAcknowledgement(of: 1, seconds: 86_400)
            outcome.withLock { $0 = acknowledged }
            finished.signal()
        }
        thread.start()
        waiting.wait()
        watchdog.acknowledge(upTo: 1)
        finished.wait()
        #expect(outcome.withLock { $0 } == true)
    }

    @Test("Without a safe point acting on the newest signal, the grace period runs out")
    func watchdogExpires() throws {
        let watchdog = StopWatchdog()
        #expect(!watchdog.waitForAcknowledgement(of: 1, seconds: 0))
        watchdog.acknowledge(upTo: 1)
        #expect(!watchdog.waitForAcknowledgement(of: 2, seconds: 0.01), "an older acknowledgement does not count")
    }
}
