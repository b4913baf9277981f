import Foundation
import Synchronization

/// Scheduler signals that ask a job to checkpoint and stop: Slurm's `--signal=USR1@120`, PBS,
/// and Kubernetes preemption (`SIGTERM`).
///
/// When one arrives, the next safe point checkpoints (on every rank) and then
/// ``Checkpointer/shouldStop`` turns `true`; the application finishes its loop and exits. If no
/// safe point is reached within the grace period, the signal's default action is taken (the
/// process ends, as it would have without the library).
public struct StopSignals: Sendable, Hashable {
    /// The signal numbers to handle, e.g. `[SIGTERM, SIGUSR1]`.
    public var signals: [Int32]
    /// Seconds after a signal within which a safe point must be reached; then the process ends.
    public var gracePeriod: Double

    /// Handles `signals`, ending the process `gracePeriod` seconds after one arrives if no safe point was reached.
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

/// The process-wide signal state. The handler only stores to an atomic and posts a semaphore,
/// both async-signal-safe.
enum SignalMonitor {
    /// The last stop signal received (0: none).
    static let received = Atomic<Int32>(0)
    private static let state = Locked<InstallState>(InstallState())

    private struct InstallState {
        var installed: Set<Int32> = []
        var gracePeriod = Double.infinity
        var watchdogStarted = false
    }

    /// Posted by the handler; the watchdog thread waits on it.
    private static let wakeWatchdog = Syscalls.SignalSemaphore()

    /// Installs the handler for `signals` (once per signal per process).
    static func install(_ configuration: StopSignals) {
        // Statics are initialized lazily (through `swift_once`, which is not async-signal-safe):
        // touch everything the handler uses before the handler can run.
        _ = wakeWatchdog
        _ = received.load(ordering: .relaxed)
        let handler: Syscalls.SignalHandler = { number in
            SignalMonitor.received.store(number, ordering: .relaxed)
            SignalMonitor.wakeWatchdog.post()
        }
        state.withLock { state in
            state.gracePeriod = min(state.gracePeriod, configuration.gracePeriod)
            // `Configuration.validate` admits only signals that can be handled: installing succeeds.
            for signal in configuration.signals where !state.installed.contains(signal) {
                if (try? Syscalls.installSignalHandler(signal, handler)) != nil { state.installed.insert(signal) }
            }
            if !state.watchdogStarted {
                state.watchdogStarted = true
                let thread = Thread { watchdog() }
                thread.name = "checkpoint-signal-watchdog"
                thread.start()
            }
        }
    }

    /// Waits for a signal, then gives the application the grace period to reach a safe point and
    /// exit; after that, takes the signal's default action.
    private static func watchdog() {
        wakeWatchdog.wait()
        let signal = received.load(ordering: .relaxed)
        let grace = state.withLock { $0.gracePeriod }
        Thread.sleep(forTimeInterval: grace)
        FileHandle.standardError.write(
            Data("swift-checkpoint: no safe point within \(grace) s of signal \(signal); stopping now\n".utf8)
        )
        Syscalls.takeDefaultAction(of: signal)
    }

    /// Whether a stop signal has arrived.
    static var isPending: Bool { received.load(ordering: .relaxed) != 0 }
}
