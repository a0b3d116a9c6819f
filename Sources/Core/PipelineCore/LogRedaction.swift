import Foundation

/// Takes secrets out of a log line before it is kept anywhere but the process's own output (the catalog's
/// `worker_logs`, which admins read in a browser). `Secret` already prints as `<redacted>`; this is the second
/// line of defence for a secret that reached a message as plain text: the configured secrets by value, and by
/// shape the password of a URL, signed-URL and token query parameters, bearer tokens, and this project's own
/// token prefixes. A metadata value under a key that names a secret is dropped whole.
public struct LogRedaction: Sendable {
    public static let mask = "<redacted>"

    /// Values replaced wherever they occur (and their percent-encoded forms); shorter ones would redact by accident.
    let knownSecrets: [String]

    /// Query or `name=value` parameters whose value is a credential.
    static let secretParameters = [
        "x-amz-signature=", "x-amz-credential=", "x-amz-security-token=", "signature=", "sig=", "token=", "password=", "passwd=", "secret=", "csrf=",
    ]
    /// What precedes a bare credential: an HTTP auth scheme, or the prefixes of the family tokens (`SecretTokens`, share links).
    static let secretMarkers = ["bearer ", "pbk_", "inv_", "shr_"]
    /// A metadata key containing one of these names a secret value.
    static let secretKeyWords = ["password", "secret", "token", "authorization", "cookie", "credential", "passphrase"]

    public init(knownSecrets: [String]) {
        var values: Set<String> = []
        for secret in knownSecrets where secret.count >= 8 {
            values.insert(secret)
            // As a URL's userinfo or query carries it, and fully encoded (RFC 3986's unreserved characters only).
            let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
            for allowed in [CharacterSet.urlUserAllowed, .urlPasswordAllowed, .urlQueryAllowed, unreserved] {
                if let encoded = secret.addingPercentEncoding(withAllowedCharacters: allowed) { values.insert(encoded) }
            }
        }
        // Longest first: a secret that contains another is replaced whole.
        self.knownSecrets = values.sorted { $0.count > $1.count }
    }

    public func redact(_ text: String) -> String {
        var result = text
        for secret in knownSecrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.mask)
        }
        result = Self.redactURLPasswords(result)
        for marker in Self.secretParameters + Self.secretMarkers {
            result = Self.redactValues(after: marker, in: result)
        }
        return result
    }

    /// A metadata value: dropped under a key that names a secret, else redacted like a message.
    public func redact(value: String, key: String) -> String {
        let lowered = key.lowercased()
        if Self.secretKeyWords.contains(where: lowered.contains) { return Self.mask }
        return redact(value)
    }

    /// `scheme://user:password@host` → `scheme://user:<redacted>@host`.
    static func redactURLPasswords(_ text: String) -> String {
        guard text.contains("://") else { return text }
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" || $0.isWhitespace || $0 == "\"" || $0 == "'" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result += authority[...colon] + mask
                rest = rest[at...]
            }
        }
        return result + rest
    }

    /// Replaces the value that follows `marker` (case-insensitively) up to the next separator.
    static func redactValues(after marker: String, in text: String) -> String {
        guard text.range(of: marker, options: .caseInsensitive) != nil else { return text }
        var result = ""
        var rest = Substring(text)
        while let found = rest.range(of: marker, options: .caseInsensitive) {
            result += rest[..<found.upperBound]
            rest = rest[found.upperBound...]
            let end = rest.firstIndex { $0.isWhitespace || "&\"'<>,;)]}".contains($0) } ?? rest.endIndex
            if end != rest.startIndex && !rest[..<end].hasPrefix(mask) { result += mask }
            else { result += rest[..<end] }
            rest = rest[end...]
        }
        return result + rest
    }
}

extension PipelineConfiguration {
    /// Every secret of the settings as text, for `LogRedaction`: the database password, the AWS secret key and
    /// session token, the alert webhook URL (its path is its secret) and the status token.
    public var secretValues: [String] {
        var values: [String] = []
        if case .server(let url) = database, let password = url.password { values.append(password.revealed) }
        if let credentials = aws.staticCredentials {
            values.append(credentials.secretAccessKey.revealed)
            if let token = credentials.sessionToken { values.append(token.revealed) }
        }
        if let webhook = alertWebhookURL { values.append(webhook.revealed) }
        if let token = statusToken { values.append(token.revealed) }
        return values
    }
}
