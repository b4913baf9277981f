/// A simulation step (or any monotonically increasing position) that identifies a checkpoint.
///
/// ```swift
/// var step: Step = 0
/// step += 1
/// let last = 1_000
/// if step < last { print("step \(step) of \(last), \(last - Int(step)) to go") }
/// ```
public struct Step: RawRepresentable, Hashable, Comparable, Sendable, Codable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    /// The step number.
    public var rawValue: UInt64

    /// Creates a step from its number.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Creates a step from a non-negative `Int`.
    ///
    /// - Precondition: `value >= 0`; use ``init(exactly:)`` for a value that may be negative.
    public init(_ value: Int) {
        precondition(value >= 0, "a step is non-negative, but \(value) was given; use Step(exactly:) to check")
        rawValue = UInt64(value)
    }

    /// Creates a step from an `Int`, or `nil` when the value is negative.
    public init?(exactly value: Int) {
        guard value >= 0 else { return nil }
        rawValue = UInt64(value)
    }

    /// Creates a step from an integer literal.
    public init(integerLiteral value: UInt64) { rawValue = value }

    /// The step as an `Int`, for loops and arithmetic; the same as `Int(step)`.
    public var intValue: Int { Int(self) }

    /// The decimal number.
    public var description: String { String(rawValue) }

    /// Orders steps by number.
    public static func < (lhs: Step, rhs: Step) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The step `count` steps later (earlier when `count` is negative).
    ///
    /// - Precondition: The result is neither negative nor beyond `UInt64.max`.
    public static func + (lhs: Step, rhs: Int) -> Step { lhs.moved(by: rhs.magnitude, forward: rhs >= 0) }

    /// The step `count` steps later (earlier when `count` is negative).
    public static func + (lhs: Int, rhs: Step) -> Step { rhs + lhs }

    /// The step `count` steps earlier (later when `count` is negative).
    ///
    /// - Precondition: The result is not negative (`step - count >= 0`).
    public static func - (lhs: Step, rhs: Int) -> Step { lhs.moved(by: rhs.magnitude, forward: rhs < 0) }

    private func moved(by count: UInt, forward: Bool) -> Step {
        if forward {
            let (sum, overflow) = rawValue.addingReportingOverflow(UInt64(count))
            precondition(!overflow, "step \(self) + \(count) is beyond UInt64.max")
            return Step(rawValue: sum)
        }
        let (difference, overflow) = rawValue.subtractingReportingOverflow(UInt64(count))
        precondition(!overflow, "step \(self) - \(count) would be negative; steps are non-negative")
        return Step(rawValue: difference)
    }

    /// The number of steps from `rhs` to `lhs` (negative when `lhs` is earlier).
    ///
    /// - Precondition: The distance fits an `Int`.
    public static func - (lhs: Step, rhs: Step) -> Int {
        if lhs >= rhs {
            guard let distance = Int(exactly: lhs.rawValue - rhs.rawValue) else {
                preconditionFailure("the distance from step \(rhs) to \(lhs) does not fit an Int")
            }
            return distance
        }
        guard let distance = Int(exactly: rhs.rawValue - lhs.rawValue) else {
            preconditionFailure("the distance from step \(rhs) to \(lhs) does not fit an Int")
        }
        return -distance
    }

    /// Advances the step by `count` (goes back when `count` is negative).
    public static func += (lhs: inout Step, rhs: Int) { lhs = lhs + rhs }

    /// Goes back `count` steps (advances when `count` is negative).
    public static func -= (lhs: inout Step, rhs: Int) { lhs = lhs - rhs }

    /// Whether the step's number equals `rhs` (never for a negative `rhs`).
    public static func == (lhs: Step, rhs: Int) -> Bool { rhs >= 0 && lhs.rawValue == UInt64(rhs) }
    /// Whether the step's number differs from `rhs`.
    public static func != (lhs: Step, rhs: Int) -> Bool { !(lhs == rhs) }
    /// Whether the step's number is less than `rhs`.
    public static func < (lhs: Step, rhs: Int) -> Bool { rhs > 0 && lhs.rawValue < UInt64(rhs) }
    /// Whether the step's number is at most `rhs`.
    public static func <= (lhs: Step, rhs: Int) -> Bool { rhs >= 0 && lhs.rawValue <= UInt64(rhs) }
    /// Whether the step's number is greater than `rhs`.
    public static func > (lhs: Step, rhs: Int) -> Bool { !(lhs <= rhs) }
    /// Whether the step's number is at least `rhs`.
    public static func >= (lhs: Step, rhs: Int) -> Bool { !(lhs < rhs) }
    /// Whether `lhs` equals the step's number.
    public static func == (lhs: Int, rhs: Step) -> Bool { rhs == lhs }
    /// Whether `lhs` differs from the step's number.
    public static func != (lhs: Int, rhs: Step) -> Bool { rhs != lhs }
    /// Whether `lhs` is less than the step's number.
    public static func < (lhs: Int, rhs: Step) -> Bool { rhs > lhs }
    /// Whether `lhs` is at most the step's number.
    public static func <= (lhs: Int, rhs: Step) -> Bool { rhs >= lhs }
    /// Whether `lhs` is greater than the step's number.
    public static func > (lhs: Int, rhs: Step) -> Bool { rhs < lhs }
    /// Whether `lhs` is at least the step's number.
    public static func >= (lhs: Int, rhs: Step) -> Bool { rhs <= lhs }

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

extension Int {
    /// The step's number.
    ///
    /// - Precondition: The step is at most `Int.max`; use `Int(exactly:)` to check.
    public init(_ step: Step) {
        guard let value = Int(exactly: step.rawValue) else {
            preconditionFailure("step \(step) is beyond Int.max; use Int(exactly: step) to check")
        }
        self = value
    }

    /// The step's number, or `nil` when it is beyond `Int.max`.
    public init?(exactly step: Step) {
        guard let value = Int(exactly: step.rawValue) else { return nil }
        self = value
    }
}
