import Accounts
import Catalog
import Foundation
import Logging
import NIOHTTP1
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// The admin page's maintenance section and recent logs: admins only (a member gets 404), CSRF on every form,
/// parameters checked on the server with one line, "Run now", and log lines (redacted) shown with a level filter.
/// Real PostgreSQL, the real router, the real log handler and writer.
@Suite("family pages: admin maintenance tasks and recent logs")
struct MaintenanceAdminTests {
    static let password = "a long enough password"
    static let form = "application/x-www-form-urlencoded"

    /// A fresh catalog with an admin (root) and a member (alice).
    static func withAdminAndMember(_ body: @escaping @Sendable (PostgresClient) async throws -> Void) async throws {
        try await withCatalog { _, client in
            let accounts = AccountService(client: client, logger: logger)
            _ = try await accounts.addUser(name: "root", role: .admin, password: Secret(Self.password))
            _ = try await accounts.addUser(name: "alice", role: .member, password: Secret(Self.password))
            try await body(client)
        }
    }

    @Test("maintenance forms: admins only, CSRF-checked, values checked with one line; Run now queues the task")
    func maintenanceForms() async throws {
        try await Self.withAdminAndMember { client in
            try await exec(client, "INSERT INTO sources (label) VALUES ('DVD 12')")
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let rootCookie = try await LoginForm.open(base).logIn(base, username: "root", password: Self.password)
                let aliceCookie = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                let page = try await request(base + "/admin", headers: [("Cookie", rootCookie)])
                #expect(page.status == 200 && page.body.contains("id=\"maintenance-tasks\""))
                for name in MaintenanceTaskName.allCases { #expect(page.body.contains("id=\"task-\(name.rawValue)\""), "\(name)") }
                #expect(page.body.contains("percent 5") && page.body.contains("every 7 days"))
                let csrf = try #require(LoginForm.hiddenCSRF(in: page.body))
                let asRoot = [("Cookie", rootCookie), ("Content-Type", Self.form)]
                let requested = { try await scalar(client, "SELECT (run_requested_at IS NOT NULL)::text FROM maintenance_tasks WHERE name = 'audit'", as: String.self) }

                // A member, and an admin without the CSRF token: 404, nothing changed.
                #expect(try await request(base + "/admin/maintenance/audit/run", method: .POST, headers: [("Cookie", aliceCookie), ("Content-Type", Self.form)], body: "csrf=\(csrf)").status == 404)
                #expect(try await request(base + "/admin/maintenance/audit/run", method: .POST, headers: asRoot, body: "csrf=forged").status == 404)
                #expect(try await request(base + "/admin/maintenance/audit", method: .POST, headers: [("Cookie", aliceCookie), ("Content-Type", Self.form)],
                                          body: "every=1&unit=days&enabled=on&csrf=\(csrf)").status == 404)
                #expect(try await requested() == "false")
                #expect(try await request(base + "/admin/maintenance/rm-rf/run", method: .POST, headers: asRoot, body: "csrf=\(csrf)").status == 404, "only the four tasks")

                // Run now: queued (also while the task is off), shown as asked.
                #expect(try await request(base + "/admin/maintenance/audit/run", method: .POST, headers: asRoot, body: "csrf=\(csrf)").status == 303)
                #expect(try await requested() == "true")
                #expect(try await request(base + "/admin", headers: [("Cookie", rootCookie)]).body.contains("after the next batch (asked)"))

                // Refused values: one line, 400, nothing stored.
                for (body, line) in [
                    ("every=1&unit=days&percent=0", "percent must be above 0 and at most 100, not 0"),
                    ("every=1&unit=days&percent=150", "percent must be above 0 and at most 100, not 150"),
                    ("every=1&unit=days&percent=lots", "percent must be a number"),
                    ("every=0&unit=days&percent=5", "the interval must be a whole number of minutes, hours or days"),
                    ("every=400&unit=days&percent=5", "the interval must be between 1 minute and 365 days"),
                ] {
                    let refused = try await request(base + "/admin/maintenance/verify-sample", method: .POST, headers: asRoot, body: body + "&csrf=\(csrf)")
                    #expect(refused.status == 400 && refused.body.contains(line), "\(body): \(refused.status)")
                }
                let noSource = try await request(base + "/admin/maintenance/audit", method: .POST, headers: asRoot, body: "every=1&unit=days&source=DVD+99&csrf=\(csrf)")
                #expect(noSource.status == 400 && noSource.body.contains("audit: no source is labelled &#39;DVD 99&#39;"), "\(noSource.body.suffix(300))")
                #expect(try await scalar(client, "SELECT parameters::text || every_seconds FROM maintenance_tasks WHERE name = 'verify-sample'", as: String.self) == "{\"percent\": 5}604800")

                // Accepted: stored as typed parameters.
                #expect(try await request(base + "/admin/maintenance/verify-sample", method: .POST, headers: asRoot, body: "every=12&unit=hours&percent=2.5&csrf=\(csrf)").status == 303)
                #expect(try await scalar(client, "SELECT parameters::text || every_seconds || enabled FROM maintenance_tasks WHERE name = 'verify-sample'", as: String.self) == "{\"percent\": 2.5}43200false")
                #expect(try await request(base + "/admin/maintenance/audit", method: .POST, headers: asRoot, body: "every=1&unit=days&enabled=on&source=DVD+12&csrf=\(csrf)").status == 303)
                #expect(try await scalar(client, "SELECT parameters->>'source' || every_seconds || enabled FROM maintenance_tasks WHERE name = 'audit'", as: String.self) == "DVD 1286400true")
                let shown = try await request(base + "/admin", headers: [("Cookie", rootCookie)]).body
                #expect(shown.contains("percent 2.5") && shown.contains("every 12 hours") && shown.contains("source DVD 12"))
            }
        }
    }

    @Test("recent logs: notice and above reach the admin page through the queue, secrets redacted before they are stored; a full queue counts its drops and says so")
    func recentLogs() async throws {
        try await Self.withAdminAndMember { client in
            let knownSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            let queue = WorkerLogQueue(program: "archiver", worker: "box-1 pid 42", redaction: LogRedaction(knownSecrets: [knownSecret]), capacity: 5)
            var infoLogger = Logger(label: "test.worker") { _ in CatalogLogHandler(queue: queue) }
            infoLogger.logLevel = .info
            let workerLogger = infoLogger
            let writer = WorkerLogWriter(queue: queue, client: client, databaseLogger: logger, reportTo: workerLogger)

            workerLogger.info("an info line is not kept")
            workerLogger.notice("connected to postgres://backup:hunter2-password@db.example/catalog", metadata: ["aws.secret": "\(knownSecret)", "file.id": "7"])
            workerLogger.warning("request failed: https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123456789&X-Amz-Credential=AKIAEXAMPLE%2F2026 with key \(knownSecret)")
            workerLogger.error("token pbk_abcdefghijklmnopqrstuvwxyz0123456789 refused", metadata: ["authorization": "Bearer sekrit-bearer-value"])
            await writer.flush()

            let stored = try await scalar(client, "SELECT string_agg(message || metadata::text, ' | ') FROM worker_logs", as: String.self)
            for secret in ["hunter2", knownSecret, "abcdef0123456789", "AKIAEXAMPLE", "pbk_abcdefghij", "sekrit-bearer-value"] {
                #expect(!stored.contains(secret), "\(secret) must not be stored: \(stored)")
            }
            #expect(stored.contains("postgres://backup:<redacted>@db.example/catalog") && stored.contains("\"file.id\": \"7\""), "\(stored)")
            #expect(try await scalar(client, "SELECT count(*) FROM worker_logs", as: Int64.self) == 3, "notice and above only")

            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let rootCookie = try await LoginForm.open(base).logIn(base, username: "root", password: Self.password)
                let aliceCookie = try await LoginForm.open(base).logIn(base, username: "alice", password: Self.password)
                #expect(try await request(base + "/admin?logs=notice", headers: [("Cookie", aliceCookie)]).status == 404)
                let all = try await request(base + "/admin", headers: [("Cookie", rootCookie)]).body
                #expect(all.contains("connected to postgres://backup:&lt;redacted&gt;@db.example/catalog") && all.contains("box-1 pid 42"), "\(all.suffix(2000))")
                #expect(all.contains("request failed") && all.contains("refused"))
                let errorsOnly = try await request(base + "/admin?logs=error", headers: [("Cookie", rootCookie)]).body
                #expect(errorsOnly.contains("refused") && !errorsOnly.contains("request failed") && !errorsOnly.contains("connected to postgres"))

                // A full queue drops, never blocks; the writer says how many, once it writes again.
                for index in 0..<8 { workerLogger.notice("burst \(index)") }
                await writer.flush()
                await writer.flush()
                #expect(try await scalar(client, "SELECT count(*) FROM worker_logs WHERE message LIKE 'burst %'", as: Int64.self) == 5)
                let drops = try await scalar(client, "SELECT metadata->>'logs.dropped' FROM worker_logs WHERE message LIKE 'log lines not kept%'", as: String.self)
                #expect(drops == "3")
                #expect(try await request(base + "/admin?logs=warning", headers: [("Cookie", rootCookie)]).body.contains("log lines not kept in the catalog"))

                // The database refuses the writes (the table is away): the lines are dropped and counted, then reported.
                try await exec(client, "ALTER TABLE worker_logs RENAME TO worker_logs_away")
                workerLogger.error("lost during the outage 1")
                workerLogger.error("lost during the outage 2")
                await writer.flush()
                #expect(queue.pending == 0, "a refused batch is not kept in memory")
                try await exec(client, "ALTER TABLE worker_logs_away RENAME TO worker_logs")
                workerLogger.notice("back")
                await writer.flush()
                await writer.flush()
                #expect(try await scalar(client, "SELECT count(*) FROM worker_logs WHERE message LIKE 'lost during%'", as: Int64.self) == 0)
                #expect(try await scalar(client, "SELECT string_agg(metadata->>'logs.dropped', ',' ORDER BY id) FROM worker_logs WHERE message LIKE 'log lines not kept%'", as: String.self) == "3,2")
            }
        }
    }

    @Test("the logs are kept bounded: the newest lines, none older than the limit")
    func pruning() async throws {
        try await withCatalog { _, client in
            // Line g was logged 19.5 - g days ago: ids and times in the same order, no line on a day's boundary.
            try await exec(client, """
                INSERT INTO worker_logs (at, program, worker, level, message)
                SELECT now() - make_interval(hours => (19 - g) * 24 + 12), 'archiver', 'box', 'notice', 'line ' || g FROM generate_series(0, 19) g
                """)
            let logs = WorkerLogCatalog(client: client, logger: logger)
            #expect(try await logs.prune(keepLines: 10, keepDays: 14) == 10)
            #expect(try await logs.prune(keepLines: 100, keepDays: 5) == 5)
            #expect(try await scalar(client, "SELECT string_agg(message, ',' ORDER BY id) FROM worker_logs", as: String.self) == "line 15,line 16,line 17,line 18,line 19")
        }
    }
}
