import Foundation

/// When a dumper's time is up.
///
/// Normally after the request's timeout on the monotonic clock. A test that checks what happens
/// at the timeout makes it an event instead (say, "the program said it is ready"), so that the
/// outcome does not depend on how fast a loaded machine starts the program.
@_spi(Testing) public struct DumpTimer: Sendable {
    let expiry: (@Sendable () -> Void)?

    /// The request's timeout, on the monotonic clock.
    public static let monotonic = DumpTimer(expiry: nil)

    /// Time is up when `event` returns (it runs on a thread of its own), whatever the timeout says.
    public static func when(_ event: @escaping @Sendable () -> Void) -> DumpTimer { DumpTimer(expiry: event) }

    /// Waits until `finished` is signalled (`true`) or the time is up (`false`).
    func wait(_ finished: DispatchSemaphore, timeout: Double) -> Bool {
        guard let expiry else { return finished.wait(timeout: .now() + timeout) == .success }
        let expired = ExpiryFlag()
        let thread = Thread {
            expiry()
            expired.set()
            finished.signal()
        }
        thread.start()
        finished.wait()
        // Woken by the program's end or by the expiry; the expiry's extra signal, if any, is harmless
        // (the semaphore is not used again).
        return !expired.isSet
    }

    /// Starts the expiry (if any), and returns a check that says whether the time is up.
    func start(timeout: Double) -> @Sendable () -> Bool {
        guard let expiry else {
            // A deadline, not a stopwatch: a restored copy may run on a machine whose uptime is shorter.
            let deadline = DispatchTime.now() + timeout
            return { DispatchTime.now() >= deadline }
        }
        let expired = ExpiryFlag()
        let thread = Thread {
            expiry()
            expired.set()
        }
        thread.start()
        return { expired.isSet }
    }
}

/// Set once, from any thread.
private final class ExpiryFlag: Sendable {
    private let value = Locked(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
