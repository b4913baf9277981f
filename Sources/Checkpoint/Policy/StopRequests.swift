import Foundation
import Synchronization

/// Scheduler signals that ask a job to checkpoint and stop: Slurm's `--signal=USR1@120`, PBS,
/// and Kubernetes preemption (`SIGTERM`).
///
/// When one arrives, the next safe point checkpoints (on every rank) and then
/// ``Checkpointer/shouldStop`` turns `true`; the application finishes its loop and exits. If no
/// safe point acts on the signal within the grace period, the signal's default action is taken
/// (the process ends, as it would have without the library); once one has, the library leaves
/// ending the process to the application. Every checkpointer in the process sees every signal;
/// the shortest grace period any of them configured applies.
public struct StopSignals: Sendable, Hashable {
    /// The signal numbers to handle, e.g. `[SIGTERM, SIGUSR1]`.
    public var signals: [Int32]
    /// Seconds after a signal within which a safe point must act on it; if none did, the process ends.
    public var gracePeriod: Double

    /// Handles `signals`, ending the process `gracePeriod` seconds after one arrives if no safe point acted on it.
    public init(signals: [Int32] = [SIGTERM, SIGUSR1], gracePeriod: Double = 120) {
        self.signals = signals
        self.gracePeriod = gracePeriod
    }
}

/// When a job must have checkpointed and stopped.
public struct Deadline: Sendable, Hashable {
    let date: Date?
    let secondsFromStart: Double?

    /// At a wall-clock time ("checkpoint and stop before 17:00").
    public static func at(_ date: Date) -> Deadline { Deadline(date: date, secondsFromStart: nil) }

    /// `seconds` after the checkpointer was created.
    public static func after(seconds: Double) -> Deadline { Deadline(date: nil, secondsFromStart: seconds) }

    /// Seconds left at `now`, for a checkpointer created at `start`.
    func remaining(now: Date, start: Date) -> Double {
        if let date { return date.timeIntervalSince(now) }
        return (secondsFromStart ?? .infinity) - now.timeIntervalSince(start)
    }
}

/// The process-wide signal state, shared by every checkpointer in the process.
///
/// The handler only adds to a counter, stores the signal number and posts a semaphore, all
/// async-signal-safe. Nothing ever resets the counter: each checkpointer compares it with the
/// count it last acted on (its ``StopSignalWatch``), so one checkpointer handling a signal (or
/// stopping at its deadline) never hides the signal from another.
enum SignalMonitor {
    /// Stop signals received since the process started.
    static let count = Atomic<Int>(0)
    /// The last stop signal received (0: none yet).
    static let lastSignal = Atomic<Int32>(0)
    /// What the watchdog waits for after a signal.
    static let watchdog = StopWatchdog()
    private static let state = Locked<InstallState>(InstallState())

    private struct InstallState {
        var installed: Set<Int32> = []
        var gracePeriod = Double.infinity
        var watchdogStarted = false
    }

    /// Posted by the handler; the watchdog thread waits on it.
    private static let wakeWatchdog = Syscalls.SignalSemaphore()

    /// Installs the handler for `signals` (once per signal per process). The grace period is the
    /// shortest any checkpointer in the process asked for.
    static func install(_ configuration: StopSignals) {
        // Statics are initialized lazily (through `swift_once`, which is not async-signal-safe):
        // touch everything the handler uses before the handler can run.
        _ = wakeWatchdog
        _ = count.load(ordering: .relaxed)
        _ = lastSignal.load(ordering: .relaxed)
        _ = watchdog
        let handler: Syscalls.SignalHandler = { number in
            SignalMonitor.lastSignal.store(number, ordering: .relaxed)
            _ = SignalMonitor.count.wrappingAdd(1, ordering: .sequentiallyConsistent)
            SignalMonitor.wakeWatchdog.post()
        }
        state.withLock { state in
            state.gracePeriod = min(state.gracePeriod, configuration.gracePeriod)
            // `Configuration.validate` admits only signals that can be handled: installing succeeds.
            for signal in configuration.signals where !state.installed.contains(signal) {
                if (try? Syscalls.installSignalHandler(signal, handler)) != nil { state.installed.insert(signal) }
            }
            // A blocked signal stays pending and its handler never runs. The thread that creates a
            // checkpointer, and the watchdog started from it, accept the stop signals (a process
            // started from a thread that blocks them inherits that mask).
            Syscalls.unblockSignals(configuration.signals)
            if !state.watchdogStarted {
                state.watchdogStarted = true
                let thread = Thread { watch() }
                thread.name = "checkpoint-signal-watchdog"
                thread.start()
            }
        }
    }

    /// Waits for each signal, then gives the application the grace period to reach a safe point
    /// that acts on it; only when none did, takes the signal's default action.
    private static func watch() {
        while true {
            wakeWatchdog.wait()
            let received = count.load(ordering: .sequentiallyConsistent)
            let signal = lastSignal.load(ordering: .relaxed)
            let grace = state.withLock { $0.gracePeriod }
            if watchdog.waitForAcknowledgement(of: received, seconds: grace) { continue }
            FileHandle.standardError.write(
                Data("swift-checkpoint: no safe point within \(grace) s of signal \(signal); stopping now\n".utf8)
            )
            Syscalls.takeDefaultAction(of: signal)
        }
    }
}

/// One checkpointer's view of the stop signals: which of them it has acted on.
final class StopSignalWatch: Sendable {
    /// The signal count this checkpointer has acted on (or that had arrived when it was created).
    private let seen = Atomic<Int>(SignalMonitor.count.load(ordering: .sequentiallyConsistent))

    init() {}

    /// Whether a stop signal arrived that this checkpointer has not acted on yet.
    var isPending: Bool {
        SignalMonitor.count.load(ordering: .sequentiallyConsistent) > seen.load(ordering: .sequentiallyConsistent)
    }

    /// A safe point acted on the signals received so far (it checkpointed, and the application is
    /// asked to stop): they are no longer pending here, and the watchdog stands down.
    func acknowledge() {
        let received = SignalMonitor.count.load(ordering: .sequentiallyConsistent)
        seen.store(received, ordering: .sequentiallyConsistent)
        SignalMonitor.watchdog.acknowledge(upTo: received)
    }
}

/// What the watchdog waits for after a stop signal: a safe point acting on it.
///
/// Acknowledgements come from ordinary threads (safe points), never from a signal handler, so a
/// condition variable is safe here.
final class StopWatchdog: @unchecked Sendable {
    /// Guards `acknowledged`; broadcast at every acknowledgement.
    private let condition = NSCondition()
    /// The highest signal count a safe point acted on.
    private var acknowledged = 0

    init() {}

    /// A safe point acted on the first `count` signals.
    func acknowledge(upTo count: Int) {
        condition.lock()
        acknowledged = max(acknowledged, count)
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until a safe point has acted on the first `count` signals, or `seconds` have passed
    /// (on the monotonic clock: a change of the wall clock only wakes the wait early, to wait again).
    /// - Returns: Whether a safe point acted on them in time.
    func waitForAcknowledgement(of count: Int, seconds: Double) -> Bool {
        let deadline = ContinuousClock.now + .seconds(min(seconds, 1e9))
        condition.lock()
        defer { condition.unlock() }
        while acknowledged < count {
            let left = ContinuousClock.now.duration(to: deadline)
            let secondsLeft = Double(left.components.seconds) + Double(left.components.attoseconds) * 1e-18
            if secondsLeft <= 0 { return false }
            _ = condition.wait(until: Date(timeIntervalSinceNow: secondsLeft))
        }
        return true
    }
}
