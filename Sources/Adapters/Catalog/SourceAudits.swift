import Foundation
import Logging
import PipelineCore
import PostgresNIO

/// What `uploader audit` last said about a source.
public struct SourceAuditRecord: Sendable, Hashable {
    public let checkedAt: Date
    public let safe: Bool
    public let files: Int
    public let contentVerified: Int
    public let sizeChecked: Int
    public let problems: [String]

    public init(checkedAt: Date = Date(), safe: Bool, files: Int, contentVerified: Int, sizeChecked: Int, problems: [String]) {
        (self.checkedAt, self.safe, self.files, self.contentVerified, self.sizeChecked, self.problems) = (checkedAt, safe, files, contentVerified, sizeChecked, problems)
    }
}

/// `source_audits` (migration 18): every audit's verdict per source, so the family pages can show "safe to destroy
/// the original?" as the audit last answered it (and whether files arrived since).
public struct SourceAudits: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Records one source's verdict (only the first 100 problems: the audit's own output has them all).
    public func record(label: String, _ audit: SourceAuditRecord) async throws {
        try await CatalogError.wrapping("record the audit's verdict") {
            let problems = String(decoding: try JSONEncoder().encode(Array(audit.problems.prefix(100))), as: UTF8.self)
            _ = try await client.catalogQuery("""
                INSERT INTO source_audits (source_id, checked_at, safe, files, content_verified, size_checked, problem_count, problems)
                SELECT id, \(audit.checkedAt), \(audit.safe), \(audit.files), \(audit.contentVerified), \(audit.sizeChecked), \(audit.problems.count), \(problems)::jsonb
                FROM sources WHERE label = \(label)
                """, logger: logger)
        }
    }

    public func last(sourceID: Int64) async throws -> SourceAuditRecord? {
        try await CatalogError.wrapping("read the last audit") {
            let rows = try await client.catalogQuery("""
                SELECT checked_at, safe, files, content_verified, size_checked, problems::text FROM source_audits
                WHERE source_id = \(sourceID) ORDER BY checked_at DESC, id DESC LIMIT 1
                """, logger: logger)
            for try await (checked, safe, files, verified, sized, problems) in rows.decode((Date, Bool, Int32, Int32, Int32, String).self) {
                let list = (try? JSONDecoder().decode([String].self, from: Data(problems.utf8))) ?? []
                return SourceAuditRecord(checkedAt: checked, safe: safe, files: Int(files), contentVerified: Int(verified), sizeChecked: Int(sized), problems: list)
            }
            return nil
        }
    }
}
