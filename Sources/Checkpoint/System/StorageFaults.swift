#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A storage failure (or slowness) to inject into the library's system calls.
///
/// Not API: the fault-injection harness (`Scripts/torture`) and the tests use it to show that a
/// failing `write`, `fsync` or `rename` never commits a checkpoint and never loses the previous one.
@_spi(Testing) public struct StorageFault: Sendable, CustomStringConvertible {
    /// The system call a fault applies to.
    public enum Operation: String, Sendable, CaseIterable {
        /// `open` of a file for reading or creating.
        case open
        /// `write` to a shard, manifest or record.
        case write
        /// `pread` from a file.
        case read
        /// `fsync` of a file.
        case sync
        /// `fsync` of a directory.
        case syncDirectory
        /// `rename` and `renameat2(RENAME_EXCHANGE)`.
        case rename
        /// `mkdir`.
        case makeDirectory
        /// `unlink` and `rmdir`.
        case remove
    }

    /// The system call to fail.
    public var operation: Operation
    /// Only calls on a path containing every one of these texts are affected (none: every path).
    public var pathContains: [String]
    /// How many matching calls succeed before the first failure.
    public var skip: Int
    /// How many matching calls then fail (`Int.max`: all of them).
    public var count: Int
    /// The `errno` a failing call reports; `0` delays the call without failing it.
    public var errno: Int32
    /// How long every matching call sleeps first (slow storage).
    public var delay: Duration

    /// Creates a fault.
    /// - Parameters:
    ///   - operation: The system call to fail.
    ///   - pathContains: Only calls on paths containing all of these texts are affected (none: all).
    ///   - skip: Matching calls that succeed before the first failure.
    ///   - count: Matching calls that then fail.
    ///   - errno: The error number of a failing call (`EIO` by default, `0` for delay only).
    ///   - delay: A sleep before every matching call.
    public init(
        _ operation: Operation,
        pathContains: String...,
        skip: Int = 0,
        count: Int = .max,
        errno: Int32 = EIO,
        delay: Duration = .zero
    ) {
        self.operation = operation
        self.pathContains = pathContains.filter { !$0.isEmpty }
        self.skip = skip
        self.count = count
        self.errno = errno
        self.delay = delay
    }

    /// For example `sync on "rank-00002" after 3 calls: Input/output error`.
    public var description: String {
        let target = pathContains.map { " on \"\($0)\"" }.joined()
        let failure = errno == 0 ? "no failure" : String(cString: strerror(errno))
        let slow = delay == .zero ? "" : ", delayed \(delay)"
        return "\(operation.rawValue)\(target) after \(skip) calls: \(failure)\(slow)"
    }
}

/// The active set of injected storage faults (process-wide; empty in production).
@_spi(Testing) public enum StorageFaults {
    private struct Active {
        var faults: [StorageFault] = []
        var seen: [Int] = []
        var triggered = 0
    }

    private static let active = Locked(Active())

    /// Replaces the active faults.
    public static func install(_ faults: [StorageFault]) {
        active.withLock { $0 = Active(faults: faults, seen: Array(repeating: 0, count: faults.count)) }
    }

    /// Removes every fault.
    public static func removeAll() { install([]) }

    /// How many failures were injected since the last ``install(_:)``.
    public static var triggered: Int { active.withLock { $0.triggered } }

    /// How many calls each installed fault matched (its operation on its paths) since the last
    /// ``install(_:)``, failing or not: faults with `errno: 0` count the calls a scenario makes.
    public static var matchedCalls: [Int] { active.withLock { $0.seen } }

    /// Called by the system-call wrappers before `operation` on `path`: sleeps and fails as the
    /// active faults say.
    static func check(_ operation: StorageFault.Operation, _ name: String, path: String) throws(CheckpointError) {
        var delay = Duration.zero
        let failure: Int32? = active.withLock { state in
            var failure: Int32?
            for position in state.faults.indices {
                let fault = state.faults[position]
                guard fault.operation == operation,
                    fault.pathContains.allSatisfy({ path.contains($0) })
                else { continue }
                delay += fault.delay
                let call = state.seen[position]
                state.seen[position] += 1
                if failure == nil, fault.errno != 0, call >= fault.skip, call - fault.skip < fault.count {
                    failure = fault.errno
                    state.triggered += 1
                }
            }
            return failure
        }
        if delay > .zero {
            let (seconds, attoseconds) = delay.components
            usleep(UInt32(clamping: seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
        }
        if let failure { throw .system(name, errno: failure, path: path) }
    }
}
