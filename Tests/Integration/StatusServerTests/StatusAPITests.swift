import Foundation
import NIOHTTP1
import PipelineCore
import PostgresNIO
import StatusServer
import Testing
import TestSupport

@Suite("The status server's JSON, page, metrics and health against a real catalog, through its router (HummingbirdTesting)")
struct StatusAPITests {
    @Test("/api/status reports the numbers of the rows in the catalog")
    func jsonMatchesRows() async throws {
        try await withCatalog { _, client in
            try await SampleCatalog.insert(client)
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let response = try await request(base + "/api/status")
                #expect(response.status == 200)
                #expect(response.headers["Content-Type"].first?.hasPrefix("application/json") == true)
                let json = try jsonObject(response.body)
                #expect(int64(json["files_total"]) == SampleCatalog.filesTotal)
                #expect(int64(json["bytes_raw"]) == SampleCatalog.bytesRaw)
                #expect(int64(json["bytes_stored"]) == SampleCatalog.bytesStored)
                #expect(int64(json["bytes_saved_transcoding"]) == SampleCatalog.savedTranscoding)
                #expect(int64(json["bytes_saved_dedupe"]) == SampleCatalog.savedDedupe)
                #expect(int64(json["bytes_saved_compression"]) == SampleCatalog.savedCompression)
                #expect(int64(json["bytes_saved"]) == SampleCatalog.savedTranscoding + SampleCatalog.savedDedupe + SampleCatalog.savedCompression)
                let byState = try #require(json["files_by_state"] as? [String: Any])
                #expect(byState.mapValues { int64($0) ?? -1 } == SampleCatalog.filesByState)

                // Sources: per-state counts, progress, hostile text kept as data.
                let sources = try #require(json["sources"] as? [[String: Any]])
                #expect(sources.count == 2)
                let dvd = try #require(sources.first { $0["label"] as? String == "DVD 12" })
                #expect(int64(dvd["files_total"]) == 8)
                #expect(int64(dvd["bytes_total"]) == 19600)
                // Done: archived 16000 + duplicates 3000 of 19600.
                #expect(int64(dvd["bytes_done"]) == 19000)
                #expect(abs((dvd["progress"] as? Double ?? 0) - 19000.0 / 19600.0) < 1e-9)
                #expect((dvd["metadata"] as? [String: Any])?["owner"] as? String == "Ann")
                #expect(dvd["complete"] as? Bool == false, "a failed file keeps the source from being complete")
                let other = try #require(sources.first { $0["label"] as? String == SampleCatalog.hostileLabel })
                #expect((other["files_by_state"] as? [String: Any]).map { int64($0["staged"]) } == 2)
                // Still uploading: the walk's count (40000) is the total, 8000 archived.
                #expect(abs((other["progress"] as? Double ?? 0) - 8000.0 / 40000.0) < 1e-9)
                #expect((other["bytes_per_second"] as? Double ?? 0) > 0, "archived 5 minutes ago: there is a recent rate")
                #expect(other["eta_seconds"] is Double)

                // Workers: alive, dead (old heartbeat, not stopped), stopped; jobs held.
                let workers = try #require(json["workers"] as? [[String: Any]])
                let status = Dictionary(uniqueKeysWithValues: workers.map { ($0["id"] as? String ?? "", $0["status"] as? String ?? "") })
                #expect(status[SampleCatalog.aliveWorker.uuidString] == "alive")
                #expect(status[SampleCatalog.deadWorker.uuidString] == "dead")
                #expect(status[SampleCatalog.stoppedWorker.uuidString] == "stopped")
                #expect(workers.first { $0["id"] as? String == SampleCatalog.aliveWorker.uuidString }.map { int64($0["jobs"]) } == 1)

                let failures = try #require(json["failures"] as? [[String: Any]])
                #expect(Set(failures.compactMap { $0["state"] as? String }) == ["failed", "unreadable"])
                #expect(failures.contains { ($0["error"] as? String)?.contains("decoder said") == true })

                // The chart's running total ends at every archived byte.
                let series = try #require(json["archived_series"] as? [String: Any])
                let points = try #require(series["points"] as? [[String: Any]])
                #expect(!points.isEmpty)
                let lastPoint = try #require(points.last)
                let lastTotal: Int64 = int64(lastPoint["cumulative_bytes"]) ?? -1
                #expect(lastTotal == 24000, "1000 + 2000 + 3000 + 10000 + 8000")
                #expect(points.reduce(Int64(0)) { $0 + (int64($1["bytes"]) ?? 0) } == 24000, "everything was archived within the window")
            }
        }
    }

    @Test("a snapshot is served for its max age, then refreshed without making a request wait")
    func snapshotCaching() async throws {
        try await withCatalog { _, client in
            try await SampleCatalog.insert(client)
            var configuration = try testConfiguration()
            configuration.snapshotMaxAge = .milliseconds(500)
            try await withStatusRoutes(configuration, client: client) { base in
                let first = try jsonObject(try await request(base + "/api/status").body)
                #expect(int64(first["files_total"]) == 13)
                try await exec(client, """
                    INSERT INTO objectstoragefiles (source_id, name, path, kind, size_bytes, hash, storage, storage_key)
                    VALUES (2, 'late.txt', 'dir/late.txt', 'regular', 1, lpad('ff', 64, '0'), 'staging', 'klate')
                    """)
                let second = try jsonObject(try await request(base + "/api/status").body)
                #expect(int64(second["files_total"]) == 13, "served from the snapshot")
                #expect(second["generated_at"] as? String == first["generated_at"] as? String)
                try await Task.sleep(for: .milliseconds(600))
                try await waitUntil(timeout: .seconds(10)) {
                    int64(try jsonObject(try await request(base + "/api/status").body)["files_total"]) == 14
                }
            }
        }
    }

    @Test("an empty catalog gives zeros, not errors")
    func emptyCatalog() async throws {
        try await withCatalog { _, client in
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let json = try jsonObject(try await request(base + "/api/status").body)
                #expect(int64(json["files_total"]) == 0)
                #expect(int64(json["bytes_raw"]) == 0)
                #expect((json["sources"] as? [Any])?.isEmpty == true)
                let page = try await request(base + "/")
                #expect(page.status == 200)
                #expect(page.body.contains("Nothing archived yet"))
            }
        }
    }

    @Test("the page shows the totals, refreshes itself and escapes everything from the catalog")
    func pageEscapes() async throws {
        try await withCatalog { _, client in
            try await SampleCatalog.insert(client)
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let page = try await request(base + "/", headers: [("Accept", "text/html")])
                #expect(page.status == 200)
                #expect(page.headers["Content-Type"].first?.hasPrefix("text/html") == true)
                #expect(page.body.contains("<meta http-equiv=\"refresh\" content=\"10\">"))
                #expect(page.body.contains("id=\"files-total\">13<"))
                #expect(page.body.contains("<svg"), "the chart is inline SVG")
                #expect(!page.body.contains("<script"), "no script at all, and no injected one")
                #expect(!page.body.contains("<img"))
                #expect(!page.body.contains("<b>no</b>"))
                #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"))
                #expect(page.body.contains("&lt;img src=x onerror=alert(2)&gt;.mpg"))
                #expect(page.body.contains("decoder said &lt;b&gt;no&lt;/b&gt;"))
                #expect(page.body.contains("owner=Ann"))
                #expect(!page.body.contains("http://") && !page.body.contains("https://"), "nothing loaded from elsewhere")
                #expect(page.headers["Content-Security-Policy"].first?.contains("default-src 'none'") == true)
            }
        }
    }

    @Test("/metrics is Prometheus text with the same numbers")
    func metrics() async throws {
        try await withCatalog { _, client in
            try await SampleCatalog.insert(client)
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let response = try await request(base + "/metrics")
                #expect(response.status == 200)
                #expect(response.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
                let lines = Set(response.body.split(separator: "\n").map(String.init))
                #expect(lines.contains("# TYPE backup_files gauge"))
                #expect(lines.contains("backup_files{state=\"archived\"} 5"))
                #expect(lines.contains("backup_files{state=\"transcoding\"} 0"))
                #expect(lines.contains("backup_files_total 13"))
                #expect(lines.contains("backup_bytes_raw 49600"))
                #expect(lines.contains("backup_bytes_saved{reason=\"dedupe\"} 3000"))
                #expect(lines.contains("backup_workers{role=\"transcoder\",status=\"dead\"} 1"))
                #expect(lines.contains("backup_source_files{source=\"DVD 12\",state=\"failed\"} 1"))
                // Every sample line is `name{labels} value` with a number.
                for line in lines where !line.hasPrefix("#") {
                    let value = line.split(separator: " ").last.map(String.init) ?? ""
                    #expect(Double(value) != nil, "\(line)")
                }
            }
        }
    }

    @Test("/healthz is 200 with the database and 503 without it")
    func health() async throws {
        try await withCatalog { _, client in
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let response = try await request(base + "/healthz")
                #expect(response.status == 200)
                #expect(response.body.contains("\"database\":\"reachable\""))
            }
        }
        // A pool pointed at a loopback port nobody listens on.
        let port = try closedLoopbackPort()
        let configuration = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: "nobody", password: nil, database: "none", tls: .disable)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await withStatusRoutes(try testConfiguration(), client: client) { base in
                let started = ContinuousClock.now
                let response = try await request(base + "/healthz")
                #expect(response.status == 503)
                #expect(response.body.contains("unreachable"))
                #expect(ContinuousClock.now - started < .seconds(10))
            }
        }
    }

    @Test("the configuration refuses a non-loopback host without a token, and defaults to loopback")
    func loopbackOnlyWithoutToken() throws {
        #expect(throws: StatusServerConfigurationError.self) { try StatusServerConfiguration(host: "0.0.0.0") }
        #expect(throws: StatusServerConfigurationError.self) { try StatusServerConfiguration(host: "192.168.1.5", token: Secret("")) }
        do {
            _ = try StatusServerConfiguration(host: "0.0.0.0")
        } catch {
            #expect("\(error)" == "configuration error: BACKUP_STATUS_HOST: 0.0.0.0 is not a loopback address: set BACKUP_STATUS_TOKEN to serve the status page beyond this machine")
        }
        #expect(try StatusServerConfiguration().host == "127.0.0.1")
        #expect(try StatusServerConfiguration(host: "::1").host == "::1")
        #expect(try StatusServerConfiguration(host: "localhost").port == 8080)
        #expect(try StatusServerConfiguration(token: Secret("t")).host == "0.0.0.0")
        #expect(try StatusServerConfiguration(host: "10.0.0.2", token: Secret("t")).host == "10.0.0.2")
        let fromEnvironment = try StatusServerConfiguration.fromEnvironment([
            "BACKUP_STATUS_PORT": "9090", "BACKUP_STATUS_TOKEN": "sekrit", "BACKUP_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
        ])
        #expect(fromEnvironment.port == 9090)
        #expect(fromEnvironment.host == "0.0.0.0")
        #expect(throws: StatusServerConfigurationError.self) { try StatusServerConfiguration.fromEnvironment(["BACKUP_STATUS_PORT": "http"]) }
        #expect(throws: StatusServerConfigurationError.self) {
            try StatusServerConfiguration.fromEnvironment(["BACKUP_ALERT_WEBHOOK_URL": "ftp://example.invalid/x"])
        }
    }
}

/// A loopback port that was free a moment ago (bound then closed).
func closedLoopbackPort() throws -> Int {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
    }
    guard bound == 0 else { throw TestFailure("bind failed") }
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
