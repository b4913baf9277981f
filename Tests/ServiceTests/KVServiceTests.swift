import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `Examples/KVService` tested as a client sees it: the built `kv-service` runs as its own process,
/// URLSession (a real HTTP client, libcurl underneath) writes keys from several threads at once,
/// the server is stopped with SIGTERM or killed with SIGKILL in the middle of that load, restarted
/// on the same directory, and every key is read back over HTTP.
///
/// The tests and their writers run on threads of their own, blocking on each request, rather than
/// as tasks: Swift Testing runs the other suites' synchronous tests on the cooperative pool (as
/// many threads as cores), and writers queued behind them would measure the pool's backlog, not
/// the server (in the whole suite on 2 cores, async writers took 80 s instead of 1 s).
@Suite(.timeLimit(.minutes(5))) struct KVServiceTests {
    /// SIGTERM: the server answers what it accepted, the final snapshot holds it: every write that
    /// was acknowledged before the signal is there after the restart.
    @Test func sigtermLosesNoAcknowledgedWrite() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try KVServer(directory: directory, snapshotEvery: 60)
        let load = Load(server: server, writers: 8)
        try load.waitForAcknowledged(300)
        server.signal(SIGTERM)
        load.waitUntilStopped()
        #expect(server.waitForExit() == 0, "kv-service exits cleanly on SIGTERM: \(server.errorOutput)")
        let acknowledged = load.acknowledged
        #expect(acknowledged.count >= 300)
        #expect(server.errorOutput.contains("final snapshot taken"))

        let restarted = try KVServer(directory: directory, snapshotEvery: 60)
        defer { restarted.stop() }
        let status = try restarted.status()
        #expect(status.version >= acknowledged.map(\.version).max() ?? 0)
        try expectPresent(acknowledged, in: restarted)
    }

    /// SIGKILL: no final snapshot, but everything up to the last snapshot survives: the restart
    /// is at least at the snapshot the server reported before the kill, and holds every write
    /// acknowledged with a version up to the restored one.
    @Test func killLosesNothingBeforeTheLastSnapshot() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try KVServer(directory: directory, snapshotEvery: 0.2)
        let load = Load(server: server, writers: 8)
        try load.waitForAcknowledged(200)
        var lastSnapshot: UInt64 = 0
        let deadline = Date().addingTimeInterval(60)
        while lastSnapshot == 0 || load.acknowledged.count < 400, Date() < deadline {
            lastSnapshot = try server.status().lastSnapshot ?? 0
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(lastSnapshot > 0, "the server took a snapshot under load")
        server.signal(SIGKILL)
        load.waitUntilStopped()
        _ = server.waitForExit()
        let acknowledged = load.acknowledged

        let restarted = try KVServer(directory: directory, snapshotEvery: 60)
        defer { restarted.stop() }
        let restoredVersion = try restarted.status().version
        #expect(restoredVersion >= lastSnapshot, "the last snapshot before the kill survives")
        let covered = acknowledged.filter { $0.version <= restoredVersion }
        #expect(covered.count > 0)
        try expectPresent(covered, in: restarted)
    }

    private func expectPresent(_ writes: [Load.Write], in server: KVServer) throws {
        var missing: [String] = []
        for write in writes {
            let value = try server.get(write.key)
            if value != write.value { missing.append("\(write.key)@\(write.version): \(value ?? "absent")") }
        }
        #expect(missing.isEmpty, "\(missing.count) of \(writes.count) acknowledged writes lost: \(missing.prefix(5))")
    }

    private func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("kv-service-test-\(UUID().uuidString)").path
    }
}

/// Writer threads that PUT unique keys until the server stops answering, recording each
/// acknowledged write.
final class Load: Sendable {
    struct Write: Sendable {
        var key: String
        var value: String
        var version: UInt64
    }

    let server: KVServer
    private let writes = Locked<[Write]>([])
    private let stopped = DispatchGroup()

    /// Starts `writers` threads.
    init(server: KVServer, writers: Int) {
        self.server = server
        for writer in 0..<writers {
            stopped.enter()
            Thread { [self] in
                defer { stopped.leave() }
                var index = 0
                while true {
                    let key = "w\(writer)-\(index)"
                    let value = "value \(writer) \(index) " + String(repeating: "x", count: index % 64)
                    guard let version = try? server.put(key, value) else { return }
                    writes.withLock { $0.append(Write(key: key, value: value, version: version)) }
                    index += 1
                }
            }.start()
        }
    }

