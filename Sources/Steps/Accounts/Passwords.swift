import HummingbirdBcrypt
import PipelineCore

/// The password rules and bcrypt (hummingbird-auth's HummingbirdBcrypt, OpenBSD's implementation).
public enum Passwords {
    /// Shorter passwords are refused.
    public static let minimumLength = 10
    /// bcrypt reads at most 72 bytes; longer passwords would be silently cut, so they are refused instead.
    public static let maximumBytes = 72
    /// bcrypt's cost (2^12 rounds: about a quarter second here).
    public static let cost: UInt8 = 12

    /// Checks the rules; the message never repeats the password.
    public static func check(_ password: Secret) throws {
        let text = password.revealed
        if text.isEmpty { throw AccountError(.weakPassword, "the password is empty") }
        if text.count < minimumLength {
            throw AccountError(.weakPassword, "the password is too short: use at least \(minimumLength) characters")
        }
        if text.utf8.count > maximumBytes {
            throw AccountError(.weakPassword, "the password is too long: bcrypt reads at most \(maximumBytes) bytes")
        }
    }

    /// The rules, then bcrypt. Blocking for about a quarter second: call it off the cooperative pool.
    public static func hash(_ password: Secret) throws -> String {
        try check(password)
        return Bcrypt.hash(password.revealed, cost: cost)
    }

    public static func verify(_ password: Secret, hash: String) -> Bool {
        Bcrypt.verify(password.revealed, hash: hash)
    }

    /// A hash of a password nobody knows, verified against when the user does not exist so that an unknown name
    /// costs the same time as a wrong password.
    static let decoyHash = Bcrypt.hash("decoy password that is never anyone's", cost: cost)
}

/// User names: a letter or digit, then letters, digits, `.`, `_` or `-`, at most 64 characters (also a CHECK in
/// the catalog).
public enum UserNames {
    public static func check(_ name: String) throws {
        let allowed = name.unicodeScalars.enumerated().allSatisfy { index, scalar in
            let alphanumeric = scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar))
            return alphanumeric || (index > 0 && (scalar == "." || scalar == "_" || scalar == "-"))
        }
        guard !name.isEmpty, name.unicodeScalars.count <= 64, allowed else {
            throw AccountError(.invalidName, "a user name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }
}
