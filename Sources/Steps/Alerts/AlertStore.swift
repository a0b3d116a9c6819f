import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// The `alerts` outbox as alerts: one row per event (the unique `event_key`), emptied by the delivery loop. The
/// statements are in `AlertCatalog`.
public struct AlertStore: Sendable {
    let catalog: AlertCatalog

    public init(client: PostgresClient, logger: Logger) {
        catalog = AlertCatalog(client: client, logger: logger)
    }

    /// Records an event; false when it was already recorded (by this or another watchdog, before a restart…).
    @discardableResult
    public func record(_ alert: Alert) async throws -> Bool {
        let details = String(decoding: WebhookTarget.json(alert.details), as: UTF8.self)
        return try await catalog.record(eventKey: alert.eventKey, kind: alert.kind, message: alert.message, detailsJSON: details)
    }

    /// Whether an event was recorded.
    public func exists(_ eventKey: String) async throws -> Bool {
        try await catalog.exists(eventKey)
    }

    struct Claimed: Sendable {
        var id: Int64
        var alert: Alert
        var attempts: Int
    }

    /// Takes undelivered alerts that are due (see `AlertCatalog.claimDue`).
    func claimDue(limit: Int, eventKey: String? = nil, hold: Duration = .seconds(120)) async throws -> [Claimed] {
        try await catalog.claimDue(limit: limit, eventKey: eventKey, hold: hold).map { row in
            var details: [String: JSONValue] = [:]
            if case .object(let object) = JSONValue.parse(row.detailsJSON) { details = object }
            return Claimed(
                id: row.id, alert: Alert(eventKey: row.eventKey, kind: row.kind, message: row.message, details: details, time: row.createdAt),
                attempts: row.attempts)
        }
    }

    func markDelivered(_ ids: [Int64]) async throws { try await catalog.markDelivered(ids) }

    func markFailed(_ ids: [Int64], error: String, retryAfter: Duration) async throws {
        try await catalog.markFailed(ids, error: error, retryAfter: retryAfter)
    }

    func expireUndelivered(olderThan maxAge: Duration) async throws { try await catalog.expireUndelivered(olderThan: maxAge) }
}
