extension StateRegistry {
    /// Registers an array property that holds this rank's block of a distributed array.
    ///
    /// It is saved with its layout (``SnapshotWriter/write(_:as:block:)-([Element],_,_)``), and
    /// restored as the block `layout` describes — from whichever saved blocks overlap it — so the
    /// same registration works when the program restarts on another number of ranks. Register with
    /// the layout of the current run's decomposition.
    /// - Throws: `invalidName` or `duplicateName`.
    public func register<Root: AnyObject, Element: BitwiseCopyable>(
        _ name: String,
        _ object: Root,
        _ keyPath: ReferenceWritableKeyPath<Root, [Element]>,
        block layout: BlockLayout
    ) throws(CheckpointError) {
        let box = UncheckedBox((object, keyPath))
        try add(
            name,
            save: { writer in try writer.write(box.value.0[keyPath: box.value.1], as: name, block: layout) },
            prepare: { reader in
                let array = UncheckedBox(try reader.read([Element].self, name, block: layout))
                return { box.value.0[keyPath: box.value.1] = array.value }
            }
        )
    }

    /// Registers memory the application owns that holds this rank's block of a distributed array
    /// (`FTI_Protect`-style). The buffer must hold `layout.elementCount` elements and stay allocated
    /// until unregistered. See ``register(_:_:_:block:)``.
    /// - Throws: `shapeMismatch` when the buffer's count differs from the block's; `invalidName`, `duplicateName`.
    public func register<Element: BitwiseCopyable>(
        _ name: String,
        buffer: UnsafeMutableBufferPointer<Element>,
        block layout: BlockLayout
    ) throws(CheckpointError) {
        guard buffer.count == layout.elementCount else {
            throw CheckpointError(
                .shapeMismatch,
                "buffer '\(name)' has \(buffer.count) elements but its block \(layout) holds \(layout.elementCount)"
            )
        }
        let box = UncheckedBox(buffer)
        try add(
            name,
            save: { writer in try writer.write(UnsafeBufferPointer(box.value), as: name, block: layout) },
            prepare: { reader in
                let staged = try reader.stage(into: box.value.count, Element.self, name, block: layout)
                return { staged.apply(to: UnsafeMutableRawBufferPointer(box.value)) }
            }
        )
    }
}
