#if MPI
/// An MPI error code with its class and the implementation's explanation.
public struct MPIError: Error, Sendable, CustomStringConvertible {
    /// The code the MPI call returned.
    public var code: Int
    /// Its error class (`MPI_Error_class`), comparable across implementations.
    public var errorClass: Int
    /// The MPI function that failed, e.g. `"MPI_Bcast"`.
    public var operation: String
    /// The text `MPI_Error_string` gave for the code.
    public var explanation: String

    /// `operation: explanation (error code, class c)`.
    public var description: String { "\(operation): \(explanation) (error \(code), class \(errorClass))" }
}
#endif
