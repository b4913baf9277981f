import Foundation

/// Decides, collectively, whether a safe point checkpoints, and keeps what that decision needs:
/// the checkpoint clock and measured cost, the time blocked, the stop request, and the pacing of
/// collective decisions.
final class SafePointScheduler: Sendable {
    /// The collective decision of one safe point: every rank learns the same answer.
    struct Decision {
        var policyDue: Bool
        var stop: Bool
        var anyBusy: Bool
        var anyFailed: Bool
        var take: Bool { policyDue || stop }
    }

    private struct Memory {
        var lastCheckpoint = Stopwatch()
        let started = Stopwatch()
        let startDate = Date()
        /// Moving average of a checkpoint's duration (seconds), for Young/Daly.
        var cost: Double?
        /// Seconds the application spent blocked in checkpoints.
        var blockedSeconds = 0.0
        var lastStep: Step?
        var stopRequested = false
        /// Safe points seen so far, and the one at which the ranks decide next.
        var safePoints = 0
        var nextDecision = 0
        /// Rank 0's clock and safe-point count at the last decision, to pace the next one.
        var lastDecision = Stopwatch()
        var safePointsAtLastDecision = 0
    }

    /// How often ranks decide together: often enough that a time-based rule, a signal or a
    /// deadline is acted on within this many seconds, rarely enough that a fast loop does not pay
    /// a global synchronization at every step.
    static let decisionPeriod = 0.05

    let configuration: Checkpointer.Configuration
    let communicator: any Communicator
    /// The stop signals this checkpointer has acted on (`nil`: it does not handle signals).
    let stopSignal: StopSignalWatch?
    private let state = Locked(Memory())

    init(configuration: Checkpointer.Configuration, communicator: any Communicator) {
        self.configuration = configuration
        self.communicator = communicator
        self.stopSignal = configuration.stopSignals.map { _ in StopSignalWatch() }
    }

    var rank: Int { communicator.rank }
    var lastStep: Step? { state.withLock { $0.lastStep } }
    var cost: Double? { state.withLock { $0.cost } }
    var stopRequested: Bool { state.withLock { $0.stopRequested } }

    /// What the policy decides from, now.
    func policyContext(_ step: Step) -> PolicyContext {
        state.withLock { state in
            PolicyContext(
                step: step,
                secondsSinceLast: state.lastCheckpoint.elapsed,
                checkpointCost: state.cost,
                runSeconds: state.started.elapsed,
                checkpointSeconds: state.blockedSeconds
            )
        }
    }

    /// The collective decision of one safe point, or `nil` when the ranks agreed earlier to skip it.
    ///
    /// With several ranks a decision is an `allreduce`, which synchronizes every rank. Ranks
    /// therefore decide only at the safe points rank 0 scheduled at the previous decision (about
    /// every ``decisionPeriod`` seconds, from the measured time per safe point), and at every step
    /// where a step-based rule may fire; both are the same on every rank, so no rank ever waits
    /// alone in a collective.
    func decide(_ step: Step, background: BackgroundPipeline?) throws -> Decision? {
        let (index, scheduled) = state.withLock { state -> (Int, Bool) in
            defer { state.safePoints += 1 }
            return (state.safePoints, state.safePoints >= state.nextDecision)
        }
        if communicator.size > 1 && !scheduled && !configuration.policy.mayBeDue(atStep: step) { return nil }
        let (stopAlreadyRequested, cost, startDate) = state.withLock { ($0.stopRequested, $0.cost, $0.startDate) }
        let deadlineNear =
            configuration.deadline.map { $0.remaining(now: Date(), start: startDate) <= 2 * (cost ?? 1) } ?? false
        let signalled = stopSignal?.isPending ?? false
        let local: [Int64] = [
            rank == 0 && configuration.policy.isDue(policyContext(step)) ? 1 : 0,
            !stopAlreadyRequested && (signalled || (rank == 0 && deadlineNear)) ? 1 : 0,
            background?.isBusy == true ? 1 : 0,
            background?.hasFailure == true ? 1 : 0,
            rank == 0 ? Int64(safePointsUntilNextDecision(index)) : 0,
        ]
        let agreed = communicator.size == 1 ? local : try communicator.allreduce(local, .max)
        state.withLock { $0.nextDecision = index + Int(agreed[4]) }
        return Decision(
            policyDue: agreed[0] == 1,
            stop: agreed[1] == 1,
            anyBusy: agreed[2] == 1,
            anyFailed: agreed[3] == 1
        )
    }

    /// Rank 0's pacing: how many safe points fit in the decision period at the recent pace.
    private func safePointsUntilNextDecision(_ index: Int) -> Int {
        let period = min(Self.decisionPeriod, configuration.policy.decisionPeriod)
        return state.withLock { state in
            let elapsed = state.lastDecision.elapsed
            let calls = index - state.safePointsAtLastDecision
            state.lastDecision.restart()
            state.safePointsAtLastDecision = index
            guard calls > 0, elapsed > 0, period > 0 else { return 1 }
            return max(1, min(1_000_000, Int(period / (elapsed / Double(calls)))))
        }
    }

    /// The stop a decision asked for has been acted on: the application should stop now.
    func stopHandled() {
        stopSignal?.acknowledge()
        state.withLock { $0.stopRequested = true }
    }

    /// A checkpoint of `step` was taken (or handed to the background) after blocking the
    /// application for `blocked` seconds.
    func checkpointTaken(_ step: Step, blocked: Double) {
        state.withLock { state in
            state.lastCheckpoint.restart()
            state.blockedSeconds += blocked
            state.lastStep = step
        }
    }

    /// A checkpoint of `step` was restored.
    func restored(_ step: Step) { state.withLock { $0.lastStep = step } }

    /// Updates the moving average of a checkpoint's duration.
    func recordCost(_ seconds: Double) {
        state.withLock { state in state.cost = state.cost.map { 0.5 * $0 + 0.5 * seconds } ?? seconds }
    }
}
