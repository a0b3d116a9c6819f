import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineCore
import PostgresNIO
import ServiceLifecycle
import Alerts
import SystemIO
import Catalog
import Accounts

/// The token checks, shared by the middleware and the login form.
public enum StatusAuth {
    public static let cookieName = "backup_status_session"

    /// The login cookie's value: an HMAC of a fixed text keyed with the token, so the cookie never holds the token
    /// itself, and stays valid across restarts until the token changes.
    public static func sessionValue(for token: Secret) -> String {
        let key = SymmetricKey(data: Data(token.revealed.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data("personal-backup status session v1".utf8), using: key)
        return Array(mac).hexString
    }

    /// Compares every byte whatever the content, so the time taken says nothing about how much matched.
    public static func constantTimeEqual(_ candidate: String, _ expected: String) -> Bool {
        SecretTokens.constantTimeEqual(candidate, expected)
    }
}
