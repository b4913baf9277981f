/// A simulation step (or any monotonically increasing position) that identifies a checkpoint.
///
/// ```swift
/// var step: Step = 0
/// step += 1
/// if step < 1_000 { … }
/// ```
public struct Step: RawRepresentable, Hashable, Comparable, Sendable, Codable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    /// The step number.
    public var rawValue: UInt64

    /// Creates a step from its number.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Creates a step from a non-negative `Int`.
    public init(_ value: Int) {
        precondition(value >= 0, "steps are non-negative")
        rawValue = UInt64(value)
    }

    /// Creates a step from an integer literal.
    public init(integerLiteral value: UInt64) { rawValue = value }

    /// The step as an `Int`, for loops and arithmetic.
    public var intValue: Int { Int(rawValue) }

    /// The decimal number.
    public var description: String { String(rawValue) }

    /// Orders steps by number.
    public static func < (lhs: Step, rhs: Step) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The step `count` steps later.
    public static func + (lhs: Step, rhs: Int) -> Step { Step(rawValue: lhs.rawValue + UInt64(rhs)) }

    /// Advances the step by `count`.
    public static func += (lhs: inout Step, rhs: Int) { lhs = lhs + rhs }

    /// Encodes as a bare number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Decodes from a bare number.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(UInt64.self)
    }
}
