import Checkpoint

/// The header of a NumPy `.npy` file, format version 1.0, for an entry's little-endian bytes.
///
/// ```
/// \x93NUMPY 01 00 <u16 length> {'descr': '<f8', 'fortran_order': False, 'shape': (64, 32), } ␠… \n
/// ```
///
/// The whole header (magic, version, length and dictionary) is padded with spaces to a multiple
/// of 64 bytes and ends in a newline, so the data that follows is aligned as NumPy expects.
struct NumpyHeader: Equatable {
    /// The dtype string, e.g. `<f8`; for structured elements, `|V` and the element size.
    var descriptor: String
    /// The array's dimensions, row-major; `[]` for a single value.
    var shape: [Int]
    /// For plain structs that record their fields: the structured dtype, as the list of
    /// `(name, format[, shape])` tuples with `('', '|Vn')` padding that `numpy.save` writes and
    /// `numpy.load` reads (it does not read the `{'names', 'formats', 'offsets', 'itemsize'}` form).
    var structuredDescriptor: String?

    /// The header of an entry's data.
    ///
    /// The shape is the entry's; elements made of several scalars (a `SIMD4<Float>`) add a
    /// trailing dimension with the number of scalars.
    /// - Throws: Bad input for JSON-encoded entries and for plain structs, which have no dtype.
    init(entry: EntryInfo) throws(ToolError) {
        let type = entry.elementType
        if entry.isEncoded {
            throw ToolError.badInput(
                "entry '\(entry.name)' holds a JSON-encoded \(type.typeName), which has no NumPy dtype; "
                    + "use --format raw to extract its JSON"
            )
        }
        if let fields = type.fields {
            descriptor = "|V\(type.size)"
            structuredDescriptor = Self.structured(fields, size: type.size)
            shape = entry.shape
            return
        }
        guard let descriptor = type.scalar.numpyDescriptor, type.scalar.size > 0, type.size % type.scalar.size == 0
        else {
            throw ToolError.badInput(
                "entry '\(entry.name)' holds \(type.typeName) (\(type.size)-byte plain structs), which has no NumPy "
                    + "dtype; use --format raw to extract its bytes"
            )
        }
        let lanes = type.size / type.scalar.size
        self.descriptor = descriptor
        shape = entry.shape + (lanes > 1 ? [lanes] : [])
    }

    init(descriptor: String, shape: [Int]) {
        self.descriptor = descriptor
        self.shape = shape
    }

    /// `[('mass', '<f8'), ('charge', '<i4'), ('', '|V4'), ('position', '<f4', (3,)), ('', '|V4')]`:
    /// the fields by offset, with the bytes between and after them as unnamed padding.
    ///
    /// The library checked the fields (names of printable ASCII, inside the element, disjoint).
    static func structured(_ fields: [ElementType.Field], size: Int) -> String {
        var items: [String] = []
        var position = 0
        for field in fields.sorted(by: { $0.offset < $1.offset }) {
            if field.offset > position { items.append("('', '|V\(field.offset - position)')") }
            let name = "'" + pythonEscaped(field.name) + "'"
            let format = "'" + (field.scalar.numpyDescriptor ?? "|V\(field.scalar.size)") + "'"
            items.append(field.count == 1 ? "(\(name), \(format))" : "(\(name), \(format), (\(field.count),))")
            position = field.offset + field.count * field.scalar.size
        }
        if size > position { items.append("('', '|V\(size - position)')") }
        return "[" + items.joined(separator: ", ") + "]"
    }

    /// The text of a Python string literal's body in single quotes.
    private static func pythonEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "'" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The dictionary as NumPy writes it: `{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }`.
    var dictionary: String {
        let dimensions =
            shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        let descr = structuredDescriptor ?? "'\(descriptor)'"
        return "{'descr': \(descr), 'fortran_order': False, 'shape': \(dimensions), }"
    }

    /// The header's bytes, a multiple of 64 long.
    /// - Throws: A failure when the dictionary does not fit version 1.0's 16-bit length (thousands of dimensions).
    func encoded() throws(ToolError) -> [UInt8] {
        let fixed = Self.magic.count + 2 + 2
        var text = Array(dictionary.utf8)
        let unpadded = fixed + text.count + 1
        let padded = (unpadded + 63) / 64 * 64
        text += [UInt8](repeating: 0x20, count: padded - unpadded) + [0x0A]
        guard text.count <= Int(UInt16.max) else {
            throw ToolError.failure("the array has too many dimensions for a version 1.0 .npy header")
        }
        let length = UInt16(text.count)
        return Self.magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + text
    }
}
