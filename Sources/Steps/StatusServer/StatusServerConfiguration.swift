import Accounts
import PipelineCore
import Alerts

/// A problem with the status server's settings: the project's `ConfigurationError`, printed as one line naming
/// the setting (never a secret) and mapped to exit code 2 by `CommandRunner`.
public typealias StatusServerConfigurationError = ConfigurationError

/// Where the status server listens, what it requires of clients and where its alerts go.
public struct StatusServerConfiguration: Sendable {
    /// The address to bind. Without a token it must be a loopback address.
    public var host: String
    /// The port to bind; 0 picks a free one (tests).
    public var port: Int
    /// `BACKUP_STATUS_TOKEN`: when set, every route but `/healthz` needs it.
    public var token: Secret?
    /// `BACKUP_ALERT_WEBHOOK_URL`: where the watchdog's alerts are posted; nil keeps them in the `alerts` table only.
    public var alertWebhookURL: Secret?
    /// How often the page reloads itself.
    public var refreshSeconds: Int
    /// How long a snapshot of the catalog is served before it is read again (in the background while someone is
    /// looking; see `SnapshotCache`). Zero reads the catalog on every request.
    public var snapshotMaxAge: Duration
    /// The watchdog; nil runs the server without it.
    public var watchdog: WatchdogSettings?
    /// The storage class of each tier, for the cost estimate (`BACKUP_ARCHIVE_STORAGE_CLASS`, `BACKUP_WARM_STORAGE_CLASS`).
    public var tierClasses = TierStorageClasses()
    /// `BACKUP_STATUS_BEHIND_TLS_PROXY`: the server is reached through a TLS-terminating proxy. Session cookies are
    /// then `Secure`, and the login rate limit counts the client address the proxy appends to `X-Forwarded-For`.
    public var behindTLSProxy = false
    /// `BACKUP_STATUS_CLIENT_IP_HEADER`: the name of a header the proxy in front *overwrites* with the client's
    /// address (API Gateway does so through the integration's parameter mapping, infra/status_api.tf). When a request
    /// carries it, the login rate limit counts that address; `X-Forwarded-For` is not trusted then.
    public var clientAddressHeader: String?
    /// The login rate limit and the session lifetime of the family accounts.
    public var accounts = AccountSettings()

    /// Browser uploads over tus (`/api/uploads`): where partial files wait and the largest upload taken. Without a
    /// directory (or without a staging store handed to `buildStatusApplication`) the upload routes answer 503.
    public var uploads = BrowserUploadSettings()

    /// The default port (`BACKUP_STATUS_PORT`).
    public static let defaultPort = 8080
    /// The default host: every interface with a token, loopback only without one.
    public static func defaultHost(hasToken: Bool) -> String { hasToken ? "0.0.0.0" : "127.0.0.1" }

    /// Checks the combination: a non-loopback host without a token is refused, so the catalog (file names,
    /// errors, labels) is never served to the network unauthenticated by accident.
    public init(
        host: String? = nil, port: Int = StatusServerConfiguration.defaultPort, token: Secret? = nil, alertWebhookURL: Secret? = nil,
        refreshSeconds: Int = 10, snapshotMaxAge: Duration = .seconds(5), watchdog: WatchdogSettings? = WatchdogSettings()
    ) throws {
        let token = token.flatMap { $0.revealed.isEmpty ? nil : $0 }
        let host = host.flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultHost(hasToken: token != nil)
        guard (0...65535).contains(port) else {
            throw StatusServerConfigurationError(setting: "BACKUP_STATUS_PORT", problem: "must be a port number from 0 to 65535")
        }
        if token == nil && !Self.isLoopback(host) {
            throw StatusServerConfigurationError(
                setting: "BACKUP_STATUS_HOST",
                problem: "\(host) is not a loopback address: set BACKUP_STATUS_TOKEN to serve the status page beyond this machine")
        }
        guard refreshSeconds >= 1 else {
            throw StatusServerConfigurationError(setting: "refresh", problem: "must be at least 1 second")
        }
        if let url = alertWebhookURL, WebhookTarget.redacted(url.revealed) == nil {
            throw StatusServerConfigurationError(setting: "BACKUP_ALERT_WEBHOOK_URL", problem: "must be an http:// or https:// URL")
        }
        self.host = host
        self.port = port
        self.token = token
        self.alertWebhookURL = alertWebhookURL
        self.refreshSeconds = refreshSeconds
        self.snapshotMaxAge = snapshotMaxAge
        self.watchdog = watchdog
    }

    /// From the environment names of the configuration contract (`BACKUP_STATUS_HOST`, `BACKUP_STATUS_PORT`,
    /// `BACKUP_STATUS_TOKEN`, `BACKUP_ALERT_WEBHOOK_URL`, `BACKUP_UPLOAD_CHUNK_MIB`); explicit arguments (flags) win.
    public static func fromEnvironment(
        _ environment: [String: String], host: String? = nil, port: Int? = nil, token: Secret? = nil, alertWebhookURL: Secret? = nil
    ) throws -> StatusServerConfiguration {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var resolvedPort = port
        if resolvedPort == nil, let text = value("BACKUP_STATUS_PORT") {
            guard let number = Int(text) else {
                throw StatusServerConfigurationError(setting: "BACKUP_STATUS_PORT", problem: "must be a port number from 0 to 65535")
            }
            resolvedPort = number
        }
        var configuration = try StatusServerConfiguration(
            host: host ?? value("BACKUP_STATUS_HOST"), port: resolvedPort ?? defaultPort,
            token: token ?? value("BACKUP_STATUS_TOKEN").map(Secret.init),
            alertWebhookURL: alertWebhookURL ?? value("BACKUP_ALERT_WEBHOOK_URL").map(Secret.init))
        if let text = value("BACKUP_STATUS_BEHIND_TLS_PROXY") {
            switch text.lowercased() {
            case "1", "true", "yes", "on": configuration.behindTLSProxy = true
            case "0", "false", "no", "off": configuration.behindTLSProxy = false
            default: throw StatusServerConfigurationError(setting: "BACKUP_STATUS_BEHIND_TLS_PROXY", problem: "must be true or false")
            }
        }
        if let name = value("BACKUP_STATUS_CLIENT_IP_HEADER") {
            guard name.utf8.allSatisfy({ $0 < 128 && (Character(UnicodeScalar($0)).isLetter || Character(UnicodeScalar($0)).isNumber || $0 == UInt8(ascii: "-")) }) else {
                throw StatusServerConfigurationError(setting: "BACKUP_STATUS_CLIENT_IP_HEADER", problem: "must be a header name (letters, digits and '-')")
            }
            configuration.clientAddressHeader = name
        }
        if let text = value("BACKUP_UPLOAD_CHUNK_MIB") {
            guard let mebibytes = Int(text), (1...1024).contains(mebibytes) else {
                throw StatusServerConfigurationError(setting: "BACKUP_UPLOAD_CHUNK_MIB", problem: "must be a whole number of MiB from 1 to 1024")
            }
            configuration.uploads.chunkBytes = mebibytes << 20
        }
        return configuration
    }

    /// `127.0.0.0/8`, `::1` and `localhost`.
    public static func isLoopback(_ host: String) -> Bool {
        let trimmed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if trimmed == "localhost" || trimmed == "::1" || trimmed == "0:0:0:0:0:0:0:1" { return true }
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { return false }
        return parts[0] == "127"
    }
}
