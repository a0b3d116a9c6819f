import AsyncHTTPClient
import Catalog
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// The workers as users deploy them: the image docker/build makes, run by podman (hardened: non-root, read-only,
/// no capabilities) against PostgreSQL and moto (SigV4 enforced) on the host's loopback. Serialized: each test
/// runs several containers, and the machine has two cores.
@Suite("the cloud image in containers", .serialized)
struct ContainerPipelineTests {
    static let token = "container-test-token-" + UUID().uuidString.prefix(8).lowercased()

    /// The containers' environment: the harness's catalog and buckets (with the host's loopback addresses, which
    /// `--network host` shares), the archive class STANDARD so the host can restore without a thaw, and the
    /// status server's address and token.
    static func containerEnvironment(_ harness: PipelineHarness, statusPort: Int, webhook: String, s3Endpoint: String? = nil) -> [String: String] {
        var environment = harness.environment
        environment.removeValue(forKey: "BACKUP_DATA_DIR") // the image's own: /var/lib/personal-backup
        environment["BACKUP_ARCHIVE_STORAGE_CLASS"] = "STANDARD"
        environment["BACKUP_ALERT_WEBHOOK_URL"] = webhook + "/hook"
        environment["BACKUP_STATUS_HOST"] = "127.0.0.1"
        environment["BACKUP_STATUS_PORT"] = String(statusPort)
        environment["BACKUP_STATUS_TOKEN"] = token
        if let s3Endpoint { environment["AWS_ENDPOINT_URL_S3"] = s3Endpoint }
        return environment
    }

    /// The status server's /api/status (nil while it does not answer 200).
    static func statusJSON(port: Int, token: String = token) async throws -> [String: Any]? {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/status")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)), response.status.code == 200 else { return nil }
        let body = try await response.body.collect(upTo: 4 << 20)
        return try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
    }

    static func waitUntil(_ limit: Duration, _ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("not within \(limit): \(what)")
        throw CancellationError()
    }

