import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// The `alerts` table: one row per event (the unique `event_key`), an outbox the delivery loop empties.
public struct AlertStore: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Records an event; false when it was already recorded (by this or another watchdog, before a restart…).
    @discardableResult
    public func record(_ alert: Alert) async throws -> Bool {
        let details = String(decoding: WebhookTarget.json(alert.details), as: UTF8.self)
        let rows = try await client.query("""
            INSERT INTO alerts (event_key, kind, message, details) VALUES (\(alert.eventKey), \(alert.kind), \(alert.message), \(details)::jsonb)
            ON CONFLICT (event_key) DO NOTHING RETURNING id
            """, logger: logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    /// Whether an event was recorded.
    public func exists(_ eventKey: String) async throws -> Bool {
        let rows = try await client.query("SELECT 1 FROM alerts WHERE event_key = \(eventKey)", logger: logger)
        for try await _ in rows.decode(Int.self) { return true }
        return false
    }

    struct Claimed: Sendable {
        var id: Int64
        var alert: Alert
        var attempts: Int
    }

    /// Takes undelivered alerts that are due, pushing their next attempt forward so that another delivery loop
    /// (another status server) skips them while this one sends. `eventKey` takes one alert only.
    func claimDue(limit: Int, eventKey: String? = nil, hold: Duration = .seconds(120)) async throws -> [Claimed] {
        let rows = try await client.query("""
            UPDATE alerts SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => \(hold.seconds))
            WHERE id IN (
                SELECT id FROM alerts
                WHERE delivered_at IS NULL AND next_attempt_at <= now() AND (\(eventKey)::text IS NULL OR event_key = \(eventKey))
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT \(limit))
            RETURNING id, event_key, kind, message, details::text, created_at, attempts
            """, logger: logger)
        var result: [Claimed] = []
        for try await (id, key, kind, message, details, created, attempts) in rows.decode((Int64, String, String, String, String, Date, Int).self) {
            var detailValues: [String: JSONValue] = [:]
            if case .object(let object) = JSONValue.parse(details) { detailValues = object }
            result.append(Claimed(
                id: id, alert: Alert(eventKey: key, kind: kind, message: message, details: detailValues, time: created), attempts: attempts))
        }
        return result.sorted { $0.id < $1.id }
    }

    func markDelivered(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await client.query(
            "UPDATE alerts SET delivered_at = now(), last_error = NULL WHERE id = ANY(\(ids))", logger: logger)
    }

    func markFailed(_ ids: [Int64], error: String, retryAfter: Duration) async throws {
        guard !ids.isEmpty else { return }
        _ = try await client.query("""
            UPDATE alerts SET last_error = \(error), next_attempt_at = now() + make_interval(secs => \(retryAfter.seconds))
            WHERE id = ANY(\(ids))
            """, logger: logger)
    }

    /// Alerts older than `maxAge` that were never delivered are news no more: they stay in the table (the page
    /// shows them) but are not sent, so a webhook configured late, or one down for a day, brings no flood.
    func expireUndelivered(olderThan maxAge: Duration) async throws {
        _ = try await client.query("""
            UPDATE alerts SET next_attempt_at = 'infinity', last_error = coalesce(last_error || '; ', '') || 'not sent: too old'
            WHERE delivered_at IS NULL AND next_attempt_at < 'infinity' AND created_at < now() - make_interval(secs => \(maxAge.seconds))
            """, logger: logger)
    }
}
