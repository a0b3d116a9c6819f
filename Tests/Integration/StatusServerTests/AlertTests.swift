import Catalog
import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport
import Alerts
import SystemIO

@Suite("Webhook payloads for Slack, Discord, ntfy and anything else")
struct WebhookPayloadTests {
    let alert = Alert(
        eventKey: "worker-dead:abc", kind: AlertKind.workerDead, message: "archiver worker 7@box stopped sending heartbeats",
        details: ["pid": .number(7)], time: Date(timeIntervalSince1970: 1_700_000_000))

    @Test("the target is recognised from the URL")
    func detection() {
        #expect(WebhookTarget.detect("https://hooks.slack.com/services/T00/B00/XXX") == .slack)
        #expect(WebhookTarget.detect("https://discord.com/api/webhooks/123/abc") == .discord)
        #expect(WebhookTarget.detect("https://discordapp.com/api/webhooks/123/abc") == .discord)
        #expect(WebhookTarget.detect("https://ntfy.sh/my-backups") == .ntfy)
        #expect(WebhookTarget.detect("https://push.example.org/ntfy/backups") == .ntfy)
        #expect(WebhookTarget.detect("https://example.org/hooks/backup") == .generic)
        #expect(WebhookTarget.detect("https://discord.com/channels/1") == .generic)
    }

    @Test("each target gets the body it understands")
    func shapes() throws {
        let slack = WebhookTarget.slack.request(for: alert)
        #expect(try jsonObject(String(decoding: slack.body, as: UTF8.self)).keys.sorted() == ["text"])
        #expect(try jsonObject(String(decoding: slack.body, as: UTF8.self))["text"] as? String == "[personal-backup] " + alert.message)
        #expect(slack.headers.contains { $0 == ("Content-Type", "application/json") })

        let discord = WebhookTarget.discord.request(for: alert)
        #expect(try jsonObject(String(decoding: discord.body, as: UTF8.self)).keys.sorted() == ["content"])
        let long = Alert(eventKey: "k", kind: "file-failed", message: String(repeating: "x", count: 5000))
        let longContent = try jsonObject(String(decoding: WebhookTarget.discord.request(for: long).body, as: UTF8.self))["content"] as? String
        #expect((longContent?.count ?? 0) <= 2000, "Discord refuses content over 2000 characters")

        let ntfy = WebhookTarget.ntfy.request(for: alert)
        #expect(String(decoding: ntfy.body, as: UTF8.self) == alert.message)
        #expect(ntfy.headers.contains { $0 == ("Title", "personal-backup: worker-dead") })
        #expect(ntfy.headers.contains { $0.0 == "Priority" && $0.1 == "high" })

        let generic = try jsonObject(String(decoding: WebhookTarget.generic.request(for: alert).body, as: UTF8.self))
        #expect(generic.keys.sorted() == ["details", "event", "kind", "message", "time"])
        #expect(generic["event"] as? String == "worker-dead:abc")
        #expect(generic["kind"] as? String == "worker-dead")
        #expect(generic["time"] as? String == "2023-11-14T22:13:20Z")
        #expect((generic["details"] as? [String: Any])?["pid"] as? Int == 7)
    }

    @Test("logs and errors show the webhook's scheme and host only")
    func redaction() {
        #expect(WebhookTarget.redacted("https://hooks.slack.com/services/T00/B00/SECRET?x=1") == "https://hooks.slack.com")
        #expect(WebhookTarget.redacted("http://127.0.0.1:9999/hook/SECRET") == "http://127.0.0.1:9999")
        #expect(WebhookTarget.redacted("file:///etc/passwd") == nil)
        #expect(WebhookTarget.redacted("not a url") == nil)
    }
}

