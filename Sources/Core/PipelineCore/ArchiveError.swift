/// Why archiving a file or a bundle failed. Messages name the file or object, never a credential.
public typealias ArchiveError = CodedError<ArchiveErrorCode>

public enum ArchiveErrorCode: String, Sendable, Hashable {
    /// The staging copy's bytes are not the ones catalogued: archiving them would store the wrong content.
    case contentMismatch
    /// The staging copy is gone, so there is nothing to archive.
    case stagingObjectMissing
    /// The archive store accepted the upload but does not show the object as written.
    case verificationFailed
}

extension CodedError where Code == ArchiveErrorCode {
    /// Retrying cannot fix these: the staging bytes are wrong or gone.
    public var isPermanent: Bool { code != .verificationFailed }

    public static func contentMismatch(fileID: Int64, key: String, expected: String, actual: String) -> ArchiveError {
        ArchiveError(.contentMismatch, "file \(fileID): the staging copy \(key) has SHA-256 \(actual), but the catalog says \(expected); not archived")
    }

    public static func stagingObjectMissing(fileID: Int64, key: String) -> ArchiveError {
        ArchiveError(.stagingObjectMissing, "file \(fileID): the staging copy \(key) does not exist")
    }

    public static func verificationFailed(key: String, problem: String) -> ArchiveError {
        ArchiveError(.verificationFailed, "archive object \(key) failed verification: \(problem)")
    }
}
