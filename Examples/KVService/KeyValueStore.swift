import Checkpoint

/// The service's whole state: the entries and the number of writes applied to them.
///
/// `version` is the checkpoint step: it grows with every write, so a snapshot's step says exactly
/// which writes it holds (every write whose response carried a version up to it).
struct Entries: Codable, Sendable, Equatable {
    var values: [String: String] = [:]
    var version: Step = 0
}

/// The key-value store the HTTP routes read and write; an actor, so a snapshot is one consistent
/// copy of the entries between two writes.
actor KeyValueStore {
    private var entries: Entries

    /// A store holding `entries` (restored from a checkpoint, or empty).
    init(_ entries: Entries) { self.entries = entries }

    /// The value of `key`, if any.
    func value(of key: String) -> String? { entries.values[key] }

    /// Sets `key` to `value`; returns the version that holds the write.
    func set(_ key: String, to value: String) -> Step {
        entries.values[key] = value
        return bumpVersion()
    }

    /// Removes `key`; returns the version that holds the removal, or `nil` when there was no such key.
    func remove(_ key: String) -> Step? {
        guard entries.values.removeValue(forKey: key) != nil else { return nil }
        return bumpVersion()
    }

    /// The number of keys and the current version.
    func summary() -> (count: Int, version: Step) { (entries.values.count, entries.version) }

    /// A copy of the entries and their version, for a snapshot.
    func snapshot() -> (state: Entries, step: Step) { (entries, entries.version) }

    private func bumpVersion() -> Step {
        entries.version = Step(rawValue: entries.version.rawValue + 1)
        return entries.version
    }
}
