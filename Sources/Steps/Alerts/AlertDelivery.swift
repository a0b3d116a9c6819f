import Catalog
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PipelineCore
import PostgresNIO
import SystemIO

/// Posts alerts to the webhook. Never throws: a failed post is logged (with the webhook's scheme and host only)
/// and retried with backoff.
public struct WebhookSender: Sendable {
    public let url: Secret
    public let target: WebhookTarget
    /// `scheme://host[:port]`, what logs and errors may show.
    public let displayURL: String
    let httpClient: HTTPClient
    let timeout: Duration

    public init(url: Secret, httpClient: HTTPClient = .shared, timeout: Duration = .seconds(10)) {
        self.url = url
        self.target = WebhookTarget.detect(url.revealed)
        self.displayURL = WebhookTarget.redacted(url.revealed) ?? "<invalid URL>"
        self.httpClient = httpClient
        self.timeout = timeout
    }

    /// nil when the receiver took it (2xx), else what went wrong, without the URL's secret parts.
    public func post(_ alert: Alert) async -> String? {
        let (headers, body) = target.request(for: alert)
        var request = HTTPClientRequest(url: url.revealed)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "User-Agent", value: "personal-backup-status-server/\(PipelineVersion.current)")
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)))
            // Read (a little of) the body so that the connection can be reused.
            let text = try? await response.body.collect(upTo: 4096)
            if (200..<300).contains(response.status.code) { return nil }
            let snippet = text.map { String(buffer: $0).prefix(200) } ?? ""
            return "HTTP \(response.status.code) from \(displayURL)" + (snippet.isEmpty ? "" : ": \(snippet)")
        } catch {
            return "posting to \(displayURL) failed: \(Self.describe(error))"
        }
    }

    /// An error's description with the URL's secret parts removed (AsyncHTTPClient errors may quote the URL).
    func scrub(_ text: String) -> String {
        var result = text
        let secret = url.revealed
        if !secret.isEmpty { result = result.replacingOccurrences(of: secret, with: displayURL + "/…") }
        if let components = URLComponents(string: secret) {
            for part in [components.percentEncodedPath, components.percentEncodedQuery ?? ""] where part.count > 1 {
                result = result.replacingOccurrences(of: part, with: "…")
            }
        }
        return result
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: error)
    }
}

/// Sends what the `alerts` outbox holds, once each; several deliverers may run (each claims with SKIP LOCKED).
public struct AlertDelivery: Sendable {
    let store: AlertStore
    let sender: WebhookSender?
    let logger: Logger
    /// More due alerts than this of one kind in a pass go out as one summary message.
    let summariseAbove: Int

    public init(store: AlertStore, sender: WebhookSender?, logger: Logger, summariseAbove: Int = 5) {
        self.store = store
        self.sender = sender
        self.logger = logger
        self.summariseAbove = summariseAbove
    }

    /// The wait before attempt `attempt + 1`: 5 s, 10 s, 20 s… capped at 10 minutes, with ±20 % jitter.
    static func backoff(afterAttempt attempt: Int) -> Duration {
        let base = min(600.0, 5.0 * pow(2.0, Double(max(0, attempt - 1))))
        return .milliseconds(Int64(base * Double.random(in: 0.8...1.2) * 1000))
    }

    /// One pass: expire stale alerts, then send due ones. Returns how many alerts were delivered.
    @discardableResult
    public func deliverDue(eventKey: String? = nil) async -> Int {
        guard let sender else { return 0 }
        do {
            try await store.expireUndelivered(olderThan: .seconds(24 * 3600))
            let due = try await store.claimDue(limit: 100, eventKey: eventKey)
            guard !due.isEmpty else { return 0 }
            var delivered = 0
            var groups: [String: [AlertStore.Claimed]] = [:]
            var order: [String] = []
            for claimed in due {
                if groups[claimed.alert.kind] == nil { order.append(claimed.alert.kind) }
                groups[claimed.alert.kind, default: []].append(claimed)
            }
            for kind in order {
                let group = groups[kind] ?? []
                if group.count > summariseAbove {
                    let ids = group.map(\.id)
                    if await send(Self.summary(of: group), ids: ids, attempts: group.map(\.attempts).max() ?? 1, sender: sender) {
                        delivered += ids.count
                    }
                } else {
                    for claimed in group where await send(claimed.alert, ids: [claimed.id], attempts: claimed.attempts, sender: sender) {
                        delivered += 1
                    }
                }
            }
            return delivered
        } catch {
            logger.warning("alert delivery: cannot read the alerts table", metadata: ["error": "\(String(describing: error))"])
            return 0
        }
    }

