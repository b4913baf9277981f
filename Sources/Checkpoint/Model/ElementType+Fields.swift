extension ElementType {
    /// The most fields an element type may declare (``StructuredElement``): what readers accept.
    public static let maximumFieldCount = 256
    /// The longest field name, in bytes.
    public static let maximumFieldNameLength = 64

    /// One named field of a plain struct: a number, or a fixed number of them in a row (a SIMD
    /// vector, a tuple, an `InlineArray`), at a byte offset inside the element.
    ///
    /// Build fields with the key-path helpers, which compute offsets with
    /// `MemoryLayout.offset(of:)`, rather than writing offsets by hand.
    public struct Field: Hashable, Sendable, Codable, CustomStringConvertible {
        /// The field's name, e.g. `"mass"`: 1 to ``ElementType/maximumFieldNameLength`` printable
        /// ASCII characters (space to `~`).
        public var name: String
        /// Where the field starts, in bytes from the start of the element.
        public var offset: Int
        /// The numeric type of each of its values (never ``ElementType/Scalar/opaque`` in a valid field).
        public var scalar: Scalar
        /// How many scalars follow each other: 1 for a single number, 3 for a `SIMD3<Float>`.
        public var count: Int

        /// Creates a field from its parts.
        ///
        /// - Parameters:
        ///   - name: The field's name.
        ///   - offset: Its byte offset inside the element.
        ///   - scalar: The numeric type of its values.
        ///   - count: How many values of `scalar` lie one after the other (a fixed-size array).
        public init(name: String, offset: Int, scalar: Scalar, count: Int = 1) {
            self.name = name
            self.offset = offset
            self.scalar = scalar
            self.count = count
        }

        /// The field of a stored property that is a number (`Double`, `Int32`, …) or a SIMD vector
        /// of numbers (`SIMD3<Float>`: 3 values of `float32`, the padding lane left out).
        ///
        /// A key path that has no fixed offset (a computed property) or a property of another
        /// type gives a field that the save rejects with `invalidFields`, naming it.
        /// - Parameters:
        ///   - name: The field's name in the checkpoint, usually the property's.
        ///   - keyPath: The stored property, e.g. `\Particle.mass` (nested: `\Particle.position.x`).
        /// - Returns: The field, its offset taken from `MemoryLayout<Root>.offset(of:)`.
        public static func field<Root, Value: BitwiseCopyable>(
            _ name: String,
            _ keyPath: KeyPath<Root, Value>
        ) -> Field {
            let offset = MemoryLayout<Root>.offset(of: keyPath) ?? -1
            if let scalar = Scalar(Value.self) { return Field(name: name, offset: offset, scalar: scalar) }
            if let vector = Value.self as? any SIMD.Type {
                let (scalar, count) = lanes(of: vector)
                return Field(name: name, offset: offset, scalar: scalar, count: count)
            }
            return Field(name: name, offset: offset, scalar: .opaque)
        }

        /// The field of a stored property that holds a fixed number of `element` values one after
        /// the other: a homogeneous tuple such as `(Float, Float, Float)` or an `InlineArray`.
        ///
        /// - Parameters:
        ///   - name: The field's name in the checkpoint.
        ///   - keyPath: The stored property, e.g. `\Cell.corners`.
        ///   - element: The numeric type of its values, e.g. `Float.self`.
        /// - Returns: The field, with `count` = the property's size divided by the element's stride.
        public static func field<Root, Value: BitwiseCopyable, Element: BitwiseCopyable>(
            _ name: String,
            _ keyPath: KeyPath<Root, Value>,
            of element: Element.Type
        ) -> Field {
            let offset = MemoryLayout<Root>.offset(of: keyPath) ?? -1
            let stride = MemoryLayout<Element>.stride
            let whole = MemoryLayout<Value>.size % stride == 0
            return Field(
                name: name,
                offset: offset,
                scalar: Scalar(Element.self) ?? .opaque,
                count: whole ? MemoryLayout<Value>.size / stride : 0
            )
        }

        /// Bytes the field covers: `count × scalar.size`, `nil` when that overflows.
        var byteCount: Int? {
            let (product, overflow) = count.multipliedReportingOverflow(by: scalar.size)
            return overflow ? nil : product
        }

        /// `mass: float64 at 16`, `position: float32 x3 at 0`.
        public var description: String {
            "\(PrintableText.escaped(name)): \(scalar)\(count == 1 ? "" : " x\(count)") at \(offset)"
        }

        private static func lanes<Vector: SIMD>(of type: Vector.Type) -> (Scalar, Int) {
            (Scalar(Vector.Scalar.self) ?? .opaque, Vector.scalarCount)
        }

        private enum CodingKeys: String, CodingKey {
            case name, offset, scalar, count
        }

        /// Decodes a field of a manifest: `{"count": 3, "name": "position", "offset": 0, "scalar": "float32"}`.
        ///
        /// - Throws: `DecodingError` when a key is missing or the scalar is not a numeric one.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            offset = try container.decode(Int.self, forKey: .offset)
            count = try container.decode(Int.self, forKey: .count)
            let scalarName = try container.decode(String.self, forKey: .scalar)
            guard let scalar = Scalar.allCases.first(where: { $0 != .opaque && $0.description == scalarName }) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .scalar,
                    in: container,
                    debugDescription: "not a numeric scalar name"
                )
            }
            self.scalar = scalar
        }

        /// Encodes the field as a manifest records it.
        ///
        /// - Throws: What the encoder throws.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(offset, forKey: .offset)
            try container.encode(scalar.description, forKey: .scalar)
            try container.encode(count, forKey: .count)
        }
    }

    /// Why `fields` cannot describe elements of `size` bytes (`nil` when they can): the rules the
    /// save checks and readers apply to a manifest's fields.
    ///
    /// With `size` `nil` (a manifest read without its shard), everything but the fit inside the
    /// element is checked.
    static func fieldsProblem(_ fields: [Field], size: Int?) -> String? {
        guard !fields.isEmpty else { return "declares no fields" }
        guard fields.count <= maximumFieldCount else {
            return "declares \(fields.count) fields, more than the \(maximumFieldCount) allowed"
        }
        var names = Set<String>()
        var extents: [(start: Int, end: Int, name: String)] = []
        for field in fields {
            let name = PrintableText.escaped(field.name)
            let bytes = field.name.utf8
            guard !bytes.isEmpty, bytes.count <= maximumFieldNameLength, bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E })
            else {
                return
                    "has a field named '\(name)'; names are 1 to \(maximumFieldNameLength) printable ASCII characters"
            }
            guard names.insert(field.name).inserted else { return "declares the field '\(name)' twice" }
            guard field.offset >= 0 else {
                return
                    "has no stored offset for the field '\(name)' (a computed property, or a key path into another type)"
            }
            guard field.scalar != .opaque else {
                return
                    "declares the field '\(name)' of a type that is not a number, a SIMD vector of numbers or a fixed-size array of numbers (use field(_:_:of:))"
            }
            guard field.count >= 1, let byteCount = field.byteCount else {
                return "gives the field '\(name)' an invalid count \(field.count)"
            }
            let (end, overflow) = field.offset.addingReportingOverflow(byteCount)
            guard !overflow, size.map({ end <= $0 }) ?? true else {
                return
                    "places the field '\(name)' (bytes \(field.offset) to \(field.offset &+ byteCount)) outside the \(size ?? 0)-byte element"
            }
            extents.append((field.offset, end, name))
        }
        extents.sort { ($0.start, $0.end) < ($1.start, $1.end) }
        for (previous, next) in zip(extents, extents.dropFirst()) where previous.end > next.start {
            return "declares the fields '\(previous.name)' and '\(next.name)', which overlap at byte \(next.start)"
        }
        return nil
    }

    /// Why data saved as `self` cannot be restored as `wanted` (`nil` when it can), for the
    /// message of a `typeMismatch` that follows "entry 'NAME' ".
    ///
    /// When both record fields they must agree, field by field; otherwise the size, scalar and
    /// type name decide (``isCompatible(with:)``).
    func restoreProblem(as wanted: ElementType) -> String? {
        if let saved = fields, let declared = wanted.fields, Set(saved) != Set(declared) {
            let type = PrintableText.escaped(wanted.typeName)
            for field in saved {
                guard let other = declared.first(where: { $0.name == field.name }) else {
                    return
                        "was saved with the field '\(PrintableText.escaped(field.name))', which \(type) does not declare"
                }
                if other != field {
                    return "was saved with the field \(field), but \(type) declares \(other)"
                }
            }
            let extra = declared.first { field in !saved.contains { $0.name == field.name } }
            return "was saved without the field '\(PrintableText.escaped(extra?.name ?? ""))', which \(type) declares"
        }
        guard isCompatible(with: wanted) else {
            return "was saved as \(description) and cannot be restored as \(wanted)"
        }
        return nil
    }
}
