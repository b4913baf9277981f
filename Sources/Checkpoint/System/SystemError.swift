#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: the operation and its `errno`.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    /// The `errno` value the call set.
    public var errno: Int32
    /// The call that failed, e.g. `"fsync"`.
    public var operation: String
    /// `operation: strerror(errno) (errno N)`.
    public var description: String { "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }
}