    private func send(_ alert: Alert, ids: [Int64], attempts: Int, sender: WebhookSender) async -> Bool {
        if let problem = await sender.post(alert) {
            let scrubbed = sender.scrub(problem)
            let retry = Self.backoff(afterAttempt: attempts)
            logger.warning("alert not delivered; will retry", metadata: [
                "alert": "\(alert.eventKey)", "webhook": "\(sender.displayURL)", "error": "\(scrubbed)",
                "attempt": "\(attempts)", "retry_in_s": "\(Int(retry.seconds.rounded()))",
            ])
            try? await store.markFailed(ids, error: scrubbed, retryAfter: retry)
            return false
        }
        do {
            try await store.markDelivered(ids)
        } catch {
            logger.warning("alert delivered but not marked; it may be sent again", metadata: ["alert": "\(alert.eventKey)"])
        }
        logger.info("alert delivered", metadata: ["alert": "\(alert.eventKey)", "webhook": "\(sender.displayURL)"])
        return true
    }

    /// One message for many alerts of one kind (a burst of failed files after a bad configuration, say).
    static func summary(of group: [AlertStore.Claimed]) -> Alert {
        let kind = group.first?.alert.kind ?? "summary"
        let shown = group.prefix(5).map { "• " + $0.alert.message }
        let more = group.count > shown.count ? "\n…and \(group.count - shown.count) more (see the status page)" : ""
        return Alert(
            eventKey: "summary:\(kind):\(group.first?.id ?? 0)-\(group.last?.id ?? 0)", kind: kind,
            message: "\(group.count) \(kind) alerts:\n" + shown.joined(separator: "\n") + more,
            details: ["count": .number(Double(group.count)), "events": .array(group.map { .string($0.alert.eventKey) })],
            time: group.last?.alert.time ?? Date())
    }
}

/// For a worker on its way out after a fatal error: records the event and sends it at once.
public enum AlertSender {
    /// Records `worker-fatal:<workerID>` in `alerts` (when the database is reachable), marks the worker stopped
    /// (so that the watchdog does not also report it dead), and posts the alert to the webhook within `timeout`.
    /// Never throws and never takes longer than about `timeout` (plus the database's own time).
    public static func sendFatal(
        role: WorkerRole, workerID: UUID, error: String, client: PostgresClient?, webhookURL: Secret?, logger: Logger,
        host: String = ProcessInfo.processInfo.hostName, timeout: Duration = .seconds(5)
    ) async {
        let pid = ProcessInfo.processInfo.processIdentifier
        let alert = Alert(
            eventKey: "\(AlertKind.workerFatal):\(workerID.uuidString.lowercased())", kind: AlertKind.workerFatal,
            message: "\(role.rawValue) worker \(pid)@\(host) stopped on a fatal error: \(error)",
            details: [
                "worker_id": .string(workerID.uuidString.lowercased()), "role": .string(role.rawValue), "host": .string(host),
                "pid": .number(Double(pid)), "error": .string(error),
            ])
        let sender = webhookURL.map { WebhookSender(url: $0, timeout: timeout) }
        guard let client else {
            if let sender, let problem = await sender.post(alert) {
                logger.warning("fatal alert not delivered", metadata: ["webhook": "\(sender.displayURL)", "error": "\(sender.scrub(problem))"])
            }
            return
        }
        let store = AlertStore(client: client, logger: logger)
        let recorded = await firstOf(timeout: timeout, fallback: false) {
            do {
                try await store.record(alert)
                try await AlertCatalog(client: client, logger: logger).markWorkerFatal(workerID, error: error)
                return true
            } catch {
                return false
            }
        }
        guard recorded else {
            // The database may be why the worker is dying: send directly.
            if let sender, let problem = await sender.post(alert) {
                logger.warning("fatal alert not delivered", metadata: ["webhook": "\(sender.displayURL)", "error": "\(sender.scrub(problem))"])
            }
            return
        }
        // Sent from here and marked delivered; a watchdog picks it up if this fails.
        _ = await AlertDelivery(store: store, sender: sender, logger: logger).deliverDue(eventKey: alert.eventKey)
    }
}
