/// A plain struct whose stored fields are recorded in checkpoints by name, offset and numeric type.
///
/// Arrays of any `BitwiseCopyable` type are saved as their raw bytes. For a plain struct the
/// checkpoint records only its size and type name, so other tools see opaque bytes. Declare the
/// fields, and `ckpt extract` writes a NumPy structured array (`a["mass"]`), the Python reader
/// builds the same dtype, `ckpt inspect` lists them, and a restore checks that the type still lays
/// them out the same way:
///
/// ```swift
/// struct Particle: StructuredElement {
///     var position: SIMD3<Float>
///     var mass: Double
///     var charge: Int32
///
///     static let fields: [ElementType.Field] = [
///         .field("position", \Particle.position),
///         .field("mass", \Particle.mass),
///         .field("charge", \Particle.charge),
///     ]
/// }
/// ```
///
/// Fields are recorded in the manifest when an array of the type is saved. They must lie inside the
/// type's stride without overlapping, with unique names of 1 to
/// ``ElementType/maximumFieldNameLength`` printable ASCII characters, at most
/// ``ElementType/maximumFieldCount`` of them; the save throws `invalidFields` before anything is
/// written otherwise. Padding between fields needs no declaration, and fields may be left out
/// (their bytes are still saved and restored). Numeric types and SIMD vectors the library already
/// records as numbers ignore this conformance.
public protocol StructuredElement: BitwiseCopyable {
    /// The stored fields to record, in any order; the key-path helpers
    /// (``ElementType/Field/field(_:_:)``) compute the offsets.
    static var fields: [ElementType.Field] { get }
}
