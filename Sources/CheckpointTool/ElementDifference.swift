import Checkpoint
import Foundation

/// How two same-typed, same-shaped arrays of elements differ, element by element.
struct ElementDifference: Equatable {
    /// Elements whose bytes differ (a vector element counts once, whichever lanes differ).
    var differingElements = 0
    /// The largest `|a - b|` over the scalars of differing elements; `nil` for types that are not
    /// numbers (plain structs). NaN when a differing scalar is NaN on one side only.
    var maxAbsDifference: Double?

    /// The difference of equal arrays: no element differs, and for numbers the largest difference is 0.
    init(unchanged type: ElementType) {
        maxAbsDifference = Self.isNumeric(type) ? 0 : nil
    }

    /// Whether the elements are made of numbers (a plain struct is not).
    static func isNumeric(_ type: ElementType) -> Bool {
        type.scalar != .opaque && type.scalar.size > 0 && type.size % type.scalar.size == 0
    }

    /// Compares the little-endian bytes of two arrays of `type`.
    /// - Precondition: `a` and `b` have the same length, a multiple of `type.size`.
    init(_ a: [UInt8], _ b: [UInt8], type: ElementType) {
        precondition(a.count == b.count, "compare arrays of the same length")
        let size = max(1, type.size)
        let scalar = type.scalar
        let numeric = Self.isNumeric(type)
        let load = Self.loader(scalar)
        let lanes = numeric ? type.size / scalar.size : 0
        maxAbsDifference = numeric ? 0 : nil
        var largest = 0.0
        var differing = 0
        a.withUnsafeBytes { first in
            b.withUnsafeBytes { second in
                guard let base1 = first.baseAddress, let base2 = second.baseAddress else { return }
                var offset = 0
                while offset + size <= first.count {
                    if memcmp(base1 + offset, base2 + offset, size) != 0 {
                        differing += 1
                        for lane in 0..<lanes {
                            let at = offset + lane * scalar.size
                            let difference = abs(load(base1 + at) - load(base2 + at))
                            // NaN on one side must show, and `max` would drop it.
                            if difference.isNaN || largest.isNaN {
                                largest = .nan
                            } else {
                                largest = max(largest, difference)
                            }
                        }
                    }
                    offset += size
                }
            }
        }
        differingElements = differing
        if numeric { maxAbsDifference = largest }
    }

    /// Reads one little-endian scalar as a `Double` (64-bit integers beyond 2^53 are rounded).
    private static func loader(_ scalar: ElementType.Scalar) -> (UnsafeRawPointer) -> Double {
        switch scalar {
        case .opaque: { _ in 0 }
        case .bool: { $0.load(as: UInt8.self) == 0 ? 0 : 1 }
        case .int8: { Double($0.loadUnaligned(as: Int8.self)) }
        case .uint8: { Double($0.loadUnaligned(as: UInt8.self)) }
        case .int16: { Double(Int16(littleEndian: $0.loadUnaligned(as: Int16.self))) }
        case .uint16: { Double(UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self))) }
        case .int32: { Double(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) }
        case .uint32: { Double(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        case .int64: { Double(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
        case .uint64: { Double(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        case .float16: { half(UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self))) }
        case .float32: { Double(Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)))) }
        case .float64: { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        }
    }

    /// An IEEE 754 half-precision value (`Float16` is not available on every platform Swift runs on).
    static func half(_ bits: UInt16) -> Double {
        let sign: Double = bits >> 15 == 0 ? 1 : -1
        let exponent = Int(bits >> 10 & 0x1F)
        let fraction = Double(bits & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 31: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}
