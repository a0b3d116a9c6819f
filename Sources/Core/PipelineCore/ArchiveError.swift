/// Why archiving a file or a bundle failed. Messages name the file or object, never a credential.
public enum ArchiveError: Error, Sendable, CustomStringConvertible {
    /// The staging copy's bytes are not the ones catalogued: archiving them would store the wrong content.
    case contentMismatch(fileID: Int64, key: String, expected: String, actual: String)
    /// The staging copy is gone, so there is nothing to archive.
    case stagingObjectMissing(fileID: Int64, key: String)
    /// The archive store accepted the upload but does not show the object as written.
    case verificationFailed(key: String, problem: String)

    public var description: String {
        switch self {
        case .contentMismatch(let id, let key, let expected, let actual):
            "file \(id): the staging copy \(key) has SHA-256 \(actual), but the catalog says \(expected); not archived"
        case .stagingObjectMissing(let id, let key):
            "file \(id): the staging copy \(key) does not exist"
        case .verificationFailed(let key, let problem):
            "archive object \(key) failed verification: \(problem)"
        }
    }

    /// Retrying cannot fix these: the staging bytes are wrong or gone.
    public var isPermanent: Bool {
        switch self {
        case .contentMismatch, .stagingObjectMissing: true
        case .verificationFailed: false
        }
    }
}
