extension SnapshotWriter {
    /// Writes this rank's block of a distributed array, with where the block lies in the global array.
    ///
    /// The block's layout is recorded in the checkpoint's manifest, so the checkpoint can later be
    /// restored by any number of ranks, each reading its new block with
    /// ``SnapshotReader/read(_:_:block:)``. Every rank that holds part of the array writes its block
    /// under the same name, with the same global shape and element type; at commit rank 0 checks
    /// that the blocks tile the global shape (no gaps, no overlaps) and fails the checkpoint on
    /// every rank otherwise. Entries written without a block are *replicated*: when the rank count
    /// changes, every new rank restores rank 0's copy.
    ///
    /// ```swift
    /// let layout = try BlockLayout.partition([ny, nx], part: rank, of: ranks)
    /// try writer.write(rows, as: "temperature", block: layout)
    /// ```
    /// - Parameters:
    ///   - array: The block's elements, row-major; `layout.elementCount` of them.
    ///   - name: The entry's name.
    ///   - layout: Where the block lies; its extent becomes the entry's shape.
    /// - Throws: `shapeMismatch` when the array's count differs from the block's; `invalidName`, `duplicateName`.
    public mutating func write<Element: BitwiseCopyable>(
        _ array: [Element],
        as name: String,
        block layout: BlockLayout
    ) throws(CheckpointError) {
        try checkCount(array.count, name, layout)
        try add(
            name,
            .raw,
            .of(Element.self),
            shape: layout.extent,
            count: array.count,
            ArraySource(array: array),
            block: layout
        )
    }

    /// Writes this rank's block of a distributed array held in a `ContiguousArray`. See ``write(_:as:block:)-([Element],_,_)``.
    public mutating func write<Element: BitwiseCopyable>(
        _ array: ContiguousArray<Element>,
        as name: String,
        block layout: BlockLayout
    ) throws(CheckpointError) {
        try checkCount(array.count, name, layout)
        let source = ContiguousArraySource(array: array)
        try add(name, .raw, .of(Element.self), shape: layout.extent, count: array.count, source, block: layout)
    }

    /// Writes this rank's block of a distributed array held in memory the application owns. The
    /// memory must stay valid and unchanged until the save that uses this writer returns.
    /// See ``write(_:as:block:)-([Element],_,_)``.
    public mutating func write<Element: BitwiseCopyable>(
        _ buffer: UnsafeBufferPointer<Element>,
        as name: String,
        block layout: BlockLayout
    ) throws(CheckpointError) {
        try checkCount(buffer.count, name, layout)
        let source = PointerSource(bytes: UnsafeRawBufferPointer(buffer))
        try add(name, .raw, .of(Element.self), shape: layout.extent, count: buffer.count, source, block: layout)
    }

    private func checkCount(_ count: Int, _ name: String, _ layout: BlockLayout) throws(CheckpointError) {
        guard count == layout.elementCount else {
            throw CheckpointError(
                .shapeMismatch,
                "'\(name)' has \(count) elements but its block \(layout) holds \(layout.elementCount); give the block's elements, row-major"
            )
        }
    }
}