    var acknowledged: [Write] { writes.withLock { $0 } }

    /// Waits until every writer got an error (the server is gone).
    func waitUntilStopped() { stopped.wait() }

    func waitForAcknowledged(_ count: Int) throws {
        let deadline = Date().addingTimeInterval(60)
        while acknowledged.count < count {
            guard Date() < deadline else {
                throw KVServer.Failure(
                    "only \(acknowledged.count) writes acknowledged in 60 s; server: \(server.errorOutput)"
                )
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}

/// A `kv-service` process on a free port.
final class KVServer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct Status: Decodable {
        var keys: Int
        var version: UInt64
        var lastSnapshot: UInt64?
    }

    let process: Process
    let port: Int
    private let scratch: URL
    private let session: URLSession

    /// Starts the server on `directory` and waits until it listens.
    init(directory: String, snapshotEvery: Double) throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kv-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let output = scratch.appendingPathComponent("stdout")
        let errors = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = try Self.executable()
        process.arguments = [
            "--directory", directory, "--port", "0", "--snapshot-every", String(snapshotEvery),
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        self.process = process
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.httpMaximumConnectionsPerHost = 16
        session = URLSession(configuration: configuration)

        var port: Int?
        let deadline = Date().addingTimeInterval(60)
        while port == nil, process.isRunning, Date() < deadline {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
                let number = line.split(separator: ":").last.flatMap({ Int($0) })
            {
                port = number
            } else {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        guard let port else {
            if process.isRunning { process.terminate() }
            let log = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw Failure("kv-service did not start listening within 60 s: \(log)")
        }
        self.port = port
    }

    var errorOutput: String {
        (try? String(contentsOf: scratch.appendingPathComponent("stderr"), encoding: .utf8)) ?? ""
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits (at most 60 s, then kills it) for the process to exit; returns its status.
    func waitForExit() -> Int32 {
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }

    /// SIGTERM and wait; then removes the scratch folder.
    func stop() {
        if process.isRunning {
            signal(SIGTERM)
            _ = waitForExit()
        }
        try? FileManager.default.removeItem(at: scratch)
    }

    func put(_ key: String, _ value: String) throws -> UInt64 {
        var request = URLRequest(url: url("kv/\(key)"))
        request.httpMethod = "PUT"
        request.httpBody = Data(value.utf8)
        let (data, status) = try send(request)
        guard status == 200 else { throw Failure("PUT \(key): status \(status)") }
        struct Version: Decodable { var version: UInt64 }
        return try JSONDecoder().decode(Version.self, from: data).version
    }

    func get(_ key: String) throws -> String? {
        let (data, status) = try send(URLRequest(url: url("kv/\(key)")))
        switch status {
        case 200: return String(decoding: data, as: UTF8.self)
        case 404: return nil
        default: throw Failure("GET \(key): status \(status)")
        }
    }

    func status() throws -> Status {
        let (data, _) = try send(URLRequest(url: url("status")))
        return try JSONDecoder().decode(Status.self, from: data)
    }

    /// Sends `request` and blocks this thread until the answer (URLSession's own threads do the work).
    private func send(_ request: URLRequest) throws -> (Data, Int) {
        let done = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<(Data, Int), any Error>>(.failure(Failure("no answer")))
        session.dataTask(with: request) { data, response, error in
            outcome.withLock {
                if let error {
                    $0 = .failure(error)
                } else {
                    $0 = .success((data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0))
                }
            }
            done.signal()
        }.resume()
        done.wait()
        return try outcome.withLock { $0 }.get()
    }

    private func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)/\(path)")! }

    /// The `kv-service` built beside this test bundle (`KV_SERVICE_EXECUTABLE` overrides).
    private static func executable() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["KV_SERVICE_EXECUTABLE"] {
            return URL(fileURLWithPath: override)
        }
        var bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while bundle.pathExtension != "xctest" && bundle.pathComponents.count > 1 { bundle.deleteLastPathComponent() }
        let candidate = bundle.deletingLastPathComponent().appendingPathComponent("kv-service")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw Failure("kv-service was not found at \(candidate.path); run `swift build` before `swift test`")
        }
        return candidate
    }
}
