import Foundation

/// When a safe point takes a checkpoint.
///
/// ``Checkpointer/checkpoint(_:step:metadata:)-(Checkpointable,_,_)`` asks the policy at every safe point (on rank 0,
/// whose answer every rank follows). Step-based rules are aligned to step numbers (`everySteps(100)`
/// checkpoints at steps 100, 200, …), so a restarted run checkpoints at the same steps as an
/// uninterrupted one.
///
/// ```swift
/// // Young/Daly for a one-day MTBF, but at least every hour, and never above 5 % overhead:
/// configuration.policy = CheckpointPolicy.any(.youngDaly(mtbf: 86_400), .every(seconds: 3_600))
///     .limitingOverhead(toPercent: 5)
/// ```
public struct CheckpointPolicy: Sendable, CustomStringConvertible {
    indirect enum Rule: Sendable {
        case always
        case never
        case everySteps(UInt64)
        case interval(Double)
        case youngDaly(mtbf: Double)
        case any([Rule])
        case overheadCap(Rule, fraction: Double)
    }

    let rule: Rule

    /// Every safe point checkpoints.
    public static let always = CheckpointPolicy(rule: .always)
    /// Safe points never checkpoint; only explicit ``Checkpointer/save(_:step:metadata:)-(Checkpointable,_,_)`` calls do.
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

    /// The Young/Daly optimum: checkpoint every `sqrt(2 × C × MTBF)` seconds, where C is the
    /// measured cost of a checkpoint (re-estimated after every one) and `mtbf` the mean time
    /// between failures of the whole job, in seconds.
    ///
    /// Until a first checkpoint has measured C, the first safe point checkpoints.
    public static func youngDaly(mtbf: Double) -> CheckpointPolicy {
        precondition(mtbf > 0 && mtbf.isFinite, "youngDaly needs a positive, finite MTBF in seconds")
        return CheckpointPolicy(rule: .youngDaly(mtbf: mtbf))
    }

    /// Checkpoint when any of `policies` says so.
    public static func any(_ policies: CheckpointPolicy...) -> CheckpointPolicy {
        CheckpointPolicy(rule: .any(policies.map(\.rule)))
    }

    /// This policy, but skipping checkpoints that would push the time spent checkpointing above
    /// `percent` of the run time so far.
    public func limitingOverhead(toPercent percent: Double) -> CheckpointPolicy {
        precondition(percent > 0 && percent <= 100, "the overhead cap is a percentage in (0, 100]")
        return CheckpointPolicy(rule: .overheadCap(rule, fraction: percent / 100))
    }

    /// The Young/Daly interval in seconds for a checkpoint cost and an MTBF: `sqrt(2 × cost × mtbf)`.
    public static func youngDalyInterval(cost: Double, mtbf: Double) -> Double { (2 * cost * mtbf).squareRoot() }

    /// Whether a safe point checkpoints, given what has been measured so far.
    public func isDue(_ context: PolicyContext) -> Bool { Self.isDue(rule, context) }

    /// Whether a safe point at `step` checkpoints, `secondsSinceLast` after the previous checkpoint
    /// (with no cost measured yet).
    public func isDue(step: Step, secondsSinceLast: Double) -> Bool {
        isDue(PolicyContext(step: step, secondsSinceLast: secondsSinceLast))
    }

    /// Whether a step-based rule may fire at `step` (the same answer on every rank).
    func mayBeDue(atStep step: Step) -> Bool { Self.mayBeDue(rule, step) }

    /// How often, in seconds, a clock-based rule needs to be asked to fire on time (a tenth of its
    /// interval); `.infinity` when no rule depends on the clock.
    var decisionPeriod: Double { Self.decisionPeriod(rule) }

    private static func mayBeDue(_ rule: Rule, _ step: Step) -> Bool {
        switch rule {
        case .always: true
        case .everySteps(let count): step.rawValue % count == 0
        case .never, .interval, .youngDaly: false
        case .any(let rules): rules.contains { mayBeDue($0, step) }
        case .overheadCap(let inner, _): mayBeDue(inner, step)
        }
    }

    private static func decisionPeriod(_ rule: Rule) -> Double {
        switch rule {
        case .always, .never, .everySteps: .infinity
        case .interval(let seconds): seconds / 10
        case .youngDaly: 1
        case .any(let rules): rules.map(decisionPeriod).min() ?? .infinity
        case .overheadCap(let inner, _): decisionPeriod(inner)
        }
    }

    /// A readable form, e.g. `any(everySteps(100), every(60.0s))`.
    public var description: String { Self.describe(rule) }

    private static func isDue(_ rule: Rule, _ context: PolicyContext) -> Bool {
        switch rule {
        case .always: return true
        case .never: return false
        case .everySteps(let count): return context.step.rawValue % count == 0
        case .interval(let seconds): return context.secondsSinceLast >= seconds
        case .youngDaly(let mtbf):
            guard let cost = context.checkpointCost else { return true }
            return context.secondsSinceLast >= youngDalyInterval(cost: cost, mtbf: mtbf)
        case .any(let rules): return rules.contains { isDue($0, context) }
        case .overheadCap(let inner, let fraction):
            guard isDue(inner, context) else { return false }
            guard context.runSeconds > 0 else { return true }
            let projected = context.checkpointSeconds + (context.checkpointCost ?? 0)
            return projected <= fraction * context.runSeconds
        }
    }

    private static func describe(_ rule: Rule) -> String {
        switch rule {
        case .always: "always"
        case .never: "never"
        case .everySteps(let count): "everySteps(\(count))"
        case .interval(let seconds): "every(\(seconds)s)"
        case .youngDaly(let mtbf): "youngDaly(mtbf: \(mtbf)s)"
        case .any(let rules): "any(\(rules.map(describe).joined(separator: ", ")))"
        case .overheadCap(let inner, let fraction): "\(describe(inner)).limitingOverhead(toPercent: \(fraction * 100))"
        }
    }
}

/// What a ``CheckpointPolicy`` decides from.
public struct PolicyContext: Sendable, Hashable {
    /// The step of the safe point.
    public var step: Step
    /// Seconds since the last checkpoint (or since the checkpointer was created).
    public var secondsSinceLast: Double
    /// The measured cost of one checkpoint in seconds (a moving average), or `nil` before the first.
    public var checkpointCost: Double?
    /// Seconds since the checkpointer was created.
    public var runSeconds: Double
    /// Seconds the application has spent blocked in checkpoints so far.
    public var checkpointSeconds: Double

    /// Creates a context.
    public init(
        step: Step,
        secondsSinceLast: Double,
        checkpointCost: Double? = nil,
        runSeconds: Double = 0,
        checkpointSeconds: Double = 0
    ) {
        self.step = step
        self.secondsSinceLast = secondsSinceLast
        self.checkpointCost = checkpointCost
        self.runSeconds = runSeconds
        self.checkpointSeconds = checkpointSeconds
    }
}
