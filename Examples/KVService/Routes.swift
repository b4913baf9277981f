import Checkpoint
import Foundation
import Hummingbird
import Prometheus

/// The HTTP interface:
///
/// - `PUT /kv/KEY` with the value as the body → `200 {"version": N}` once the write is applied
///   (it is in every snapshot of step N or later);
/// - `GET /kv/KEY` → the value, or 404;
/// - `DELETE /kv/KEY` → `200 {"version": N}`, or 404;
/// - `GET /status` → `{"keys": K, "version": N, "lastSnapshot": S}`;
/// - `GET /metrics` → the Prometheus text format (the checkpointer's metrics among them).
enum Routes {
    /// The longest key accepted, in bytes.
    static let maximumKeyBytes = 256
    /// The largest value accepted, in bytes.
    static let maximumValueBytes = 64 << 10

    struct Version: ResponseEncodable {
        var version: UInt64
    }

    struct Status: ResponseEncodable {
        var keys: Int
        var version: UInt64
        var lastSnapshot: UInt64?
    }

    static func router(
        store: KeyValueStore,
        checkpointer: Checkpointer,
        registry: PrometheusCollectorRegistry
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.put("/kv/:key") { request, context -> Version in
            let key = try self.key(context)
            let body = try await request.body.collect(upTo: maximumValueBytes)
            guard let value = String(bytes: body.readableBytesView, encoding: .utf8) else {
                throw HTTPError(.badRequest, message: "the value must be UTF-8 text")
            }
            return Version(version: await store.set(key, to: value).rawValue)
        }
        router.get("/kv/:key") { _, context -> String in
            guard let value = await store.value(of: try self.key(context)) else { throw HTTPError(.notFound) }
            return value
        }
        router.delete("/kv/:key") { _, context -> Version in
            guard let version = await store.remove(try self.key(context)) else { throw HTTPError(.notFound) }
            return Version(version: version.rawValue)
        }
        router.get("/status") { _, _ -> Status in
            let (count, version) = await store.summary()
            return Status(
                keys: count,
                version: version.rawValue,
                lastSnapshot: checkpointer.lastCheckpointStep?.rawValue
            )
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        return router
    }

    private static func key(_ context: BasicRequestContext) throws -> String {
        let key = try context.parameters.require("key")
        guard !key.isEmpty, key.utf8.count <= maximumKeyBytes else {
            throw HTTPError(.badRequest, message: "a key has 1 to \(maximumKeyBytes) bytes")
        }
        return key
    }
}
