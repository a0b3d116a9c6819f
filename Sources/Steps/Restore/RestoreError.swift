import PipelineCore

/// Why restoring, verifying or rebuilding went wrong, in one line that names what was wrong (a file, a key, a
/// setting) and never a credential.
public typealias RestoreError = CodedError<RestoreErrorCode>

public enum RestoreErrorCode: String, Sendable, Hashable {
    /// The request cannot be served as asked (an unknown source, nothing selected).
    case invalidRequest
    /// A path from the catalog or a bundle would leave the destination, or is not a regular file.
    case unsafePath
    /// The bytes read do not hash to what the catalog recorded.
    case checksumMismatch
    /// The archive object is missing or not the size the catalog says.
    case objectMissing
    /// The file exists in the destination with other content and `--overwrite` was not given.
    case exists
    /// The file is not in the archive (not archived yet, failed, unreadable).
    case notArchived
    /// A local file or directory could not be read or written.
    case localIO
    /// The database is not empty (rebuild-catalog), or the archive holds no catalog.
    case catalog
    /// An encrypted source cannot be opened: no identity or passphrase given, or none that fits.
    case wrongIdentity
    /// An encrypted file's ciphertext failed age's authentication (altered or truncated): nothing written.
    case decryptionFailed
}
