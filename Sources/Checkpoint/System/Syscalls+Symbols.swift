#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Syscalls {
    /// The address of a function that a library loaded into this process exports, or `nil` when
    /// none does: `dlsym(RTLD_DEFAULT, name)`. A way to call into a library that may or may not be
    /// there (DMTCP's, preloaded by `dmtcp_launch`) without linking against it.
    static func loadedSymbol(_ name: String) -> UnsafeMutableRawPointer? {
        #if canImport(Glibc)
        // glibc's RTLD_DEFAULT is the null handle; Swift does not import the macro.
        return dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)
        #else
        return dlsym(UnsafeMutableRawPointer(bitPattern: -2), name)
        #endif
    }
}
