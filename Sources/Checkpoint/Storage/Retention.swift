extension Checkpointer.Configuration {
    /// Which committed checkpoints survive when a newer one commits.
    public struct Retention: Sendable, Hashable {
        /// Keep this many newest checkpoints (at least 1).
        public var keepLast: Int
        /// Also keep, forever, every checkpoint whose step is a multiple of this (`nil`: none).
        public var keepEvery: Int?

        /// Creates a retention rule.
        public init(keepLast: Int = 3, keepEvery: Int? = nil) {
            self.keepLast = keepLast
            self.keepEvery = keepEvery
        }

        /// The steps to delete from `steps` under this rule alone.
        ///
        /// With incremental checkpoints a kept checkpoint may use chunks stored in one this rule
        /// would delete; ``CheckpointDirectory/prunePlan(_:)`` keeps those too, and is what
        /// retention and pruning apply.
        public func stepsToDelete(from steps: [Step]) -> [Step] {
            let newestFirst = steps.sorted(by: >)
            return newestFirst.dropFirst(keepLast).filter { step in
                guard let every = keepEvery else { return true }
                return step.rawValue % UInt64(every) != 0
            }
        }
    }
}