@Suite("The watchdog: one alert per event, delivered to a loopback webhook", .onOwnThreads)
struct WatchdogTests {
    @Test("a worker process killed with SIGKILL gives exactly one webhook message within 60 s, with the default settings")
    func killedWorker() async throws {
        try await withCatalog { database, client in
            try await withWebhookReceiver { webhook, inbox in
                let workerID = UUID()
                try await exec(client, "INSERT INTO workers (id, role, host, pid) VALUES ('\(workerID)', 'archiver', 'test-host', 0)")
                // A real process that heartbeats like a worker (every 10 s, lease 30 s / 3) until it is killed.
                let heartbeat = try startHeartbeatProcess(database.url, workerID: workerID, every: 10)
                try await exec(client, "UPDATE workers SET pid = \(heartbeat.processID) WHERE id = '\(workerID)'")
                try await waitUntil(timeout: .seconds(20)) {
                    try await scalar(client, "SELECT heartbeat_at > started_at FROM workers WHERE id = '\(workerID)'", as: Bool.self)
                }
                // Two watchdogs (two status servers, or one restarted) with the production defaults.
                let configuration = try testConfiguration(webhook: webhook + "/hook/SECRET-PATH", watchdog: WatchdogSettings())
                try await withStatusServer(configuration, client: client) { _ in
                    try await withStatusServer(configuration, client: client) { _ in
                        heartbeat.signal(SIGKILL)
                        _ = try? await heartbeat.wait()
                        let killedAt = ContinuousClock.now
                        let received = await inbox.wait(for: 1, timeout: .seconds(70))
                        let first = try #require(received.first, "no webhook message within 70 s")
                        let delay = first.at - killedAt
                        #expect(delay < .seconds(60), "alerted \(delay) after the kill")
                        print("worker-dead alert arrived \(delay) after SIGKILL (dead after 35 s without a heartbeat, heartbeat every 10 s, watchdog every 5 s)")
                        #expect(first.path == "/hook/SECRET-PATH")
                        let body = try jsonObject(first.body)
                        #expect(body["kind"] as? String == "worker-dead")
                        #expect(body["event"] as? String == "worker-dead:\(workerID.uuidString.lowercased())")
                        #expect((body["message"] as? String)?.contains("archiver worker \(heartbeat.processID)@test-host") == true)
                        // Several more passes of both watchdogs: still one message.
                        try await Task.sleep(for: .seconds(12))
                        #expect(await inbox.received.count == 1)
                    }
                }
                #expect(try await scalar(client, "SELECT count(*) FROM alerts WHERE kind = 'worker-dead'", as: Int64.self) == 1)
                #expect(try await scalar(client, "SELECT delivered_at IS NOT NULL FROM alerts WHERE kind = 'worker-dead'", as: Bool.self))
            }
        }
    }

