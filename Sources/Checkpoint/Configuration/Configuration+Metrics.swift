import CoreMetrics

extension Checkpointer.Configuration {
    /// Where a checkpointer reports its metrics (through
    /// [swift-metrics](https://github.com/apple/swift-metrics)) and how they are labelled.
    ///
    /// Metrics are off unless the application bootstraps a backend: by default they go to
    /// `MetricsSystem.factory`, which records nothing until `MetricsSystem.bootstrap(_:)` is called
    /// (with swift-prometheus, StatsD, OpenTelemetry, …). See <doc:Metrics> for every metric.
    ///
    /// ```swift
    /// var configuration = Checkpointer.Configuration()
    /// configuration.metrics = .init(labelPrefix: "sim", dimensions: [("job", "heat-2d")])
    /// ```
    public struct MetricsOptions: Sendable {
        /// The factory that makes the metrics, or `nil` for the process-wide `MetricsSystem.factory`.
        public var factory: (any MetricsFactory)?
        /// The start of every label: `"checkpoint"` gives `checkpoint_duration_seconds`, …
        public var labelPrefix: String
        /// Dimensions added to every metric (a job or service name). Each checkpointer adds its
        /// rank as `rank`.
        public var dimensions: [(String, String)]

        /// Creates metrics options; the defaults report to the process-wide factory as
        /// `checkpoint_…` with only the `rank` dimension.
        public init(
            factory: (any MetricsFactory)? = nil,
            labelPrefix: String = "checkpoint",
            dimensions: [(String, String)] = []
        ) {
            self.factory = factory
            self.labelPrefix = labelPrefix
            self.dimensions = dimensions
        }

        /// Throws when the prefix is not a metric name most backends accept (a letter, then letters,
        /// digits and underscores) or a dimension is named `rank`.
        func validate() throws(CheckpointError) {
            let isName =
                labelPrefix.utf8.count <= 64 && labelPrefix.first.map { $0.isASCII && $0.isLetter } == true
                && labelPrefix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
            guard isName else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "metrics.labelPrefix \"\(PrintableText.escaped(labelPrefix))\" is not a metric name: use up to 64 ASCII letters, digits and underscores, starting with a letter"
                )
            }
            guard !dimensions.contains(where: { $0.0 == "rank" }) else {
                throw CheckpointError(
                    .invalidConfiguration,
                    "metrics.dimensions must not name `rank`: every checkpointer adds its rank itself"
                )
            }
        }
    }
}
