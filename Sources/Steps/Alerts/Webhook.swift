import Foundation
import PipelineCore

/// One alert as it is sent.
public struct Alert: Sendable, Hashable {
    /// Unique per event (`worker-dead:<id>`, `file-failed:<id>:<attempt>`…): the `alerts.event_key`.
    public var eventKey: String
    public var kind: String
    public var message: String
    public var details: [String: JSONValue]
    public var time: Date

    public init(eventKey: String, kind: String, message: String, details: [String: JSONValue] = [:], time: Date = Date()) {
        self.eventKey = eventKey
        self.kind = kind
        self.message = message
        self.details = details
        self.time = time
    }
}

/// The kinds of alert, as stored in `alerts.kind`.
public enum AlertKind {
    public static let workerDead = "worker-dead"
    public static let leasesExpired = "leases-expired"
    public static let jobsReclaimed = "jobs-reclaimed"
    public static let fileFailed = "file-failed"
    public static let sourceArchived = "source-archived"
    public static let workerFatal = "worker-fatal"
}

/// The receiver, recognised from the webhook URL, and the request body it understands.
public enum WebhookTarget: Sendable, Equatable {
    /// `hooks.slack.com`: `{"text": …}`.
    case slack
    /// `discord.com/api/webhooks` (or discordapp.com): `{"content": …}`, at most 2000 characters.
    case discord
    /// `ntfy.sh` or a path starting with `/ntfy`: the message as plain text, the title in a `Title` header.
    case ntfy
    /// Anything else: `{"event", "kind", "message", "details", "time"}`.
    case generic

    public static func detect(_ url: String) -> WebhookTarget {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased() else { return .generic }
        let path = components.path.lowercased()
        if host == "hooks.slack.com" { return .slack }
        if (host == "discord.com" || host.hasSuffix(".discord.com") || host == "discordapp.com") && path.hasPrefix("/api/webhooks") {
            return .discord
        }
        if host == "ntfy.sh" || host.hasSuffix(".ntfy.sh") || host.hasPrefix("ntfy.") || path.hasPrefix("/ntfy") || path.contains("/ntfy/") {
            return .ntfy
        }
        return .generic
    }

    /// `scheme://host[:port]` only: a webhook's path and query are its secret. nil for anything but http(s).
    public static func redacted(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { return nil }
        let port = components.port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)"
    }

    /// The headers and body to post for `alert`.
    public func request(for alert: Alert) -> (headers: [(String, String)], body: Data) {
        let text = "[personal-backup] " + alert.message
        switch self {
        case .slack:
            return ([("Content-Type", "application/json")], Self.json(["text": .string(text)]))
        case .discord:
            let content = text.count > 2000 ? String(text.prefix(1997)) + "…" : text
            return ([("Content-Type", "application/json")], Self.json(["content": .string(content)]))
        case .ntfy:
            // Header values must be plain ASCII without line breaks.
            let title = "personal-backup: " + alert.kind
            let priority = [AlertKind.workerDead, AlertKind.workerFatal, AlertKind.fileFailed].contains(alert.kind) ? "high" : "default"
            let tags = alert.kind == AlertKind.sourceArchived ? "white_check_mark" : "warning"
            return ([("Content-Type", "text/plain; charset=utf-8"), ("Title", title), ("Priority", priority), ("Tags", tags)], Data(alert.message.utf8))
        case .generic:
            let time = ISO8601DateFormatter().string(from: alert.time)
            return ([("Content-Type", "application/json")], Self.json([
                "event": .string(alert.eventKey), "kind": .string(alert.kind), "message": .string(alert.message),
                "details": .object(alert.details), "time": .string(time),
            ]))
        }
    }

    static func json(_ object: [String: JSONValue]) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(JSONValue.object(object))) ?? Data("{}".utf8)
    }
}
