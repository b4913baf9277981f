#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Signal handling: which signals can be handled, installing a handler, waking a thread from one,
// and taking a signal's default action. A handler may only make async-signal-safe calls;
// `SignalSemaphore.post()` is one.

extension Syscalls {
    /// A function the kernel calls with the signal number. It may only make async-signal-safe
    /// calls: atomic stores, ``SignalSemaphore/post()``; no allocation, no locks.
    typealias SignalHandler = @convention(c) (Int32) -> Void

    /// Whether a handler can be installed for `signal`: a valid signal number other than
    /// `SIGKILL` and `SIGSTOP`, which cannot be caught.
    static func canHandleSignal(_ signal: Int32) -> Bool {
        signal > 0 && signal < 65 && signal != SIGKILL && signal != SIGSTOP
    }

    /// Installs `handler` for `signal` (`sigaction`), replacing the previous disposition.
    ///
    /// Calls the signal interrupts are restarted (`SA_RESTART`), and no other signal is blocked
    /// while the handler runs.
    /// - Parameters:
    ///   - signal: The signal number.
    ///   - handler: The function to call; see ``SignalHandler`` for what it may do.
    /// - Throws: The `sigaction` failure as a ``CheckpointError`` (an invalid signal number: check
    ///   it with ``canHandleSignal(_:)`` first).
    static func installSignalHandler(_ signal: Int32, _ handler: SignalHandler) throws(CheckpointError) {
        var action = sigaction()
        #if os(Linux)
        action.__sigaction_handler.sa_handler = handler
        #else
        action.__sigaction_u.__sa_handler = handler
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        guard sigaction(signal, &action, nil) == 0 else {
            throw .system("sigaction (signal \(signal))", errno: errno, path: nil)
        }
    }

    /// Unblocks `signals` in the calling thread (`pthread_sigmask`); threads it starts afterwards
    /// inherit that.
    ///
    /// A process inherits the signal mask of the thread that started it: one started from a thread
    /// that blocks signals (a libdispatch worker blocks them all) would otherwise never receive
    /// them, and its handlers would never run.
    static func unblockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        _ = pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Restores the default action of `signal` and raises it in this process: what the process
    /// would have done had no handler been installed (for a stop signal, end).
    static func takeDefaultAction(of number: Int32) {
        _ = signal(number, SIG_DFL)
        _ = raise(number)
    }

    /// A semaphore a signal handler posts and a thread waits on (an unnamed POSIX semaphore).
    ///
    /// Never destroyed: a handler may post it at any time, so it lives as long as the process.
    /// A value type over a pointer, so that posting it from a handler retains nothing.
    struct SignalSemaphore: @unchecked Sendable {
        private let semaphore: UnsafeMutablePointer<sem_t>

        /// Creates a semaphore whose count is 0.
        init() {
            semaphore = .allocate(capacity: 1)
            sem_init(semaphore, 0, 0)
        }

        /// Adds one to the count, waking a waiter. Async-signal-safe (`sem_post`).
        func post() {
            sem_post(semaphore)
        }

        /// Waits until the count is positive and takes one from it. A signal that interrupts the
        /// wait (`EINTR`, the only failure of a valid semaphore) does not end it.
        func wait() {
            while sem_wait(semaphore) != 0 {}
        }
    }
}
