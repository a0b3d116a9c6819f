import PipelineCore

/// Why an age operation failed, in one line that never contains key material or a passphrase.
public typealias AgeError = CodedError<AgeErrorCode>

public enum AgeErrorCode: String, Sendable, Hashable {
    /// None of the identities given can open the file (X25519 keys that are not among its recipients).
    case noMatchingIdentity
    /// The header does not parse, breaks a rule of the format, or ends early.
    case badHeader
    /// A file key was unwrapped but the header's MAC does not match: the header was altered.
    case badHeaderMAC
    /// A payload chunk failed authentication (altered, reordered, or an empty last chunk).
    case badPayload
    /// The file ends before its last chunk.
    case truncated
    /// Bytes follow the last chunk.
    case trailingData
    /// The file is only for recipient types this implementation does not read (hybrid ML-KEM, SSH, plugins).
    case unsupportedRecipient
    /// The passphrase does not open the file, or is not usable (empty).
    case badPassphrase
    /// A recipient, identity or key file does not parse.
    case badKey
    /// The file's scrypt work factor is above the limit the caller set.
    case scryptWorkFactorTooHigh
    /// The recipients cannot be used together (a passphrase with others, none at all).
    case invalidRecipients
    /// A saved `AgeEncryptor.ResumeState` is inconsistent (wrong sizes, a header its key does not authenticate).
    case badResumeState
}

extension CodedError where Code == AgeErrorCode {
    static func header(_ problem: String) -> AgeError { AgeError(.badHeader, "not a valid age file: \(problem)") }
    static func key(_ problem: String) -> AgeError { AgeError(.badKey, problem) }

    /// A class of failure for callers that only need to know where it happened.
    public var isHeaderFailure: Bool { code == .badHeader || code == .scryptWorkFactorTooHigh }
    public var isPayloadFailure: Bool { code == .badPayload || code == .truncated || code == .trailingData }
    public var isNoMatch: Bool { code == .noMatchingIdentity || code == .badPassphrase || code == .unsupportedRecipient }
}
