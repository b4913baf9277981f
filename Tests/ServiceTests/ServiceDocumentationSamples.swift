import Checkpoint
import CheckpointService
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

// The Swift samples of Documentation/Services.md, compiled as written (DocumentationSampleCoverageTests
// in CheckpointTests checks that every sample appears here or in its own samples file).

actor Store {
    struct Entries: Codable, Sendable {
        var values: [String: String] = [:]
        var version: Step = 0
    }

    private var entries: Entries
    init(_ entries: Entries) { self.entries = entries }

    func set(_ key: String, _ value: String) -> Step {
        entries.values[key] = value
        entries.version = Step(rawValue: entries.version.rawValue + 1)
        return entries.version
    }

    func snapshot() -> (state: Entries, step: Step) { (entries, entries.version) }
}

func serve(server: some Service, logger: Logger) async throws {
    var configuration = Checkpointer.Configuration()
    configuration.policy = .every(seconds: 5)
    configuration.retention = .init(keepLast: 3)
    let checkpointer = try await Checkpointer.open(directory: "state", configuration: configuration, logger: logger)
    let store = Store(try await checkpointer.restoreLatest(Store.Entries.self)?.state ?? Store.Entries())
    let snapshots = CheckpointService(checkpointer: checkpointer, logger: logger) { await store.snapshot() }
    // Listed first, shut down last: the server stops accepting, answers what it accepted, and only
    // then does the final snapshot run, so it holds every acknowledged write.
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: snapshots), .init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    try await group.run()
}

func bootstrapPrometheus() -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return registry  // serve registry.emitToString() at /metrics
}
