/// The type of the elements of an entry, as recorded in a shard.
///
/// For `BitwiseCopyable` elements the library records the numeric ``Scalar`` when it knows one
/// (so tools can read the data as NumPy arrays and the shuffle filter knows the byte width), the
/// element's size in bytes, and the Swift type name. Restoring checks all three, so a `Float`
/// field can never be restored into a `Double` array. A plain struct that declares its fields
/// (``StructuredElement``) records them too: tools then see named fields, and a restore into a type
/// that declares other fields names the one that differs.
public struct ElementType: Hashable, Sendable, CustomStringConvertible {
    /// The numeric scalar an element is made of, or ``Scalar/opaque`` for other plain structs.
    public var scalar: Scalar
    /// Bytes per element (the type's stride).
    public var size: Int
    /// The Swift type's name, e.g. `"Swift.Double"` or `"MySim.Particle"`.
    public var typeName: String
    /// The named fields of a plain struct (``StructuredElement``), in declaration order; `nil` when
    /// none are declared or recorded.
    public var fields: [Field]?

    /// Creates a descriptor from its parts.
    ///
    /// - Parameters:
    ///   - scalar: The numeric kind of the elements, or ``Scalar/opaque``.
    ///   - size: Bytes per element.
    ///   - typeName: The Swift type's name.
    ///   - fields: The elements' named fields, for plain structs that declare them.
    public init(scalar: Scalar, size: Int, typeName: String, fields: [Field]? = nil) {
        self.scalar = scalar
        self.size = size
        self.typeName = typeName
        self.fields = fields
    }

    /// The descriptor of a `BitwiseCopyable` Swift type, with its fields when it is a
    /// ``StructuredElement`` that is not already a number or a SIMD vector.
    public static func of<Element: BitwiseCopyable>(_ type: Element.Type) -> ElementType {
        var scalar = Scalar(type) ?? .opaque
        if scalar == .opaque, let vector = type as? any SIMD.Type {
            scalar = simdScalar(vector)
        }
        let fields = scalar == .opaque ? (type as? any StructuredElement.Type)?.fields : nil
        return ElementType(
            scalar: scalar,
            size: MemoryLayout<Element>.stride,
            typeName: String(reflecting: type),
            fields: fields
        )
    }

    /// The descriptor used for `Codable` entries (UTF-8 JSON bytes).
    static func codable<Value>(_ type: Value.Type) -> ElementType {
        ElementType(scalar: .uint8, size: 1, typeName: String(reflecting: type))
    }

    /// Whether data saved as `self` may be restored as `other`: same size and, for known scalars,
    /// the same scalar kind (so `Int` and `Int64` interchange); otherwise the same type name.
    func isCompatible(with other: ElementType) -> Bool {
        guard size == other.size else { return false }
        if scalar != .opaque && scalar == other.scalar {
            return size == scalar.size || typeName == other.typeName
        }
        return typeName == other.typeName
    }

    /// `Swift.Double (float64, 8 bytes)`.
    public var description: String { "\(PrintableText.escaped(typeName)) (\(scalar), \(size) bytes)" }

    private static func simdScalar<Vector: SIMD>(_ type: Vector.Type) -> Scalar {
        Scalar(Vector.Scalar.self) ?? .opaque
    }
}

extension ElementType {
    /// The numeric kinds the format names. The raw values are the on-disk codes.
    public enum Scalar: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        /// Not a single numeric kind: a plain struct, stored as its bytes.
        case opaque = 0
        /// `Bool`, one byte.
        case bool = 1
        /// `Int8`.
        case int8 = 2
        /// `UInt8`.
        case uint8 = 3
        /// `Int16`.
        case int16 = 4
        /// `UInt16`.
        case uint16 = 5
        /// `Int32`.
        case int32 = 6
        /// `UInt32`.
        case uint32 = 7
        /// `Int64` (and `Int` on 64-bit platforms).
        case int64 = 8
        /// `UInt64` (and `UInt` on 64-bit platforms).
        case uint64 = 9
        /// `Float16`.
        case float16 = 10
        /// `Float`.
        case float32 = 11
        /// `Double`.
        case float64 = 12

        /// Bytes per scalar (0 for ``opaque``).
        public var size: Int {
            switch self {
            case .opaque: 0
            case .bool, .int8, .uint8: 1
            case .int16, .uint16, .float16: 2
            case .int32, .uint32, .float32: 4
            case .int64, .uint64, .float64: 8
            }
        }

        /// The NumPy dtype string (little-endian), e.g. `"<f8"`; `nil` for ``opaque``.
        public var numpyDescriptor: String? {
            switch self {
            case .opaque: nil
            case .bool: "|b1"
            case .int8: "|i1"
            case .uint8: "|u1"
            case .int16: "<i2"
            case .uint16: "<u2"
            case .int32: "<i4"
            case .uint32: "<u4"
            case .int64: "<i8"
            case .uint64: "<u8"
            case .float16: "<f2"
            case .float32: "<f4"
            case .float64: "<f8"
            }
        }

        /// The lower-case name, e.g. `"float64"`.
        public var description: String { name }

        private var name: String {
            switch self {
            case .opaque: "opaque"
            case .bool: "bool"
            case .int8: "int8"
            case .uint8: "uint8"
            case .int16: "int16"
            case .uint16: "uint16"
            case .int32: "int32"
            case .uint32: "uint32"
            case .int64: "int64"
            case .uint64: "uint64"
            case .float16: "float16"
            case .float32: "float32"
            case .float64: "float64"
            }
        }

        init?(_ type: Any.Type) {
            switch ObjectIdentifier(type) {
            case ObjectIdentifier(Bool.self): self = .bool
            case ObjectIdentifier(Int8.self): self = .int8
            case ObjectIdentifier(UInt8.self): self = .uint8
            case ObjectIdentifier(Int16.self): self = .int16
            case ObjectIdentifier(UInt16.self): self = .uint16
            case ObjectIdentifier(Int32.self): self = .int32
            case ObjectIdentifier(UInt32.self): self = .uint32
            case ObjectIdentifier(Int64.self), ObjectIdentifier(Int.self): self = .int64
            case ObjectIdentifier(UInt64.self), ObjectIdentifier(UInt.self): self = .uint64
            case ObjectIdentifier(Float.self): self = .float32
            case ObjectIdentifier(Double.self): self = .float64
            default:
                #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
                if type == Float16.self {
                    self = .float16
                    return
                }
                #endif
                return nil
            }
        }
    }
}
