/// Where one rank's block of a distributed array lies in the global array.
///
/// A simulation that splits a global 1-D, 2-D or 3-D array across ranks saves each rank's block
/// with its layout: the global shape, the block's offset (the global index of its first element)
/// and its extent (its own shape). All three are row-major, dimension 0 first. Because every
/// shard records where its block lies, a checkpoint written by N ranks can be restored by M: each
/// new rank names its new block and reads exactly the overlapping parts of the old blocks.
///
/// ```swift
/// // 4 ranks split a 512 x 512 field by rows; rank 1 holds rows 128..<256.
/// let layout = try BlockLayout(globalShape: [512, 512], offset: [128, 0], extent: [128, 512])
/// try writer.write(rows, as: "temperature", block: layout)
///
/// // On restart, the same code names the block for the new rank count.
/// let mine = try BlockLayout.partition([512, 512], part: reader.rank, of: reader.rankCount)
/// rows = try reader.read([Double].self, "temperature", block: mine)
/// ```
///
/// A layout is a plain value; it is checked when created: 1 to 3 dimensions, non-negative sizes,
/// and a block that lies inside the global shape. A block may be empty (an extent of 0), for a rank
/// that holds nothing of this array.
public struct BlockLayout: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The largest number of dimensions a distributed array may have.
    public static let maximumDimensions = 3

    /// The shape of the whole array, row-major.
    public let globalShape: [Int]
    /// The global index of the block's first element, one number per dimension.
    public let offset: [Int]
    /// The block's own shape, one number per dimension.
    public let extent: [Int]

    /// Creates a layout and checks it.
    ///
    /// - Parameters:
    ///   - globalShape: The whole array's shape: 1 to 3 non-negative dimensions.
    ///   - offset: Where the block starts, per dimension; each at least 0.
    ///   - extent: The block's shape, per dimension; `offset + extent` must not exceed `globalShape`.
    /// - Throws: ``CheckpointError/Code/invalidLayout`` when the dimensions disagree, a number is
    ///   negative, the block reaches outside the global shape, or the global element count overflows.
    public init(globalShape: [Int], offset: [Int], extent: [Int]) throws(CheckpointError) {
        guard (1...Self.maximumDimensions).contains(globalShape.count) else {
            throw CheckpointError(
                .invalidLayout,
                "a distributed array has 1 to \(Self.maximumDimensions) dimensions, not \(globalShape.count) (global shape \(globalShape)); flatten the trailing dimensions into the element type or into the last dimension"
            )
        }
        guard offset.count == globalShape.count, extent.count == globalShape.count else {
            throw CheckpointError(
                .invalidLayout,
                "global shape \(globalShape), offset \(offset) and extent \(extent) must have the same number of dimensions"
            )
        }
        var elements = 1
        for dimension in globalShape.indices {
            let (size, start, count) = (globalShape[dimension], offset[dimension], extent[dimension])
            guard size >= 0, start >= 0, count >= 0 else {
                throw CheckpointError(
                    .invalidLayout,
                    "global shape \(globalShape), offset \(offset) and extent \(extent) must not be negative"
                )
            }
            guard start <= size - count else {
                throw CheckpointError(
                    .invalidLayout,
                    "the block at offset \(offset) with extent \(extent) reaches outside the global shape \(globalShape) in dimension \(dimension); keep offset + extent within the global shape"
                )
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow else {
                throw CheckpointError(
                    .invalidLayout,
                    "global shape \(globalShape) holds more elements than an Int counts"
                )
            }
            elements = product
        }
        self.globalShape = globalShape
        self.offset = offset
        self.extent = extent
    }

    /// A block that is the whole array (what a single rank holds).
    /// - Throws: ``CheckpointError/Code/invalidLayout`` for an invalid shape.
    public static func whole(_ globalShape: [Int]) throws(CheckpointError) -> BlockLayout {
        try BlockLayout(globalShape: globalShape, offset: globalShape.map { _ in 0 }, extent: globalShape)
    }

    /// Part `part` of `parts` near-equal slabs along dimension 0 (rows), the usual 1-D decomposition.
    ///
    /// The first `globalShape[0] % parts` parts get one row more than the others, so the parts
    /// differ by at most one row; with more parts than rows the last parts are empty.
    /// - Throws: ``CheckpointError/Code/invalidLayout`` for an invalid shape or when `part` is not in `0..<parts`.
    public static func partition(_ globalShape: [Int], part: Int, of parts: Int) throws(CheckpointError) -> BlockLayout
    {
        var grid = globalShape.map { _ in 1 }
        var coordinates = globalShape.map { _ in 0 }
        if !grid.isEmpty {
            grid[0] = parts
            coordinates[0] = part
        }
        return try partition(globalShape, grid: grid, coordinates: coordinates)
    }

    /// The block at `coordinates` of a Cartesian process grid that splits each dimension into near-equal parts.
    ///
    /// Dimension `d` is split into `grid[d]` parts as ``partition(_:part:of:)`` splits rows; a
    /// 2 x 3 grid over a 100 x 100 array gives blocks of 50 x 34, 50 x 33 and 50 x 33.
    /// - Parameters:
    ///   - globalShape: The whole array's shape.
    ///   - grid: Parts per dimension (each at least 1); their product is the number of ranks.
    ///   - coordinates: This rank's position in the grid, `0..<grid[d]` per dimension.
    /// - Throws: ``CheckpointError/Code/invalidLayout`` when the shapes disagree or a coordinate is out of range.
    public static func partition(
        _ globalShape: [Int],
        grid: [Int],
        coordinates: [Int]
    ) throws(CheckpointError) -> BlockLayout {
        guard grid.count == globalShape.count, coordinates.count == globalShape.count else {
            throw CheckpointError(
                .invalidLayout,
                "process grid \(grid) and coordinates \(coordinates) must have one number per dimension of \(globalShape)"
            )
        }
        var offset: [Int] = []
        var extent: [Int] = []
        for dimension in globalShape.indices {
            let (size, parts, part) = (globalShape[dimension], grid[dimension], coordinates[dimension])
            guard parts >= 1, (0..<parts).contains(part), size >= 0 else {
                throw CheckpointError(
                    .invalidLayout,
                    "coordinate \(part) is not a part of \(parts) in dimension \(dimension); use 0..<\(parts) and at least 1 part"
                )
            }
            let (base, extra) = size.quotientAndRemainder(dividingBy: parts)
            offset.append(part * base + min(part, extra))
            extent.append(base + (part < extra ? 1 : 0))
        }
        return try BlockLayout(globalShape: globalShape, offset: offset, extent: extent)
    }

    /// The number of elements in the block.
    public var elementCount: Int { extent.reduce(1, *) }

    /// The number of elements in the whole array.
    public var globalElementCount: Int { globalShape.reduce(1, *) }

    /// Whether the block holds no element.
    public var isEmpty: Bool { extent.contains(0) }

    /// `[128..<256, 0..<512] of [512, 512]`.
    public var description: String {
        let ranges = zip(offset, extent).map { "\($0)..<\($0 + $1)" }
        return "[\(ranges.joined(separator: ", "))] of \(globalShape)"
    }

    /// Decodes and checks a layout (a manifest's record of one).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let globalShape = try container.decode([Int].self, forKey: .globalShape)
        let offset = try container.decode([Int].self, forKey: .offset)
        let extent = try container.decode([Int].self, forKey: .extent)
        do { try self.init(globalShape: globalShape, offset: offset, extent: extent) } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message)
            )
        }
    }

    private enum CodingKeys: String, CodingKey {
        case globalShape, offset, extent
    }
}

