/// The one error type of this module. Its message is a single line and never contains credentials.
public struct SigV4Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, for code that wants to react to a specific failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case expiresOutOfRange
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// A presigned URL's lifetime must be 1 second to 7 days (604800 s), the range S3 accepts.
        public static let expiresOutOfRange = Code(.expiresOutOfRange)

        public var description: String {
            switch base {
            case .expiresOutOfRange: "expiresOutOfRange"
            }
        }
    }

    public let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "SigV4Error.\(code): \(message)" }

    static func expiresOutOfRange(_ expires: Int) -> SigV4Error {
        SigV4Error(
            .expiresOutOfRange,
            "presigned URL expiry must be between 1 and \(SigV4Signer.maximumPresignExpiry) seconds (7 days), got \(expires)"
        )
    }
}
