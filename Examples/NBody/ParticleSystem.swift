/// The run's parameters: everything needed to rebuild the initial state. Small, so it is saved as
/// JSON (the registry's `Codable` path); the physics reads only the raw arrays.
struct Setup: Codable, Equatable, Sendable {
    /// A kind of particle.
    struct Species: Codable, Equatable, Sendable {
        var name: String
        var mass: Double
    }

    var label: String
    var seed: UInt64
    var particles: Int
    var species: [Species]
    var timeStep: Double
    var softening: Double

    /// The example's setup for a run label, a seed and a particle count.
    static func standard(label: String, seed: UInt64, particles: Int) -> Setup {
        Setup(
            label: label,
            seed: seed,
            particles: particles,
            species: [
                Species(name: "dwarf", mass: 0.5),
                Species(name: "sun", mass: 1),
                Species(name: "giant", mass: 4),
            ],
            timeStep: 1e-3,
            softening: 0.05
        )
    }
}

/// A self-gravitating cluster of particles, written as an ordinary class that owns its arrays.
///
/// Nothing here knows about checkpoints: `NBodyCommand` registers the properties with the
/// checkpointer's registry by key path, which is how an existing simulation gets restart support
/// without being restructured.
///
/// The physics is deterministic: a seeded generator builds the initial state, and every force sum
/// runs over the particles in the same order on one thread, so a run resumed from a checkpoint ends
/// bit-identical to one that was never interrupted.
final class ParticleSystem {
    var setup: Setup
    /// Positions, one `SIMD3<Double>` per particle (saved raw).
    var positions: [SIMD3<Double>]
    /// Velocities (saved raw).
    var velocities: [SIMD3<Double>]
    /// Mass of each particle (saved raw).
    var masses: [Double]
    /// Index into `setup.species` of each particle (saved raw).
    var species: [Int32]
    /// Simulated time (a raw scalar).
    var time = 0.0
    /// Steps taken (a raw scalar).
    var step = 0

    /// A cold, slowly rotating ball of particles with masses drawn from `setup.species`; the total mass is about 1.
    init(setup: Setup) {
        self.setup = setup
        var random = SplitMix64(seed: setup.seed)
        let meanMass = setup.species.map(\.mass).reduce(0, +) / Double(setup.species.count)
        positions = []
        velocities = []
        masses = []
        species = []
        for _ in 0..<setup.particles {
            var position: SIMD3<Double>
            repeat {
                position = SIMD3(random.nextSigned(), random.nextSigned(), random.nextSigned())
            } while Self.dot(position, position) > 1
            let kind = Int(random.next() % UInt64(setup.species.count))
            let spin = SIMD3(-position.y, position.x, 0) * 0.3
            let jitter = SIMD3(random.nextSigned(), random.nextSigned(), random.nextSigned()) * 0.05
            positions.append(position)
            velocities.append(spin + jitter)
            masses.append(setup.species[kind].mass / (meanMass * Double(setup.particles)))
            species.append(Int32(kind))
        }
    }

    /// One step of semi-implicit (symplectic) Euler under softened Newtonian gravity (G = 1).
    func advance() {
        let count = positions.count
        let softening2 = setup.softening * setup.softening
        let dt = setup.timeStep
        var accelerations = [SIMD3<Double>](repeating: .zero, count: count)
        for i in 0..<count {
            let here = positions[i]
            var acceleration = SIMD3<Double>.zero
            for j in 0..<count where j != i {
                let offset = positions[j] - here
                let distance2 = Self.dot(offset, offset) + softening2
                acceleration += offset * (masses[j] / (distance2 * distance2.squareRoot()))
            }
            accelerations[i] = acceleration
        }
        for i in 0..<count {
            velocities[i] += accelerations[i] * dt
            positions[i] += velocities[i] * dt
        }
        time += dt
        step += 1
    }

    /// FNV-1a (64-bit) over the bits of every position, velocity and the time, as 16 hex digits:
    /// equal checksums mean bit-identical states.
    var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ value: Double) {
            var bits = value.bitPattern
            for _ in 0..<8 {
                hash = (hash ^ (bits & 0xFF)) &* 0x100_0000_01b3
                bits >>= 8
            }
        }
        for vector in positions + velocities {
            mix(vector.x)
            mix(vector.y)
            mix(vector.z)
        }
        mix(time)
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The dot product, written out so the order of additions is fixed.
    private static func dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double {
        a.x * b.x + a.y * b.y + a.z * b.z
    }
}

/// A small, seeded pseudo-random generator (SplitMix64): the same seed gives the same particles everywhere.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A uniform `Double` in [-1, 1).
    mutating func nextSigned() -> Double {
        Double(next() >> 11) / Double(1 << 52) - 1
    }
}
