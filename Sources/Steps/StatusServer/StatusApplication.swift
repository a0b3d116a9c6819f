import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Alerts
import SystemIO
import Catalog

/// The status server: `GET /` (the page), `GET /api/status` (JSON), `GET /metrics` (Prometheus), `GET /healthz`
/// (liveness and database reachability), `GET`/`POST /login` (the cookie form when a token is set), with the
/// alert watchdog as one of its services.
///
/// `onServerRunning` receives the bound port (useful with port 0). Run it with `try await app.runService()`.
public func buildStatusApplication(
    configuration: StatusServerConfiguration, client: PostgresClient, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    var reader = StatusCatalog(client: client, logger: logger)
    if let watchdog = configuration.watchdog { reader.deadAfter = watchdog.deadAfter }
    let cache = SnapshotCache(reader: reader, maxAge: configuration.snapshotMaxAge)
    let router = Router(context: BasicRequestContext.self)
    // Request metrics and spans: no-ops unless OTLP export is configured (Telemetry).
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: TracingMiddleware())
    router.add(middleware: SecurityHeadersMiddleware())
    if let token = configuration.token {
        router.add(middleware: TokenMiddleware(token: token))
    }
    let refresh = configuration.refreshSeconds
    let authenticated = configuration.token != nil

    router.get("/") { _, _ -> Response in
        let snapshot = try await cache.snapshot()
        return Response.text(StatusPage.render(snapshot, refreshSeconds: refresh, authenticated: authenticated), contentType: "text/html; charset=utf-8")
    }
    router.get("/api/status") { _, _ -> Response in
        let snapshot = try await cache.snapshot()
        return Response.bytes(try StatusJSON.encode(snapshot), contentType: "application/json")
    }
    router.get("/metrics") { _, _ -> Response in
        let snapshot = try await cache.snapshot()
        return Response.text(PrometheusExposition.render(snapshot), contentType: PrometheusExposition.contentType)
    }
    router.get("/healthz") { _, _ -> Response in
        let reachable = await CatalogDatabase.isReachable(client: client, logger: logger, timeout: .seconds(3))
        let body = reachable ? #"{"status":"ok","database":"reachable"}"# : #"{"status":"unavailable","database":"unreachable"}"#
        var response = Response.text(body + "\n", contentType: "application/json")
        response.status = reachable ? .ok : .serviceUnavailable
        return response
    }
    if let token = configuration.token {
        let session = StatusAuth.sessionValue(for: token)
        router.get("/login") { _, _ -> Response in
            Response.text(StatusPage.loginPage(refused: false), contentType: "text/html; charset=utf-8")
        }
        router.post("/login") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 8192)
            let form = FormDecoding.parse(String(buffer: body))
            guard let candidate = form["token"], StatusAuth.constantTimeEqual(candidate, token.revealed) else {
                // A little patience for whoever guesses.
                try? await Task.sleep(for: .milliseconds(300))
                var response = Response.text(StatusPage.loginPage(refused: true), contentType: "text/html; charset=utf-8")
                response.status = .unauthorized
                return response
            }
            let secure = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
            var response = Response(status: .seeOther, headers: [.location: "/"])
            response.setCookie(Cookie(
                name: StatusAuth.cookieName, value: session, maxAge: 30 * 24 * 3600, path: "/", secure: secure, httpOnly: true,
                sameSite: .strict))
            return response
        }
    }

    let appConfiguration = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: nil)
    var services: [any Service] = [SnapshotRefresher(cache: cache)]
    if let settings = configuration.watchdog {
        services.append(AlertWatchdog(client: client, settings: settings, webhookURL: configuration.alertWebhookURL, logger: logger))
    }
    let host = configuration.host
    let protected = configuration.token != nil
    return Application(
        router: router, configuration: appConfiguration, services: services,
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            let shownHost = host.contains(":") ? "[\(host)]" : host
            if protected {
                logger.notice("status server listening on http://\(shownHost):\(port) (token required; /healthz open)")
            } else {
                logger.notice("status server listening on http://\(shownHost):\(port) — loopback only: no BACKUP_STATUS_TOKEN is set")
            }
            await onServerRunning(port)
        },
        logger: logger)
}

