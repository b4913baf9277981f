import Checkpoint

/// One array of a Zarr v3 store as `ckpt export` writes it: its data type, shape, chunk shape and
/// attributes, the metadata document (`zarr.json`) and the chunks cut from its row-major bytes.
///
/// Chunks are regular (all of one shape, the last ones along a dimension padded with the fill value,
/// zero), named by the default chunk key encoding (`c/0/1`, or `c` for a 0-dimensional array), and
/// encoded by the `bytes` codec (little-endian) followed by `zstd`.
struct ZarrArray {
    /// The Zarr data type, e.g. `float64`.
    var dataType: String
    /// Bytes per element of `dataType`.
    var elementSize: Int
    /// The array's shape, row-major.
    var shape: [Int]
    /// The chunk shape: each dimension at least 1 and at most the array's.
    var chunkShape: [Int]
    /// The array's attributes.
    var attributes: [String: JSONValue]
    /// The array's name (its node's last path component), which names its dimensions `NAME_0`, `NAME_1`, …:
    /// xarray needs dimension names, and names of their own keep arrays of different shapes apart.
    var name: String

    /// The array for an entry's elements: the entry's shape, plus a trailing dimension for elements
    /// made of several scalars (`SIMD4<Float>`: 4) or, for plain structs without a scalar kind, the
    /// element's bytes as `uint8` (shape `(…, stride)`).
    /// - Parameters:
    ///   - name: The array's name, for its dimension names.
    ///   - type: The entry's element type.
    ///   - shape: The entry's shape (the global shape for an assembled array).
    ///   - chunkBytes: The largest uncompressed chunk wanted, in bytes.
    ///   - attributes: The array's attributes; the Swift type name and, for plain structs, the element
    ///     size and the named fields they declare are added.
    init(name: String, type: ElementType, shape: [Int], chunkBytes: Int, attributes: [String: JSONValue]) {
        self.name = name
        var attributes = attributes
        attributes["swiftType"] = .string(type.typeName)
        attributes["scalar"] = .string(type.scalar.description)
        let scalar = type.scalar
        if let name = Self.dataTypes[scalar], scalar.size > 0, type.size > 0, type.size % scalar.size == 0 {
            let lanes = type.size / scalar.size
            dataType = name
            elementSize = scalar.size
            self.shape = shape + (lanes > 1 ? [lanes] : [])
        } else {
            dataType = "uint8"
            elementSize = 1
            self.shape = shape + [max(type.size, 0)]
            attributes["elementBytes"] = .int(type.size)
            if let fields = type.fields {
                // Named fields (StructuredElement): enough to view the bytes as a NumPy structured
                // array, `np.dtype({"names": …, "formats": …, "offsets": …, "itemsize": elementBytes})`.
                attributes["fields"] = .array(
                    fields.map { field in
                        .object([
                            "name": .string(field.name), "offset": .int(field.offset),
                            "dtype": .string(field.scalar.numpyDescriptor ?? "|V\(field.scalar.size)"),
                            "count": .int(field.count),
                        ])
                    }
                )
            }
        }
        self.attributes = attributes
        chunkShape = Self.chunkShape(self.shape, elementSize: elementSize, limit: chunkBytes)
    }

    /// Zarr v3's names of the scalar kinds.
    static let dataTypes: [ElementType.Scalar: String] = [
        .bool: "bool", .int8: "int8", .uint8: "uint8", .int16: "int16", .uint16: "uint16", .int32: "int32",
        .uint32: "uint32", .int64: "int64", .uint64: "uint64", .float16: "float16", .float32: "float32",
        .float64: "float64",
    ]

    /// The number of elements, saturating at `Int.max`.
    var elementCount: Int { Self.product(shape) }

    /// The array's size in bytes, saturating at `Int.max`.
    var byteCount: Int { Self.product([elementCount, elementSize]) }

    /// Chunks that keep the trailing dimensions whole and split the leading ones, so that one chunk
    /// holds at most `limit` bytes (or a single row of the innermost dimension when even that is larger).
    static func chunkShape(_ shape: [Int], elementSize: Int, limit: Int) -> [Int] {
        var chunk = shape.map { max($0, 1) }
        for dimension in chunk.indices {
            let inner = product(chunk[(dimension + 1)...] + [elementSize])
            let fitting = max(1, limit / max(inner, 1))
            guard chunk[dimension] > fitting else { break }
            chunk[dimension] = fitting
            if inner <= limit { break }
        }
        return chunk
    }

