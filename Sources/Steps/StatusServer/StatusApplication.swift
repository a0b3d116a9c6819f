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
import Accounts
import ObjectStore

/// The status server: `GET /` (the page), `GET /api/status` (JSON), `GET /metrics` (Prometheus), `GET /healthz`
/// (liveness and database reachability), the family accounts' login and API (`FamilyRoutes`: `/login`, `/logout`,
/// `/account`, `/api/sources`), browser uploads over tus (`TusRoutes`: `/api/uploads`, the page `/upload`), with the
/// alert watchdog and the uploads' storer as its services. `POST /login` with `token=` is the
/// operator's token form when a token is set.
///
/// `staging` is where `GET /files/{id}/download` reads staged files (nil: those downloads answer 409) and where browser
/// uploads are stored (nil, or no `configuration.uploads.directory`: the upload routes answer 503).
/// `onServerRunning` receives the bound port (useful with port 0). Run it with `try await app.runService()`.
public func buildStatusApplication(
    configuration: StatusServerConfiguration, client: PostgresClient, logger: Logger, staging: (any ObjectStore)? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    var reader = StatusCatalog(client: client, logger: logger)
    if let watchdog = configuration.watchdog { reader.deadAfter = watchdog.deadAfter }
    reader.tierClasses = configuration.tierClasses
    let statusReader = reader
    let cache = SnapshotCache(maxAge: configuration.snapshotMaxAge) { try await statusReader.read() }
    let router = Router(context: StatusRequestContext.self)
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
    // The operator's token form (the 401 page of TokenMiddleware posts `token=` to /login), as before accounts.
    var tokenLogin: (@Sendable ([String: String], Request) async -> Response?)?
    if let token = configuration.token {
        let session = StatusAuth.sessionValue(for: token)
        tokenLogin = { form, request in
            guard let candidate = form["token"] else { return nil }
            guard StatusAuth.constantTimeEqual(candidate, token.revealed) else {
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
    // The family accounts: login, sessions, the caller's own sources (FamilyRoutes).
    let accounts = AccountService(client: client, logger: logger, settings: configuration.accounts)
    let familyAuth = FamilyAuth(accounts: accounts, behindTLSProxy: configuration.behindTLSProxy, clientAddressHeader: configuration.clientAddressHeader)
    let family = FamilyCatalog(client: client, logger: logger)
    // Every member's /account and /api/sources count from one read of the whole table, kept as long as the status
    // snapshot; a member's own changes show within that time (the list of sources itself is always read live).
    let sourceCounts = SnapshotCache(maxAge: configuration.snapshotMaxAge, maxStale: configuration.snapshotMaxAge * 3) {
        try await family.sourceStateCounts()
    }
    FamilyRoutes.add(
        to: router, auth: familyAuth, family: family, sourceCounts: sourceCounts, settings: configuration.accounts, staging: staging,
        tokenLogin: tokenLogin)
    AdminRoutes.add(to: router, auth: familyAuth, client: client, logger: logger)
    // Browser uploads over tus (TusRoutes), stored into staging and the catalog by BrowserUploadStorer.
    let uploads = configuration.uploads
    var storer: BrowserUploadStorer?
    var partials: PartialUploads?
    if let directory = uploads.directory, let staging {
        let files = PartialUploads(directory: directory, writeBufferBytes: uploads.writeBufferBytes)
        partials = files
        storer = BrowserUploadStorer(client: client, staging: staging, partials: files, expireAfter: configuration.uploads.expireAfter, logger: logger)
    }
    TusRoutes(auth: familyAuth, catalog: BrowserUploadCatalog(client: client, logger: logger), partials: partials, storer: storer, settings: uploads, logger: logger)
        .add(to: router)
    UploadPage.add(to: router, auth: familyAuth, family: family, uploadsEnabled: storer != nil, chunkBytes: uploads.chunkBytes)

    let appConfiguration = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: nil)
    var services: [any Service] = [SnapshotRefresher(cache: cache), SnapshotRefresher(cache: sourceCounts)]
    if let storer { services.append(storer) }
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
