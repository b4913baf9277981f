import Checkpoint

/// A combination of the library's options that a trial runs with: the commit pipeline's stages
/// (partner copy and flush with redundancy, incremental chunks, process dumps) and how it runs
/// (synchronous or in the background, committed by rename or by a marker written last), and whether
/// checkpoints are sealed with a key and recorded in a lineage (`sealed`), and whether the ranks of a
/// node write one aggregated file (`aggregate`).
///
/// The crash kind draws every combination; the storage kind draws those it can run in-process
/// (no dumps; asynchronous checkpoints are drawn on top of each).
struct Combination: Hashable, Sendable, CustomStringConvertible {
    var asynchronous = false
    var incremental = false
    var marker = false
    var redundancy = false
    var dumps = false
    var sealed = false
    /// Redundancy with XOR sets of 3 (`heat --xor-set 3`): needs three ranks on three (simulated) nodes.
    var xor = false
    /// One aggregated file per node (`heat --aggregate`).
    var aggregate = false

    /// `plain`, `async`, `redundancy+incremental`, … (the name `--combinations` takes).
    var description: String {
        let parts = [
            (marker, "marker"), (redundancy, "redundancy"), (asynchronous, "async"), (incremental, "incremental"),
            (dumps, "dumps"), (sealed, "sealed"), (xor, "xor"), (aggregate, "aggregate"),
        ]
        let name = parts.filter(\.0).map(\.1).joined(separator: "+")
        return name.isEmpty ? "plain" : name
    }

    static let plain = Combination()

    /// What the crash kind draws from, in table order.
    static let crash: [Combination] = [
        .plain,
        Combination(asynchronous: true),
        Combination(incremental: true),
        Combination(marker: true),
        Combination(redundancy: true),
        Combination(incremental: true, redundancy: true),
        Combination(redundancy: true, dumps: true),
        Combination(asynchronous: true, dumps: true),
        Combination(marker: true, redundancy: true),
        Combination(marker: true, sealed: true),
        Combination(incremental: true, redundancy: true, sealed: true),
        Combination(redundancy: true, xor: true),
        Combination(asynchronous: true, incremental: true, redundancy: true, xor: true),
        Combination(aggregate: true),
        Combination(asynchronous: true, incremental: true, aggregate: true),
        Combination(marker: true, sealed: true, aggregate: true),
    ]

    /// What the storage kind draws from, in table order (each also synchronous or asynchronous).
    static let storage: [Combination] = [
        .plain,
        Combination(incremental: true),
        Combination(marker: true),
        Combination(redundancy: true),
        Combination(incremental: true, redundancy: true),
        Combination(marker: true, redundancy: true),
        Combination(incremental: true, redundancy: true, sealed: true),
    ]

    /// The combinations a fault kind draws from (none: the kind has no combinations).
    static func all(for kind: FaultKind) -> [Combination] {
        switch kind {
        case .crash: crash
        case .storage: storage
        case .corrupt, .enospc: []
        }
    }

    /// Every name `--combinations` accepts.
    static var names: [String] {
        var names: [String] = []
        for combination in crash + storage where !names.contains(combination.description) {
            names.append(combination.description)
        }
        return names
    }

    /// The combination with this name (as ``description`` spells it), if any kind draws it.
    init?(name: String) {
        guard let found = (Self.crash + Self.storage).first(where: { $0.description == name }) else { return nil }
        self = found
    }

    init(
        asynchronous: Bool = false,
        incremental: Bool = false,
        marker: Bool = false,
        redundancy: Bool = false,
        dumps: Bool = false,
        sealed: Bool = false,
        xor: Bool = false,
        aggregate: Bool = false
    ) {
        self.asynchronous = asynchronous
        self.incremental = incremental
        self.marker = marker
        self.redundancy = redundancy
        self.dumps = dumps
        self.sealed = sealed
        self.xor = xor
        self.aggregate = aggregate
    }

    /// The secret of the key sealed combinations write and read with.
    static let keySecret = Array("torture: sealed checkpoints, 32+ bytes".utf8)
    /// That key (the crash kind's `heat` reads it from a file of ``keySecret``).
    static let key = try! Authentication.Key(secret: keySecret)

    /// The run ID sealed combinations record.
    static let runID = "torture"
}
