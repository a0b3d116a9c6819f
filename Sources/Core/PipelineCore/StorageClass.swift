/// An S3 storage class, as sent in `x-amz-storage-class`.
public struct StorageClass: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        guard Self.known.contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static let standard = StorageClass(known: "STANDARD")
    public static let deepArchive = StorageClass(known: "DEEP_ARCHIVE")
    public static let glacier = StorageClass(known: "GLACIER")
    public static let glacierInstantRetrieval = StorageClass(known: "GLACIER_IR")
    public static let standardInfrequentAccess = StorageClass(known: "STANDARD_IA")

    /// The classes S3 accepts on PutObject (GLACIER is "Glacier Flexible Retrieval").
    public static let known: Set<String> = [
        "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
        "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "EXPRESS_ONEZONE",
    ]

    /// Objects in these classes need a restore request before their bytes can be read.
    public var needsRestoreBeforeRead: Bool { self == .glacier || self == .deepArchive }

    private init(known rawValue: String) { self.rawValue = rawValue }
}
