#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Here, not in Errors/: `strerror` and the `errno` names come from the C library, which only
// System/ imports.

extension CheckpointError {
    /// Maps a failed system call's `errno` to an error with a code and a message that says what to do.
    static func system(_ operation: String, errno number: Int32, path: String?) -> CheckpointError {
        let reason = String(cString: strerror(number))
        let underlying = SystemError(errno: number, operation: operation)
        switch number {
        case ENOENT, ENOTDIR:
            return CheckpointError(
                .notFound,
                "\(operation) failed: \(reason); check that the path exists",
                path: path,
                underlying: underlying
            )
        case EACCES, EPERM, EROFS:
            return CheckpointError(
                .permissionDenied,
                "\(operation) failed: \(reason); check ownership and permissions",
                path: path,
                underlying: underlying
            )
        case ENOSPC, EDQUOT:
            return CheckpointError(
                .diskFull,
                "\(operation) failed: \(reason); free space or choose another checkpoint directory",
                path: path,
                underlying: underlying
            )
        default:
            return CheckpointError(.ioFailure, "\(operation) failed: \(reason)", path: path, underlying: underlying)
        }
    }
}
