import Crypto
import Foundation
import PipelineCore

/// Random secrets handed to a browser (session ids) or a script (personal API tokens). Only their SHA-256 is stored:
/// they are 256-bit random values, so a fast hash is enough and a copy of the tables opens nothing.
public enum SecretTokens {
    /// Prefix of personal API tokens, so that a leaked one is recognisable (and greppable by secret scanners).
    public static let apiTokenPrefix = "pbk_"
    /// Prefix of invitation links' tokens.
    public static let invitationPrefix = "inv_"

    /// A new secret: 32 random bytes, base64url without padding, behind `prefix`.
    public static func generate(prefix: String = "") -> Secret {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return Secret(prefix + text)
    }

    /// What the catalog stores for a secret: lower-case hex SHA-256.
    public static func hash(_ secret: Secret) -> String {
        Array(SHA256.hash(data: Data(secret.revealed.utf8))).hexString
    }

    /// The CSRF token of a session: an HMAC of a fixed text keyed with the session id, so it is tied to that session,
    /// needs no storage, and reveals nothing about the id.
    public static func csrfToken(forSession session: Secret) -> String {
        let key = SymmetricKey(data: Data(session.revealed.utf8))
        return Array(HMAC<SHA256>.authenticationCode(for: Data("personal-backup csrf v1".utf8), using: key)).hexString
    }

    /// Compares every byte whatever the content.
    public static func constantTimeEqual(_ candidate: String, _ expected: String) -> Bool {
        let a = Array(candidate.utf8), b = Array(expected.utf8)
        var difference = UInt64(a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= UInt64((index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0))
        }
        return difference == 0
    }
}