    @Test("a finished source whose files are duplicates of content still on its way is not 'fully archived' until that content is")
    func duplicateOfPendingIsNotArchived() async throws {
        try await withCatalog { _, client in
            try await exec(client, """
                INSERT INTO sources (label, finished_at) VALUES ('first disc', NULL), ('second disc', now());
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                VALUES (1, 'a', 'a.jpg', 'regular', 100, lpad('c1', 64, '0'), 'staging', 'ka');
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, state, duplicate_of)
                VALUES (2, 'a', 'a.jpg', 'regular', 100, lpad('c1', 64, '0'), 'duplicate', 1)
                """)
            let watchdog = AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger)
            #expect(try await watchdog.pass() == 0, "the duplicate's content is only staged")
            try await exec(client, "UPDATE objectstoragefiles SET state = 'archived', storage = 'archive', archive_key = 'x', archived_at = now() WHERE id = 1")
            #expect(try await watchdog.pass() == 1, "now it is archived")
            var messages: [String] = []
            for try await message in try await client.query("SELECT message FROM alerts", logger: logger).decode(String.self) { messages.append(message) }
            #expect(messages.count == 1 && messages[0].hasPrefix("second disc is fully archived"), "\(messages)")
        }
    }

    @Test("expired leases, re-claimed jobs, a failed file and an archived source: one alert each, however many passes")
    func catalogEvents() async throws {
        try await withCatalog { _, client in
            try await exec(client, """
                INSERT INTO sources (label, finished_at) VALUES ('done disc', now()), ('busy disc', now());
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                SELECT 2, 'f' || n, 'busy/' || n, 'regular', n, lpad(to_hex(n), 64, '0'), 'staging', 'k' || n FROM generate_series(1, 3) AS n;
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, archive_key, archived_at)
                VALUES (1, 'a', 'done/a', 'regular', 100, lpad('a1', 64, '0'), 'archive', 'ka', 'archived', 'arch/a', now());
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, duplicate_of)
                VALUES (1, 'b', 'done/b', 'regular', 100, lpad('a1', 64, '0'), 'staging', 'kb', 'duplicate', 4);
                INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key, state, error, attempts)
                VALUES (2, 'bad', 'busy/bad.mpg', 'video', 10, lpad('b1', 64, '0'), 'staging', 'kbad', 'failed', 'no decoder for codec 0x1234', 5)
                """)
            let watchdog = AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger)
            let queue = WorkQueue(client: client, logger: logger)
            let (crashed, rescuer) = (UUID(), UUID())
            try await queue.register(workerID: crashed, role: .archiver, host: "box-1", processID: 4242)
            try await queue.register(workerID: rescuer, role: .archiver, host: "box-2", processID: 4343)
            let claimed = try await queue.claim(.archive, workerID: crashed, limit: 2, lease: .seconds(30))
            #expect(claimed.count == 2)

            #expect(try await watchdog.pass() == 2, "the failed file and the archived source")
            // The crashed worker's leases run out.
            try await exec(client, "UPDATE objectstoragefiles SET lease_expires_at = now() - interval '10 seconds' WHERE lease_owner = '\(crashed)'")
            #expect(try await watchdog.pass() == 1, "expired leases")
            // Another worker re-claims them and finishes them before any watchdog looks again, and the watchdog
            // that looks is a new one (a restarted status server): the takeover is still reported, from the catalog.
            let rescued = try await queue.claim(.archive, workerID: rescuer, limit: 10, lease: .seconds(30))
            #expect(rescued.count == 3)
            try await exec(client, "UPDATE objectstoragefiles SET state = 'staged', lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = '\(rescuer)'")
            let restarted = AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger)
            #expect(try await restarted.pass() == 1, "jobs re-claimed")
            for _ in 0..<3 { #expect(try await watchdog.pass() == 0) }
            // A second watchdog (another server, or this one restarted) finds nothing new either.
            let other = AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger)
            #expect(try await other.pass() == 0)

            var messages: [String: String] = [:]
            for try await (kind, message) in try await client.query("SELECT kind, message FROM alerts", logger: logger).decode((String, String).self) {
                #expect(messages[kind] == nil, "one \(kind) alert")
                messages[kind] = message
            }
            #expect(Set(messages.keys) == ["file-failed", "source-archived", "leases-expired", "jobs-reclaimed"])
            #expect(messages["file-failed"]?.contains("busy/bad.mpg failed after 5 attempts: no decoder for codec 0x1234") == true)
            #expect(messages["source-archived"]?.hasPrefix("done disc is fully archived: 1 file archived, 1 duplicate") == true)
            #expect(messages["leases-expired"]?.contains("2 jobs of archiver worker 4242@box-1") == true)
            #expect(messages["jobs-reclaimed"]?.contains("2 jobs were re-claimed from archiver worker 4242@box-1") == true)
        }
    }

    @Test("a failed delivery is retried with backoff and never logs or stores the webhook's secret path")
    func retries() async throws {
        try await withCatalog { _, client in
            try await withWebhookReceiver(failFirst: 1) { webhook, inbox in
                let store = AlertStore(client: client, logger: logger)
                let delivery = AlertDelivery(store: store, sender: WebhookSender(url: Secret(webhook + "/ntfy/SECRET-TOPIC")), logger: logger)
                #expect(try await store.record(Alert(eventKey: "test:1", kind: AlertKind.sourceArchived, message: "DVD 1 is fully archived")))
                #expect(try await store.record(Alert(eventKey: "test:1", kind: AlertKind.sourceArchived, message: "again")) == false)
                #expect(await delivery.deliverDue() == 0, "the receiver answers 500 the first time")
                let (attempts, error, wait) = try await firstRow(client, "SELECT attempts, last_error, extract(epoch FROM next_attempt_at - now())::float8 FROM alerts", as: (Int, String?, Double).self)
                #expect(attempts == 1)
                #expect(error?.contains("HTTP 500 from \(webhook)") == true)
                #expect(error?.contains("SECRET") == false)
                #expect(wait > 2 && wait < 8, "first retry after about 5 s, was \(wait)")
                #expect(await delivery.deliverDue() == 0, "not due yet")
                try await exec(client, "UPDATE alerts SET next_attempt_at = now()")
                #expect(await delivery.deliverDue() == 1)
                let received = await inbox.received
                #expect(received.count == 2)
                #expect(received.last?.body == "DVD 1 is fully archived", "ntfy: the message as plain text")
                #expect(received.last?.headers["title"] == "personal-backup: source-archived")
                #expect(try await scalar(client, "SELECT delivered_at IS NOT NULL AND attempts = 2 FROM alerts", as: Bool.self))
                #expect(await delivery.deliverDue() == 0, "delivered once")
            }
        }
    }

    @Test("an unreachable webhook is logged, retried, and stops nothing")
    func unreachableWebhook() async throws {
        try await withCatalog { _, client in
            let port = try closedLoopbackPort()
            let store = AlertStore(client: client, logger: logger)
            let delivery = AlertDelivery(store: store, sender: WebhookSender(url: Secret("http://127.0.0.1:\(port)/hook/SECRET")), logger: logger)
            try await store.record(Alert(eventKey: "x", kind: AlertKind.fileFailed, message: "m"))
            #expect(await delivery.deliverDue() == 0)
            let error = try await scalar(client, "SELECT last_error FROM alerts", as: String.self)
            #expect(error.contains("http://127.0.0.1:\(port)"))
            #expect(!error.contains("SECRET"))
        }
    }

    @Test("a burst of alerts of one kind goes out as one summary message")
    func summaries() async throws {
        try await withCatalog { _, client in
            try await withWebhookReceiver { webhook, inbox in
                let store = AlertStore(client: client, logger: logger)
                for index in 1...8 {
                    try await store.record(Alert(eventKey: "file-failed:\(index):5", kind: AlertKind.fileFailed, message: "file \(index) failed"))
                }
                try await store.record(Alert(eventKey: "source-archived:1:1", kind: AlertKind.sourceArchived, message: "DVD 1 is fully archived"))
                let delivery = AlertDelivery(store: store, sender: WebhookSender(url: Secret(webhook + "/generic")), logger: logger)
                #expect(await delivery.deliverDue() == 9)
                let received = await inbox.received
                #expect(received.count == 2)
                let summary = try jsonObject(received[0].body)
                #expect((summary["message"] as? String)?.hasPrefix("8 file-failed alerts:") == true)
                #expect((summary["message"] as? String)?.contains("and 3 more") == true)
                #expect(try await scalar(client, "SELECT count(*) FROM alerts WHERE delivered_at IS NULL", as: Int64.self) == 0)
            }
        }
    }

    @Test("a worker's fatal exit records and sends one alert and marks the worker stopped")
    func fatalExit() async throws {
        try await withCatalog { _, client in
            try await withWebhookReceiver { webhook, inbox in
                let workerID = UUID()
                try await WorkQueue(client: client, logger: logger).register(workerID: workerID, role: .transcoder, host: "box", processID: 77)
                for _ in 0..<2 {
                    await AlertSender.sendFatal(
                        role: .transcoder, workerID: workerID, error: "libav: out of memory", client: client,
                        webhookURL: Secret(webhook + "/hook"), logger: logger, host: "box")
                }
                let received = await inbox.received
                #expect(received.count == 1)
                let body = try jsonObject(try #require(received.first).body)
                #expect(body["kind"] as? String == "worker-fatal")
                #expect((body["message"] as? String)?.contains("libav: out of memory") == true)
                #expect(try await scalar(client, "SELECT stop_reason FROM workers WHERE id = '\(workerID)'", as: String.self) == "fatal: libav: out of memory")
                // The watchdog does not also call it dead.
                try await exec(client, "UPDATE workers SET heartbeat_at = now() - interval '2 minutes'")
                let watchdog = AlertWatchdog(client: client, settings: WatchdogSettings(), webhookURL: nil, logger: logger)
                #expect(try await watchdog.pass() == 0)
            }
            // Without a database (it may be why the worker dies) the alert is still posted.
            try await withWebhookReceiver { webhook, inbox in
                await AlertSender.sendFatal(
                    role: .archiver, workerID: UUID(), error: "database gone", client: nil, webhookURL: Secret(webhook + "/hook"), logger: logger)
                #expect(await inbox.received.count == 1)
            }
        }
    }
}