/// The catalog snapshot every route serves.
///
/// Reading the catalog costs an index-only scan of every row (about half a second at 1,000,000 rows on a small
/// machine), so requests do not each pay for it: a snapshot younger than `maxAge` is served as it is; an older one
/// (up to `maxStale`) is served at once while one refresh runs in the background; only without a usable snapshot
/// does a request wait for the read. `SnapshotRefresher` keeps it fresh while someone is looking, so the page
/// and scrapers normally never wait. Concurrent reads are shared. `maxAge` zero reads on every request.
actor SnapshotCache {
    let reader: StatusCatalog
    let maxAge: Duration
    let maxStale: Duration
    private var current: (snapshot: StatusSnapshot, at: ContinuousClock.Instant)?
    private var inFlight: Task<StatusSnapshot, any Error>?
    private var lastDemand: ContinuousClock.Instant?
    private var lastReadDuration: Duration = .zero

    init(reader: StatusCatalog, maxAge: Duration, maxStale: Duration = .seconds(60)) {
        self.reader = reader
        self.maxAge = maxAge
        self.maxStale = max(maxStale, maxAge)
    }

    func snapshot() async throws -> StatusSnapshot {
        lastDemand = .now
        if maxAge > .zero, let current {
            let age = ContinuousClock.now - current.at
            if age < maxAge { return current.snapshot }
            if age < maxStale {
                refreshInBackground()
                return current.snapshot
            }
        }
        return try await refresh()
    }

    /// One read of the catalog, shared by everyone who asks while it runs.
    func refresh() async throws -> StatusSnapshot {
        if let inFlight { return try await inFlight.value }
        let reader = self.reader
        let task = Task { try await reader.read() }
        inFlight = task
        let started = ContinuousClock.now
        defer { inFlight = nil }
        let snapshot = try await task.value
        lastReadDuration = ContinuousClock.now - started
        current = (snapshot, .now)
        return snapshot
    }

    private func refreshInBackground() {
        guard inFlight == nil else { return }
        Task { _ = try? await self.refresh() }
    }

    /// For the refresher: re-reads when someone asked in the last minute and the snapshot is due.
    func tick() async {
        guard maxAge > .zero, let lastDemand, ContinuousClock.now - lastDemand < .seconds(60) else { return }
        if let current, ContinuousClock.now - current.at < maxAge { return }
        _ = try? await refresh()
    }

    /// How long the refresher waits between looks: `maxAge`, but never less than five reads' time, so that a slow
    /// catalog is not kept busy by the status page.
    var refreshInterval: Duration {
        max(maxAge, lastReadDuration * 5, .milliseconds(500))
    }
}

/// Keeps the snapshot fresh in the background while the page is being looked at.
struct SnapshotRefresher: Service {
    let cache: SnapshotCache

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await cache.tick()
                try? await Task.sleep(for: await cache.refreshInterval)
            }
        }
    }
}

enum StatusJSON {
    static func encode(_ snapshot: StatusSnapshot) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(snapshot)
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// The token checks, shared by the middleware and the login form.
public enum StatusAuth {
    public static let cookieName = "backup_status_session"

    /// The login cookie's value: an HMAC of a fixed text keyed with the token, so the cookie never holds the token
    /// itself, and stays valid across restarts until the token changes.
    public static func sessionValue(for token: Secret) -> String {
        let key = SymmetricKey(data: Data(token.revealed.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data("personal-backup status session v1".utf8), using: key)
        return Array(mac).hexString
    }

    /// Compares every byte whatever the content, so the time taken says nothing about how much matched.
    public static func constantTimeEqual(_ candidate: String, _ expected: String) -> Bool {
        let a = Array(candidate.utf8), b = Array(expected.utf8)
        var difference = UInt64(a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= UInt64(x ^ y)
        }
        return difference == 0
    }
}

/// With a token, every route but `/healthz` and `/login` needs `Authorization: Bearer <token>` or the session
/// cookie the login form sets.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: Secret
    let session: String

    init(token: Secret) {
        self.token = token
        self.session = StatusAuth.sessionValue(for: token)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/healthz" || path == "/login" { return try await next(request, context) }
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer",
                StatusAuth.constantTimeEqual(String(parts[1]).trimmingCharacters(in: .whitespaces), token.revealed)
            {
                return try await next(request, context)
            }
        }
        if let cookie = request.cookies[StatusAuth.cookieName], StatusAuth.constantTimeEqual(cookie.value, session) {
            return try await next(request, context)
        }
        let wantsHTML = (request.headers[.accept] ?? "").contains("text/html")
        var response =
            wantsHTML
            ? Response.text(StatusPage.loginPage(refused: false), contentType: "text/html; charset=utf-8")
            : Response.text("unauthorized: send Authorization: Bearer <BACKUP_STATUS_TOKEN>\n", contentType: "text/plain; charset=utf-8")
        response.status = .unauthorized
        response.headers[.wwwAuthenticate] = "Bearer realm=\"backup status\""
        return response
    }
}

struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        return response
    }
}

enum FormDecoding {
    /// `application/x-www-form-urlencoded` → fields (the last of a repeated name wins).
    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}

extension Response {
    static func text(_ text: String, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func bytes(_ data: Data, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
