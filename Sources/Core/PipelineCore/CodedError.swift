/// The project's one error shape outside the catalog (whose `CatalogError` adds the underlying database error and
/// SQLSTATE): what kind of failure, for callers that branch on it, and a one-line message that names what was
/// wrong (a file, a key, a setting) and never a credential. Each module names its own: `typealias ArchiveError =
/// CodedError<ArchiveErrorCode>`.
public struct CodedError<Code: Hashable & Sendable>: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
