import Synchronization

/// Named state an existing program registers once, so it can be checkpointed without
/// restructuring its types — the way `FTI_Protect` and `VELOC_Mem_protect` work in C.
///
/// Register properties of your objects by key path, memory you own by buffer, or anything else
/// by a getter and a setter. ``Checkpointer/save(step:metadata:)-876x`` saves everything registered;
/// ``Checkpointer/restoreLatest()-8tbto`` decodes and verifies every registered entry first and only then
/// writes them all back, so a failed restore changes nothing.
///
/// ```swift
/// final class Simulation { var positions: [SIMD3<Double>] = []; var time = 0.0; var config = Config() }
/// let sim = Simulation()
/// try checkpointer.registry.register("positions", sim, \.positions)
/// try checkpointer.registry.register("time", sim, \.time)
/// try checkpointer.registry.register("config", sim, \.config)     // Codable
/// try checkpointer.registry.register("grid", buffer: gridPointer)  // memory you allocated
/// ```
///
/// Registered objects are retained until unregistered. Registration is thread-safe.
public final class StateRegistry: Sendable {
    struct Item: Sendable {
        var name: String
        var save: @Sendable (inout SnapshotWriter) throws -> Void
        /// Phase one of a restore: read and verify, returning phase two, which cannot fail.
        var prepare: @Sendable (SnapshotReader) throws -> @Sendable () -> Void
    }

    private let items = Locked<[Item]>([])

    /// Creates an empty registry.
    public init() {}

    /// The registered names, in registration order.
    public var names: [String] { items.withLock { $0.map(\.name) } }

    /// Registers an array property of an object; it is saved raw and replaced wholesale on restore.
    public func register<Root: AnyObject, Element: BitwiseCopyable>(
        _ name: String,
        _ object: Root,
        _ keyPath: ReferenceWritableKeyPath<Root, [Element]>
    ) throws(CheckpointError) {
        let box = UncheckedBox((object, keyPath))
        try add(
            name,
            save: { writer in try writer.write(box.value.0[keyPath: box.value.1], as: name) },
            prepare: { reader in
                let array = try reader.read([Element].self, name)
                let result = UncheckedBox(array)
                return { box.value.0[keyPath: box.value.1] = result.value }
            }
        )
    }

    /// Registers a `BitwiseCopyable` property (an `Int`, a `Double`, a plain struct); saved bit-exact.
    public func register<Root: AnyObject, Value: BitwiseCopyable>(
        _ name: String,
        _ object: Root,
        _ keyPath: ReferenceWritableKeyPath<Root, Value>
    ) throws(CheckpointError) {
        let box = UncheckedBox((object, keyPath))
        try add(
            name,
            save: { writer in try writer.write(value: box.value.0[keyPath: box.value.1], as: name) },
            prepare: { reader in
                let value = UncheckedBox(try reader.read(Value.self, name))
                return { box.value.0[keyPath: box.value.1] = value.value }
            }
        )
    }

    /// Registers a `Codable` property; saved as JSON.
    @_disfavoredOverload
    public func register<Root: AnyObject, Value: Codable & SendableMetatype>(
        _ name: String,
        _ object: Root,
        _ keyPath: ReferenceWritableKeyPath<Root, Value>
    ) throws(CheckpointError) {
        let box = UncheckedBox((object, keyPath))
        try add(
            name,
            save: { writer in try writer.encode(box.value.0[keyPath: box.value.1], as: name) },
            prepare: { reader in
                let value = UncheckedBox(try reader.decode(Value.self, name))
                return { box.value.0[keyPath: box.value.1] = value.value }
            }
        )
    }

    /// Registers memory the application owns (`FTI_Protect`-style). It must stay allocated, with
    /// the same count, until unregistered; restore requires the saved element count to match.
    public func register<Element: BitwiseCopyable>(
        _ name: String,
        buffer: UnsafeMutableBufferPointer<Element>,
        shape: [Int]? = nil
    ) throws(CheckpointError) {
        let box = UncheckedBox(buffer)
        try add(
            name,
            save: { writer in try writer.write(UnsafeBufferPointer(box.value), as: name, shape: shape) },
            prepare: { reader in
                let staged = try reader.stage(into: box.value.count, Element.self, name)
                return { staged.apply(to: UnsafeMutableRawBufferPointer(box.value)) }
            }
        )
    }

    /// Registers state reached through closures, for anything key paths cannot name.
    @_disfavoredOverload
    public func register<Value: Codable & SendableMetatype>(
        _ name: String,
        get: @escaping @Sendable () -> Value,
        set: @escaping @Sendable (Value) -> Void
    ) throws(CheckpointError) {
        try add(
            name,
            save: { writer in try writer.encode(get(), as: name) },
            prepare: { reader in
                let value = UncheckedBox(try reader.decode(Value.self, name))
                return { set(value.value) }
            }
        )
    }

    /// Registers an array reached through closures; saved raw.
    public func register<Element: BitwiseCopyable>(
        _ name: String,
        get: @escaping @Sendable () -> [Element],
        set: @escaping @Sendable ([Element]) -> Void
    ) throws(CheckpointError) {
        try add(
            name,
            save: { writer in try writer.write(get(), as: name) },
            prepare: { reader in
                let value = UncheckedBox(try reader.read([Element].self, name))
                return { set(value.value) }
            }
        )
    }

    /// Registers a ``Checkpointable`` object; its entries are saved under `name/…` and on restore a
    /// freshly built value is handed to `set`.
    public func register<Value: Checkpointable & SendableMetatype>(
        _ name: String,
        get: @escaping @Sendable () -> Value,
        set: @escaping @Sendable (Value) -> Void
    ) throws(CheckpointError) {
        try add(
            name,
            save: { writer in try writer.write(get(), as: name) },
            prepare: { reader in
                let value = UncheckedBox(try reader.read(Value.self, name))
                return { set(value.value) }
            }
        )
    }

    /// Removes a registration. Returns whether the name was registered.
    @discardableResult
    public func unregister(_ name: String) -> Bool {
        items.withLock { items in
            guard let position = items.firstIndex(where: { $0.name == name }) else { return false }
            items.remove(at: position)
            return true
        }
    }

    /// Saves every registered item into `writer`.
    func save(to writer: inout SnapshotWriter) throws {
        for item in items.withLock({ $0 }) { try item.save(&writer) }
    }

    /// Reads and verifies every registered item; the returned closure applies them all and cannot fail.
    func prepareRestore(from reader: SnapshotReader) throws -> () -> Void {
        let prepared = try items.withLock({ $0 }).map { try $0.prepare(reader) }
        return { for apply in prepared { apply() } }
    }

    func add(
        _ name: String,
        save: @escaping @Sendable (inout SnapshotWriter) throws -> Void,
        prepare: @escaping @Sendable (SnapshotReader) throws -> @Sendable () -> Void
    ) throws(CheckpointError) {
        try EntryName.validate(name)
        let conflict: String? = items.withLock { items in
            if let existing = items.first(where: {
                $0.name == name || $0.name.hasPrefix(name + "/") || name.hasPrefix($0.name + "/")
            }) {
                return existing.name
            }
            items.append(Item(name: name, save: save, prepare: prepare))
            return nil
        }
        if let conflict {
            let what = conflict == name ? "'\(name)' is already registered" : "'\(name)' overlaps '\(conflict)'"
            throw CheckpointError(
                .duplicateName,
                "\(what); call registry.unregister(\"\(conflict)\") first to replace it, or choose another name"
            )
        }
    }
}
