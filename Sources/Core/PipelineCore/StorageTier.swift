/// How fast a source must read back. A source is `cold` (the archive class, Deep Archive by default: cheapest,
/// a restore of up to 12-48 h before any byte can be read) or `warm` (a class that reads back at once, in smaller
/// bundles, so that one file costs little time and few bytes to get back). Recorded per source (`sources.tier`).
public enum SourceTier: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case cold, warm

    public var description: String { rawValue }
}

/// The storage class of each tier (`BACKUP_ARCHIVE_STORAGE_CLASS`, `BACKUP_WARM_STORAGE_CLASS`).
public struct TierStorageClasses: Sendable, Hashable {
    public var cold: StorageClass
    public var warm: StorageClass

    public init(cold: StorageClass = .deepArchive, warm: StorageClass = .glacierInstantRetrieval) {
        self.cold = cold
        self.warm = warm
    }

    public subscript(tier: SourceTier) -> StorageClass {
        switch tier {
        case .cold: cold
        case .warm: warm
        }
    }

    /// The classes a warm tier may use: all read back without a restore request (STANDARD for S3-compatible
    /// servers that keep no other class, such as MinIO in the compose stack).
    public static let warmChoices: [StorageClass] = [.glacierInstantRetrieval, .standardInfrequentAccess, .standard]
}

/// S3 list prices for storage, USD per GB-month, us-east-1 (published by AWS, checked 2025). An estimate only:
/// other regions, requests, retrievals, minimum durations (30 days IA, 90 GLACIER_IR and GLACIER, 180 DEEP_ARCHIVE)
/// and minimum billable object sizes (128 KB for the IA classes and GLACIER_IR) are left out.
public enum StoragePricing {
    public static let usdPerGBMonth: [String: Double] = [
        "STANDARD": 0.023,
        "STANDARD_IA": 0.0125,
        "ONEZONE_IA": 0.01,
        "INTELLIGENT_TIERING": 0.023,
        "GLACIER_IR": 0.004,
        "GLACIER": 0.0036,
        "DEEP_ARCHIVE": 0.00099,
        "REDUCED_REDUNDANCY": 0.024,
        "EXPRESS_ONEZONE": 0.11,
    ]

    /// USD per GB read back (list price; DEEP_ARCHIVE and GLACIER: a Standard restore; STANDARD: free).
    public static let usdPerGBRetrieved: [String: Double] = [
        "STANDARD": 0, "INTELLIGENT_TIERING": 0, "STANDARD_IA": 0.01, "ONEZONE_IA": 0.01, "GLACIER_IR": 0.03,
        "GLACIER": 0.01, "DEEP_ARCHIVE": 0.02, "REDUCED_REDUNDANCY": 0, "EXPRESS_ONEZONE": 0,
    ]

    /// A GB as AWS bills it (2^30 bytes).
    static let gigabyte = Double(1 << 30)

    /// What `bytes` cost a month in `storageClass` at the list price.
    public static func monthlyUSD(bytes: Int64, storageClass: StorageClass) -> Double {
        Double(max(0, bytes)) / gigabyte * (usdPerGBMonth[storageClass.rawValue] ?? 0)
    }
}
