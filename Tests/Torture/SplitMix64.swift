/// Deterministic pseudo-random numbers (SplitMix64): a trial's seed alone decides what it tries.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A seed derived from `seed` and some labels, so that trials and kinds draw independent numbers.
    static func derive(_ seed: UInt64, _ labels: [UInt64]) -> UInt64 {
        var generator = SplitMix64(seed: seed)
        var value = generator.next()
        for label in labels {
            generator = SplitMix64(seed: value ^ label &* 0x100_0000_01B3)
            value = generator.next()
        }
        return value
    }

    /// A stable number for a kind's name (FNV-1a).
    static func label(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// `true` with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}
