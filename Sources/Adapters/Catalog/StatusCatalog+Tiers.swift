import Foundation
import PipelineCore
import PostgresNIO

/// One tier on the status page: its sources and what its archived files take, priced at the list price of the
/// class the tier is configured to use now (`StoragePricing`; an estimate, see the README).
public struct TierStatus: Sendable, Codable {
    public var tier: String
    public var storageClass: String
    public var sources: Int64
    /// Rows of the tier's sources, and their original bytes.
    public var filesTotal: Int64
    public var bytesTotal: Int64
    /// Archived rows that hold their content (duplicates take no room) and what they take in the archive.
    public var filesArchived: Int64
    public var bytesStored: Int64
    public var usdPerGBMonth: Double
    public var estimatedMonthlyUSD: Double

    enum CodingKeys: String, CodingKey {
        case tier, sources
        case storageClass = "storage_class"
        case filesTotal = "files_total"
        case bytesTotal = "bytes_total"
        case filesArchived = "files_archived"
        case bytesStored = "bytes_stored"
        case usdPerGBMonth = "usd_per_gb_month"
        case estimatedMonthlyUSD = "estimated_monthly_usd"
    }
}

extension StatusCatalog {
    /// Every source that is not cold, and the number of sources per tier: few rows (sources are discs and drives),
    /// and not limited like the per-source list.
    func readTiers() async throws -> (warm: Set<Int64>, counts: [String: Int64]) {
        var warm: Set<Int64> = []
        for try await id in try await client.catalogQuery("SELECT id FROM sources WHERE tier = 'warm'", logger: logger).decode(Int64.self) {
            warm.insert(id)
        }
        var counts: [String: Int64] = [:]
        for try await (tier, count) in try await client.catalogQuery("SELECT tier, count(*)::bigint FROM sources GROUP BY tier", logger: logger)
            .decode((String, Int64).self) {
            counts[tier] = count
        }
        return (warm, counts)
    }

    /// The per-tier totals from the per-source, per-state rows the snapshot already read.
    static func tierStatuses(_ rows: [StateRow], warm: Set<Int64>, sourceCounts: [String: Int64], classes: TierStorageClasses) -> [TierStatus] {
        SourceTier.allCases.map { tier in
            let mine = rows.filter { (warm.contains($0.sourceID) ? SourceTier.warm : .cold) == tier }
            let archived = mine.filter { $0.state == "archived" }
            let stored = archived.reduce(Int64(0)) { $0 + $1.storedBytes }
            let storageClass = classes[tier]
            return TierStatus(
                tier: tier.rawValue, storageClass: storageClass.rawValue, sources: sourceCounts[tier.rawValue] ?? 0,
                filesTotal: mine.reduce(0) { $0 + $1.files }, bytesTotal: mine.reduce(0) { $0 + $1.bytes },
                filesArchived: archived.reduce(0) { $0 + $1.files }, bytesStored: stored,
                usdPerGBMonth: StoragePricing.usdPerGBMonth[storageClass.rawValue] ?? 0,
                estimatedMonthlyUSD: StoragePricing.monthlyUSD(bytes: stored, storageClass: storageClass))
        }
    }
}
