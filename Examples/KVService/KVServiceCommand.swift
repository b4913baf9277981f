import ArgumentParser
import Checkpoint
import CheckpointService
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// An HTTP key-value store whose entries survive restarts: restored from the newest checkpoint at
/// start, snapshotted every few seconds while it runs, and once more when it is stopped with
/// SIGTERM or SIGINT (after the server has answered every request it accepted).
@main
struct KVServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv-service",
        abstract: "An HTTP key-value store whose state is checkpointed and restored at start.",
        discussion: """
            PUT /kv/KEY (body: the value), GET /kv/KEY, DELETE /kv/KEY, GET /status, GET /metrics.
            A write acknowledged with {"version": N} is in every snapshot of step N or later. SIGTERM
            or SIGINT: the server stops accepting, answers what it accepted, takes a final snapshot
            and exits. After kill -9, the restart has everything up to the last snapshot.
            """
    )

    @Option(help: "The checkpoint directory.")
    var directory = "kv-checkpoints"

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: any free port; the chosen one is printed).")
    var port = 8080

    @Option(help: "Seconds between snapshots while the store changes.")
    var snapshotEvery = 5.0

    @Option(help: "How many snapshots to keep.")
    var keep = 3

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard snapshotEvery.isFinite, snapshotEvery >= 0.01, snapshotEvery <= 86_400 else {
            throw ValidationError("--snapshot-every must be between 0.01 and 86400 seconds")
        }
        guard keep >= 1 else { throw ValidationError("--keep must be at least 1") }
    }

    func run() async throws {
        var logger = Logger(label: "kv-service")
        logger.logLevel = .info
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        var configuration = Checkpointer.Configuration()
        configuration.policy = .every(seconds: snapshotEvery)
        configuration.retention = .init(keepLast: keep)
        configuration.metrics = .init(dimensions: [("service", "kv")])
        let checkpointer = try await Checkpointer.open(
            directory: directory,
            configuration: configuration,
            logger: logger
        )
        let restored = try await checkpointer.restoreLatest(Entries.self)
        let store = KeyValueStore(restored?.state ?? Entries())
        logger.notice(
            "restored",
            metadata: [
                "version": "\(restored?.step.description ?? "none: starting empty")", "directory": "\(directory)",
            ]
        )

        let snapshots = CheckpointService(
            checkpointer: checkpointer,
            checkInterval: .milliseconds(min(1_000, max(10, Int(snapshotEvery * 250)))),
            logger: logger
        ) {
            await store.snapshot()
        }
        let router = Routes.router(store: store, checkpointer: checkpointer, registry: registry)
        router.middlewares.add(MetricsMiddleware())
        let server = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "kv-service"),
            onServerRunning: { channel in
                // The test and scripts read the port from this line.
                let line = "listening on http://\(host):\(channel.localAddress?.port ?? port)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            },
            logger: logger
        )
        // Shut down in reverse order: the server first (it finishes the requests it accepted),
        // then the snapshot service, whose final snapshot holds every acknowledged write.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: snapshots), .init(service: server)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        let version = await store.summary().version
        logger.notice("stopped", metadata: ["version": "\(version)"])
    }
}
