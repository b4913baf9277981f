/// When a safe point takes a checkpoint.
///
/// ``Checkpointer/checkpoint(_:step:metadata:)`` asks the policy at every safe point. Step-based
/// rules are aligned to step numbers (`everySteps(100)` checkpoints at steps 100, 200, …), so a
/// restarted run checkpoints at the same steps as an uninterrupted one.
///
/// ```swift
/// configuration.policy = .any(.everySteps(1_000), .every(seconds: 3_600))
/// ```
public struct CheckpointPolicy: Sendable, CustomStringConvertible {
    indirect enum Rule: Sendable {
        case always
        case never
        case everySteps(UInt64)
        case interval(Double)
        case any([Rule])
    }

    let rule: Rule

    /// Every safe point checkpoints.
    public static let always = CheckpointPolicy(rule: .always)
    /// Safe points never checkpoint; only explicit ``Checkpointer/save(_:step:metadata:)`` calls do.
    public static let never = CheckpointPolicy(rule: .never)

    /// Checkpoint at steps that are multiples of `count` (which must be positive).
    public static func everySteps(_ count: Int) -> CheckpointPolicy {
        precondition(count > 0, "everySteps needs a positive count")
        return CheckpointPolicy(rule: .everySteps(UInt64(count)))
    }

    /// Checkpoint when at least `seconds` have passed since the last checkpoint (or since the
    /// checkpointer was created).
    public static func every(seconds: Double) -> CheckpointPolicy {
        precondition(seconds >= 0 && seconds.isFinite, "every(seconds:) needs a finite, non-negative interval")
        return CheckpointPolicy(rule: .interval(seconds))
    }

    /// Checkpoint when any of `policies` says so.
    public static func any(_ policies: CheckpointPolicy...) -> CheckpointPolicy {
        CheckpointPolicy(rule: .any(policies.map(\.rule)))
    }

    /// Whether a safe point at `step` checkpoints, `secondsSinceLast` after the previous checkpoint.
    public func isDue(step: Step, secondsSinceLast: Double) -> Bool {
        Self.isDue(rule, step: step, secondsSinceLast: secondsSinceLast)
    }

    /// A readable form, e.g. `any(everySteps(100), every(60.0s))`.
    public var description: String { Self.describe(rule) }

    private static func isDue(_ rule: Rule, step: Step, secondsSinceLast: Double) -> Bool {
        switch rule {
        case .always: true
        case .never: false
        case .everySteps(let count): step.rawValue % count == 0
        case .interval(let seconds): secondsSinceLast >= seconds
        case .any(let rules): rules.contains { isDue($0, step: step, secondsSinceLast: secondsSinceLast) }
        }
    }

    private static func describe(_ rule: Rule) -> String {
        switch rule {
        case .always: "always"
        case .never: "never"
        case .everySteps(let count): "everySteps(\(count))"
        case .interval(let seconds): "every(\(seconds)s)"
        case .any(let rules): "any(\(rules.map(describe).joined(separator: ", ")))"
        }
    }
}