    /// The array's `zarr.json`.
    var metadata: JSONValue {
        // The frames end with a content checksum (ZstdFrame writes them so); decoders check it.
        let zstd: JSONValue = ["level": .int(ZarrArray.compressionLevel), "checksum": true]
        let bytesCodec: JSONValue =
            elementSize > 1 ? ["name": "bytes", "configuration": ["endian": "little"]] : ["name": "bytes"]
        let fill: JSONValue =
            switch dataType {
            case "bool": false
            case "float16", "float32", "float64": .number(0)
            default: 0
            }
        return [
            "zarr_format": 3,
            "node_type": "array",
            "shape": .array(shape.map(JSONValue.int)),
            "data_type": .string(dataType),
            "chunk_grid": ["name": "regular", "configuration": ["chunk_shape": .array(chunkShape.map(JSONValue.int))]],
            "chunk_key_encoding": ["name": "default", "configuration": ["separator": "/"]],
            "fill_value": fill,
            "codecs": [bytesCodec, ["name": "zstd", "configuration": zstd]],
            "attributes": .object(attributes),
            "dimension_names": .array(shape.indices.map { .string("\(name)_\($0)") }),
        ]
    }

    /// The zstd level of the chunks (zstd's default).
    static let compressionLevel = 3

    /// The number of chunks along each dimension (0 along an empty dimension).
    var grid: [Int] {
        zip(shape, chunkShape).map { size, chunk in size / chunk + (size % chunk == 0 ? 0 : 1) }
    }

    /// Calls `body` with each chunk's key (`c/0/1`) and its uncompressed bytes, cut from `data` (the
    /// array's row-major bytes, `byteCount` of them) and padded with zeros past the array's end.
    func forEachChunk(
        of data: [UInt8],
        _ body: (String, UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        precondition(data.count == byteCount)
        guard !shape.isEmpty else {
            try data.withUnsafeBytes { try body("c", $0) }
            return
        }
        let grid = self.grid
        guard !grid.contains(0) else { return }
        let dimensions = shape.count
        let chunkBytes = Self.product(chunkShape + [elementSize])
        var chunk = [UInt8](repeating: 0, count: chunkBytes)
        // Byte strides of the array and of a chunk, per dimension.
        var strides = [Int](repeating: elementSize, count: dimensions)
        var chunkStrides = strides
        for dimension in stride(from: dimensions - 2, through: 0, by: -1) {
            strides[dimension] = strides[dimension + 1] * shape[dimension + 1]
            chunkStrides[dimension] = chunkStrides[dimension + 1] * chunkShape[dimension + 1]
        }
        var position = [Int](repeating: 0, count: dimensions)
        repeat {
            let start = zip(position, chunkShape).map(*)
            let extent = (0..<dimensions).map { min(chunkShape[$0], shape[$0] - start[$0]) }
            for index in chunk.indices { chunk[index] = 0 }
            // One contiguous run per index of the outer dimensions, along the last.
            let runLength = extent[dimensions - 1] * elementSize
            var inner = [Int](repeating: 0, count: dimensions - 1)
            data.withUnsafeBytes { source in
                chunk.withUnsafeMutableBytes { destination in
                    repeat {
                        var from = start[dimensions - 1] * elementSize
                        var to = 0
                        for dimension in 0..<(dimensions - 1) {
                            from += (start[dimension] + inner[dimension]) * strides[dimension]
                            to += inner[dimension] * chunkStrides[dimension]
                        }
                        destination.baseAddress!.advanced(by: to)
                            .copyMemory(from: source.baseAddress!.advanced(by: from), byteCount: runLength)
                    } while Self.increment(&inner, within: Array(extent.dropLast()))
                }
            }
            let key = "c/" + position.map(String.init).joined(separator: "/")
            try chunk.withUnsafeBytes { try body(key, $0) }
        } while Self.increment(&position, within: grid)
    }

    /// Advances a row-major index within `bounds`; `false` after the last one.
    private static func increment(_ index: inout [Int], within bounds: [Int]) -> Bool {
        for dimension in stride(from: index.count - 1, through: 0, by: -1) {
            index[dimension] += 1
            if index[dimension] < bounds[dimension] { return true }
            index[dimension] = 0
        }
        return false
    }

    /// The product of `values`, saturating at `Int.max` (the values are not negative).
    static func product(_ values: some Sequence<Int>) -> Int {
        var result = 1
        for value in values {
            let (next, overflow) = result.multipliedReportingOverflow(by: value)
            if overflow { return Int.max }
            result = next
        }
        return result
    }
}