// MARK: Geometry

extension BlockLayout {
    /// The common part of two blocks of the same global shape, in global coordinates, or `nil` when
    /// they share no element.
    func intersection(_ other: BlockLayout) -> (offset: [Int], extent: [Int])? {
        var start: [Int] = []
        var count: [Int] = []
        for dimension in offset.indices {
            let low = max(offset[dimension], other.offset[dimension])
            let high = min(offset[dimension] + extent[dimension], other.offset[dimension] + other.extent[dimension])
            guard high > low else { return nil }
            start.append(low)
            count.append(high - low)
        }
        return (start, count)
    }

    /// Checks that `blocks` (one per rank that holds one, empty ones allowed) share one global shape,
    /// do not overlap and together cover it exactly. Returns a reason when they do not.
    ///
    /// Cost: sorting plus comparisons between blocks whose row ranges meet; O(n log n) for a
    /// decomposition by rows, O(n · blocks per row range) for a process grid.
    static func tilingProblem(_ blocks: [(rank: Int, block: BlockLayout)]) -> String? {
        guard let first = blocks.first else { return nil }
        for (rank, block) in blocks where block.globalShape != first.block.globalShape {
            return
                "rank \(first.rank)'s block is of global shape \(first.block.globalShape) but rank \(rank)'s of \(block.globalShape)"
        }
        let filled = blocks.filter { !$0.block.isEmpty }.sorted {
            $0.block.offset.lexicographicallyPrecedes($1.block.offset)
        }
        var covered = 0
        for (position, (rank, block)) in filled.enumerated() {
            covered += block.elementCount
            for (otherRank, other) in filled[(position + 1)...] {
                if other.offset[0] >= block.offset[0] + block.extent[0] { break }
                if let common = block.intersection(other) {
                    let shared = try? BlockLayout(
                        globalShape: block.globalShape,
                        offset: common.offset,
                        extent: common.extent
                    )
                    return
                        "the blocks of ranks \(rank) and \(otherRank) overlap in \(shared?.description ?? "\(common)")"
                }
            }
        }
        let total = first.block.globalElementCount
        guard covered == total else {
            return
                "the blocks hold \(covered) of the \(total) elements of global shape \(first.block.globalShape); every element must belong to exactly one rank's block"
        }
        return nil
    }
}