    /// Every original file of the source directory, by relative path.
    static func files(under root: String) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[relative] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative)))
            }
        }
        return result
    }

    /// `uploader audit` and `uploader restore` on the host: the audit says safe, and every original comes back
    /// byte for byte. Returns the restored files.
    static func auditAndRestore(_ harness: PipelineHarness, label: String) async throws -> [String: [UInt8]] {
        let standard = ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]
        let audit = try await Program.run("uploader", ["audit", "--source", label], environment: harness.environment.merging(standard) { $1 })
        #expect(audit.status == 0, "audit: \(audit.output)")
        let destination = harness.work.path + "/restored"
        let restore = try await Program.run(
            "uploader", ["restore", "--source", label, "--to", destination], environment: harness.environment.merging(standard) { $1 })
        try #require(restore.status == 0, "restore: \(restore.output.suffix(3000))")
        let restored = try files(under: destination + "/" + label)
        #expect(!restored.isEmpty, "restore wrote nothing: \(restore.output.suffix(2000))")
        for (path, bytes) in try files(under: harness.source.path) {
            #expect(restored[path].map(PipelineHarness.sha256) == PipelineHarness.sha256(bytes), "\(path) did not come back byte for byte (restored: \(restored.keys.sorted()))")
        }
        return restored
    }

    /// Every data object in the archive bucket is one the catalog points at: a copy stored twice (or left behind by
    /// a killed worker) would be an object no row names.
    static func expectNothingStoredTwice(_ harness: PipelineHarness) async throws {
        let referenced = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var keys: [String] = []
            let query: PostgresQuery = """
                SELECT archive_key FROM bundles WHERE state = 'archived'
                UNION ALL SELECT storage_key FROM objectstoragefiles WHERE storage = 'archive' AND bundle_id IS NULL AND storage_key IS NOT NULL
                """
            for try await key in try await client.query(query, logger: TestEnvironment.logger).decode(String.self) { keys.append(key) }
            return keys
        }
        #expect(referenced.count == Set(referenced).count, "two rows point at one object")
        let stored = try await PipelineHarness.allKeys(harness.archive).filter { !$0.hasPrefix("catalog/") && !$0.hasSuffix(".json") }
        #expect(Set(stored) == Set(referenced), "in the bucket but not the catalog: \(Set(stored).subtracting(referenced)); in the catalog but not the bucket: \(Set(referenced).subtracting(stored))")
    }

    @Test("the sample disc: migrate, transcoder, archiver and status server as containers; everything archived on the container's status URL; restored byte for byte on the host; JSON logs; podman stop exits 0 and hands work back")
    func sampleDiscThroughContainers() async throws {
        try await Podman.buildImage()
        try await PipelineHarness.with(.s3) { harness in
            try await withWebhookReceiver { webhook, inbox in try await ContainerSet.with { containers in
                let statusPort = try TestEnvironment.freeLoopbackPort()
                let environmentFile = harness.work.path + "/containers.env"
                try writeEnvironmentFile(Self.containerEnvironment(harness, statusPort: statusPort, webhook: webhook), to: environmentFile)

                let migrate = try await ImageContainer.once(["archiver", "migrate"], environmentFile: environmentFile)
                try #require(migrate.status == 0, "archiver migrate in a container: \(migrate.output)")

                let made = try await Subprocess.run(FaultProxy.repositoryRoot + "/scripts/make-sample-disc", [harness.source.path, "2"])
                try #require(made.status == 0, "\(made.output)")
                // --keep-raw: the originals stay beside the transcodes, so every byte the user had can be compared.
                let upload = try await harness.upload(label: "Sample disc", extra: ["--keep-raw"])
                try #require(upload.status == 0, "\(upload.output)")

                let started = ContinuousClock.now
                let transcoder = try await containers.start(["transcoder", "run"], name: "transcoder", environmentFile: environmentFile)
                let archiver = try await containers.start(["archiver", "run"], name: "archiver", environmentFile: environmentFile)
                let status = try await containers.start(["status-server"], name: "status", environmentFile: environmentFile)

                var firstClaim: Duration?
                try await Self.waitUntil(.seconds(600), "the status server in its container reports the sample disc complete") {
                    if firstClaim == nil, try await harness.scalar(
                        "SELECT count(*) FROM objectstoragefiles WHERE lease_owner IS NOT NULL OR state NOT IN ('staged', 'pending')", as: Int64.self) ?? 0 > 0 {
                        firstClaim = ContinuousClock.now - started
                    }
                    guard let json = try await Self.statusJSON(port: statusPort), let sources = json["sources"] as? [[String: Any]] else { return false }
                    return sources.first { $0["label"] as? String == "Sample disc" }?["complete"] as? Bool == true
                }
                let wall = ContinuousClock.now - started
                print("containers: first claim \(firstClaim.map { "\($0)" } ?? "?") after start, sample disc complete \(wall) after start")

                let restored = try await Self.auditAndRestore(harness, label: "Sample disc")
                // The two home videos have a transcode each beside the kept original.
                #expect(restored.keys.filter { $0.hasPrefix("Home videos/") }.count == 4, "\(restored.keys.sorted())")
                try await Self.expectNothingStoredTwice(harness)

                // Logs: one JSON object per line, with the fields docs/deploy.md's Logs Insights queries read.
                for container in [transcoder, archiver, status] {
                    let lines = try await container.logs().split(separator: "\n")
                    #expect(!lines.isEmpty, "\(container.name) logged nothing")
                    for line in lines {
                        let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                        #expect(object?["time"] is String && object?["level"] is String && object?["message"] is String, "not a JSON log line: \(line)")
                    }
                }
                let archiverLog = try await archiver.logs()
                #expect(archiverLog.contains("\"message\":\"worker started\"") && archiverLog.contains("\"worker.id\""), "\(archiverLog.prefix(2000))")
                #expect(archiverLog.contains("\"message\":\"batch done\""))

                // podman stop: SIGTERM, exit 0 within the grace period, the worker's row says it stopped.
                for container in [transcoder, archiver] {
                    let took = try await container.expectGracefulStop()
                    print("\(container.name): podman stop took \(took)")
                }
                #expect(try await harness.scalar(
                    "SELECT count(*) FROM workers WHERE role IN ('transcoder', 'archiver') AND stopped_at IS NULL", as: Int64.self) == 0)
                #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE lease_owner IS NOT NULL", as: Int64.self) == 0)
                // A clean stop is not a crash.
                let alerts = await inbox.received.filter { $0.body.contains("\"worker-dead\"") }
                #expect(alerts.isEmpty, "\(alerts.map(\.body))")
            } }
        }
    }

    @Test("podman stop of an archiver holding a batch hands it back and exits 0; podman kill of the next one in the middle of a batch: exactly one crash alert within 60 s; a new archiver container finishes with nothing lost and nothing stored twice")
    func killedArchiverAlertsOnceAndANewOneFinishes() async throws {
        try await Podman.buildImage()
        try await PipelineHarness.with(.s3) { harness in
            try await withWebhookReceiver { webhook, inbox in try await ContainerSet.with { containers in
                for index in 0..<300 {
                    try harness.write("letters/\(index / 50)/letter-\(index).txt", PipelineHarness.bytes(count: 2_000 + index * 37, seed: UInt64(index + 1)))
                }
                try harness.write("drive/backup.tar", PipelineHarness.bytes(count: 9 << 20, seed: 999))
                let upload = try await harness.upload(label: "Old laptop")
                try #require(upload.status == 0, "\(upload.output)")

                // Bundles never reach the archive bucket through this proxy: the batch hangs half-way, claims held.
                let proxy = try await FaultProxy()
                defer { proxy.stop() }
                try await proxy.inject([.init("any", "hang", pathContains: "-archive/archive/bundles/")])

                let statusPort = try TestEnvironment.freeLoopbackPort()
                let environmentFile = harness.work.path + "/containers.env"
                let throughProxy = harness.work.path + "/containers-proxy.env"
                try writeEnvironmentFile(Self.containerEnvironment(harness, statusPort: statusPort, webhook: webhook), to: environmentFile)
                try writeEnvironmentFile(Self.containerEnvironment(harness, statusPort: statusPort, webhook: webhook, s3Endpoint: proxy.endpoint), to: throughProxy)
                _ = try await containers.start(["status-server"], name: "status", environmentFile: environmentFile)
                func waitForHeldBatch() async throws {
                    try await Self.waitUntil(.seconds(120), "the archiver holds a batch") {
                        try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state = 'archiving'", as: Int64.self) ?? 0 > 0
                    }
                }

                // podman stop while the batch hangs: SIGTERM, the claims handed back within the grace period, exit 0.
                let stopped = try await containers.start(["archiver", "run"], name: "archiver-stopped", environmentFile: throughProxy)
                try await waitForHeldBatch()
                let stopTook = try await stopped.expectGracefulStop()
                #expect(try await harness.scalar(
                    "SELECT count(*) FROM objectstoragefiles WHERE state = 'archiving' OR lease_owner IS NOT NULL", as: Int64.self) == 0,
                        "the stopped archiver's claims were not handed back")
                print("podman stop of an archiver holding a hung batch: exit 0 after \(stopTook)")

                let doomed = try await containers.start(["archiver", "run"], name: "archiver", environmentFile: throughProxy)
                try await waitForHeldBatch()
                let held = try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE state = 'archiving'", as: Int64.self) ?? 0
                try await Podman.must(["kill", doomed.name])
                let killedAt = ContinuousClock.now
                let exitCode = try await doomed.state("ExitCode")
                #expect(exitCode == "137")

                var crashAlerts: [WebhookInbox.Received] = []
                while crashAlerts.isEmpty && ContinuousClock.now - killedAt < .seconds(75) {
                    try await Task.sleep(for: .milliseconds(250))
                    crashAlerts = await inbox.received.filter { $0.body.contains("\"worker-dead\"") }
                }
                let everything = await inbox.received.map(\.body)
                let first = try #require(crashAlerts.first, "no crash alert within 75 s of the kill; received: \(everything)")
                #expect(first.at - killedAt < .seconds(60), "alerted \(first.at - killedAt) after the kill")
                print("podman kill with \(held) files claimed: crash alert \(first.at - killedAt) after the kill")
                #expect(first.body.contains("archiver worker 1@\(doomed.name)"), "\(first.body)")

                _ = try await containers.start(["archiver", "run"], name: "archiver2", environmentFile: environmentFile)
                try await Self.waitUntil(.seconds(300), "a new archiver container archives everything") {
                    try await harness.scalar(
                        "SELECT count(*) FROM objectstoragefiles WHERE state NOT IN ('archived', 'duplicate')", as: Int64.self) == 0
                }
                _ = try await Self.auditAndRestore(harness, label: "Old laptop")
                try await Self.expectNothingStoredTwice(harness)
                // Several watchdog passes later, still the one alert for the one dead worker.
                try await Task.sleep(for: .seconds(12))
                let allCrashAlerts = await inbox.received.filter { $0.body.contains("\"worker-dead\"") }
                #expect(allCrashAlerts.count == 1, "\(allCrashAlerts.map(\.body))")
            } }
        }
    }

    @Test("podman pause: the worker's health check turns unhealthy once its heartbeat is stale, and healthy again after unpause")
    func pausedWorkerTurnsUnhealthy() async throws {
        try await Podman.buildImage()
        try await PipelineHarness.with(.s3) { harness in try await ContainerSet.with { containers in
            let environmentFile = harness.work.path + "/containers.env"
            try writeEnvironmentFile(Self.containerEnvironment(harness, statusPort: try TestEnvironment.freeLoopbackPort(), webhook: "http://127.0.0.1:9"), to: environmentFile)
            let worker = try await containers.start(
                ["archiver", "run", "--lease-seconds", "6"], name: "archiver", environmentFile: environmentFile, extra: ["-e", "HEALTHCHECK_STALE_AFTER=12"])

            // The image's own HEALTHCHECK, run by podman inside the container.
            try await Self.waitUntil(.seconds(60), "the archiver container turns healthy") {
                try await Podman.run(["healthcheck", "run", worker.name]).status == 0
            }
            try await Podman.must(["pause", worker.name])
            // A paused container cannot run a command; the same check runs beside it, in its process and host
            // namespaces, as an orchestrator's probe from outside would see it.
            func probe() async throws -> Subprocess.Result {
                try await Podman.run(
                    ["run", "--rm", "--no-healthcheck", "--pid", "container:\(worker.name)", "--uts", "container:\(worker.name)", "--env-file", environmentFile,
                     "-e", "HEALTHCHECK_STALE_AFTER=12"] + Podman.hostNetwork + Podman.hardened + [Podman.image, "/usr/local/bin/healthcheck"])
            }
            var verdict = ""
            try await Self.waitUntil(.seconds(60), "the paused archiver turns unhealthy") {
                let result = try await probe()
                verdict = result.output
                return result.status == 1 && result.output.contains("stale")
            }
            print("paused worker: \(verdict.split(separator: "\n").last ?? "")")
            try await Podman.must(["unpause", worker.name])
            try await Self.waitUntil(.seconds(30), "the archiver is healthy again after unpause") {
                try await Podman.run(["healthcheck", "run", worker.name]).status == 0
            }
        } }
    }

    @Test("the image: runs as uid 10001, has its health check, and holds no secret in its history or configuration")
    func imageIsHardened() async throws {
        try await Podman.buildImage()
        let inspect = try await Podman.must(["image", "inspect", Podman.image])
        let image = try #require((try JSONSerialization.jsonObject(with: Data(inspect.utf8)) as? [[String: Any]])?.first)
        let config = try #require(image["Config"] as? [String: Any])
        #expect(config["User"] as? String == "10001:10001")
        let health = (image["Healthcheck"] as? [String: Any])?["Test"] as? [String]
        #expect(health == ["CMD", "/usr/local/bin/healthcheck"], "\(String(describing: health))")
        let history = try await Podman.must(["history", "--no-trunc", "--format", "{{.CreatedBy}}", Podman.image])
        // What a leaked secret looks like: credentials, tokens, passwords, the test servers' own values.
        var secrets = ["AWS_SECRET_ACCESS_KEY=", "AWS_ACCESS_KEY_ID=", "PASSWORD=", "TOKEN=", "postgres://", "BACKUP_ALERT_WEBHOOK_URL="]
        for variable in ["TEST_S3_SECRET_ACCESS_KEY", "TEST_DATABASE_URL"] {
            if let value = ProcessInfo.processInfo.environment[variable] { secrets.append(value) }
        }
        for secret in secrets {
            #expect(!inspect.contains(secret) && !history.contains(secret), "the image holds \(secret.prefix(24))…")
        }
        // The programs are the image's; a shell-less user with no home it can write besides the work directory.
        let whoami = try await ImageContainer.once(["sh", "-c", "id -u; touch /usr/local/bin/x 2>&1 || true; touch /var/lib/personal-backup/x 2>&1 || true"],
                                                   environmentFile: "/dev/null")
        #expect(whoami.output.hasPrefix("10001"), "\(whoami.output)")
        #expect(whoami.output.contains("Read-only file system"), "\(whoami.output)")
    }
}