/// A `psql` process that sets the worker's heartbeat every `every` seconds until killed.
func startHeartbeatProcess(_ url: DatabaseURL, workerID: UUID, every seconds: Int) throws -> Subprocess.Running {
    guard case .tcp(let host, let port) = url.endpoint else { throw TestFailure("the test database is not on TCP") }
    let binDirectory = ProcessInfo.processInfo.environment["TEST_POSTGRES_BIN_DIR"] ?? "/usr/bin"
    // `\watch` repeats the statement until the process dies; it cannot be mixed with SQL in -c, so a script file.
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("heartbeat-\(workerID).sql").path
    try "UPDATE workers SET heartbeat_at = now() WHERE id = '\(workerID)' \\watch \(seconds)\n".write(toFile: script, atomically: true, encoding: .utf8)
    return try Subprocess.spawn(
        binDirectory + "/psql", ["-X", "-q", "-h", host, "-p", String(port), "-U", url.user, "-d", url.database, "-f", script],
        environment: ["PGPASSWORD": url.password?.revealed ?? "", "PATH": "/usr/bin:/bin"])
}

func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw TestFailure("condition not met within \(timeout)")
}

func firstRow<each T: PostgresDecodable & Sendable>(_ client: PostgresClient, _ sql: String, as types: (repeat each T).Type) async throws -> (repeat each T) {
    for try await row in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode((repeat each T).self) { return row }
    throw TestFailure("no row for \(sql)")
}