/// The row-major byte runs that copy the overlap of a saved block into a new block.
///
/// Dimensions that the overlap spans completely in both blocks fold into one contiguous run; the
/// remaining outer dimensions are iterated, so a split by rows is one run and a split along the
/// last dimension is one run per row. Runs are in increasing source order and are computed on
/// demand (nothing is stored per run), so a region's runs can be searched by source offset.
struct BlockRuns: Sendable {
    /// The number of runs.
    let count: Int
    /// Bytes per run.
    let length: Int
    /// Byte offset of the first run in the source (saved) block and in the destination (new) block.
    private let sourceBase: Int
    private let destinationBase: Int
    /// Per outer dimension: the number of runs along it, and the byte strides in source and destination.
    private let counts: [Int]
    private let sourceStrides: [Int]
    private let destinationStrides: [Int]

    /// The runs that copy the overlap of `saved` and `wanted` (same global shape) with elements of `size` bytes.
    init?(from saved: BlockLayout, to wanted: BlockLayout, elementSize size: Int) {
        guard let common = saved.intersection(wanted) else { return nil }
        let dimensions = common.extent.count
        var sourceStrides = [Int](repeating: size, count: dimensions)
        var destinationStrides = [Int](repeating: size, count: dimensions)
        for dimension in stride(from: dimensions - 2, through: 0, by: -1) {
            sourceStrides[dimension] = sourceStrides[dimension + 1] * saved.extent[dimension + 1]
            destinationStrides[dimension] = destinationStrides[dimension + 1] * wanted.extent[dimension + 1]
        }
        // The innermost dimensions covered whole in both blocks, plus one more, form one contiguous run.
        var inner = dimensions - 1
        while inner > 0, common.extent[inner] == saved.extent[inner], common.extent[inner] == wanted.extent[inner] {
            inner -= 1
        }
        var sourceBase = 0
        var destinationBase = 0
        for dimension in 0..<dimensions {
            sourceBase += (common.offset[dimension] - saved.offset[dimension]) * sourceStrides[dimension]
            destinationBase += (common.offset[dimension] - wanted.offset[dimension]) * destinationStrides[dimension]
        }
        self.sourceBase = sourceBase
        self.destinationBase = destinationBase
        length = common.extent[inner...].reduce(size, *)
        counts = Array(common.extent[..<inner])
        count = counts.reduce(1, *)
        self.sourceStrides = Array(sourceStrides[..<inner])
        self.destinationStrides = Array(destinationStrides[..<inner])
    }

    /// The source and destination byte offsets of run `index`.
    func run(_ index: Int) -> (source: Int, destination: Int) {
        var rest = index
        var source = sourceBase
        var destination = destinationBase
        for dimension in stride(from: counts.count - 1, through: 0, by: -1) {
            let (quotient, position) = rest.quotientAndRemainder(dividingBy: counts[dimension])
            source += position * sourceStrides[dimension]
            destination += position * destinationStrides[dimension]
            rest = quotient
        }
        return (source, destination)
    }

    /// The first run that ends after source byte `offset` (`count` when none does).
    func firstRun(endingAfter offset: Int) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if run(middle).source + length > offset { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
