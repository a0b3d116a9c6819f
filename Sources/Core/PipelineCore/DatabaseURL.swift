/// A parsed `DATABASE_URL`: `postgres://user:password@host:port/database?sslmode=…`.
///
/// Also accepts libpq's unix-socket form, `postgres://user@/database?host=/run/postgresql`.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        /// A directory holding the server's socket file `.s.PGSQL.<port>`, as libpq's `host=/dir`.
        case unixSocket(directory: String, port: Int)
    }

    public var endpoint: Endpoint
    public var user: String
    public var password: Secret?
    public var database: String
    public var sslMode: SSLMode
    /// A CA bundle for `verify-ca`/`verify-full` (RDS publishes one), as libpq's `sslrootcert`.
    public var sslRootCertificatePath: String?

    public init(
        endpoint: Endpoint, user: String, password: Secret?, database: String,
        sslMode: SSLMode = .prefer, sslRootCertificatePath: String? = nil
    ) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.sslRootCertificatePath = sslRootCertificatePath
    }

    /// The path of the socket file for a unix-socket endpoint.
    public var unixSocketPath: String? {
        guard case .unixSocket(let directory, let port) = endpoint else { return nil }
        return "\(directory)/.s.PGSQL.\(port)"
    }

    /// The URL with the password replaced, safe to print.
    public var description: String {
        let credentials = password == nil ? user : "\(user):***"
        switch endpoint {
        case .tcp(let host, let port):
            let printableHost = host.contains(":") ? "[\(host)]" : host
            return "postgres://\(credentials)@\(printableHost):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
        case .unixSocket(let directory, let port):
            return "postgres://\(credentials)@/\(database)?host=\(directory)&port=\(port)"
        }
    }

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Parses the URL. Thrown reasons never repeat the input (it may hold a password).
    public init(parsing text: String) throws(ParseError) {
        var rest = Substring(text)
        if rest.hasPrefix("postgres://") {
            rest = rest.dropFirst("postgres://".count)
        } else if rest.hasPrefix("postgresql://") {
            rest = rest.dropFirst("postgresql://".count)
        } else {
            throw ParseError(reason: "expected a URL starting with postgres:// or postgresql://")
        }

        // Split off the query, then the path (database), then the userinfo.
        var queryText: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }
        var databaseText: Substring = ""
        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            databaseText = rest[rest.index(after: slash)...]
            authority = rest[..<slash]
        }
        var userInfo: Substring = ""
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
        }

        var user = ""
        var password: Secret?
        if !userInfo.isEmpty {
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let decodedUser = percentDecode(parts[0]) else {
                throw ParseError(reason: "the user name has a malformed %-escape")
            }
            user = decodedUser
            if parts.count == 2 {
                guard let decodedPassword = percentDecode(parts[1]) else {
                    throw ParseError(reason: "the password has a malformed %-escape")
                }
                password = Secret(decodedPassword)
            }
        }

        var host = ""
        var port: Int?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw ParseError(reason: "an IPv6 host must be closed with ']'")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let afterHost = hostPort[hostPort.index(after: close)...]
            if afterHost.hasPrefix(":") { port = try Self.parsePort(afterHost.dropFirst()) }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = String(hostPort[..<colon])
            port = try Self.parsePort(hostPort[hostPort.index(after: colon)...])
        } else {
            host = String(hostPort)
        }

        var query: [String: String] = [:]
        for pair in queryText.split(separator: "&") where !pair.isEmpty {
            let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard keyValue.count == 2, let key = percentDecode(keyValue[0]), let value = percentDecode(keyValue[1]) else {
                throw ParseError(reason: "the query must be key=value pairs joined by '&'")
            }
            query[key] = value
        }

        let knownParameters: Set<String> = ["sslmode", "sslrootcert", "host", "port", "user", "password", "dbname", "application_name", "connect_timeout"]
        if let unknown = query.keys.sorted().first(where: { !knownParameters.contains($0) }) {
            throw ParseError(reason: "unknown parameter '\(unknown)' (known: sslmode, sslrootcert, host, port, user, password, dbname)")
        }
        if let queryPort = query["port"] { port = try Self.parsePort(Substring(queryPort)) }
        if let queryUser = query["user"] { user = queryUser }
        if let queryPassword = query["password"] { password = Secret(queryPassword) }
        if let queryHost = query["host"] { host = queryHost }

        guard let database = percentDecode(query["dbname"].map { Substring($0) } ?? databaseText) else {
            throw ParseError(reason: "the database name has a malformed %-escape")
        }
        guard !user.isEmpty else { throw ParseError(reason: "a user name is required, as in postgres://user:password@host/db") }
        guard !database.isEmpty else { throw ParseError(reason: "a database name is required, as in postgres://user@host/db") }

        let sslMode: SSLMode
        if let modeText = query["sslmode"] {
            guard let mode = SSLMode(rawValue: modeText) else {
                throw ParseError(reason: "sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            sslMode = mode
        } else {
            sslMode = .prefer
        }

        let resolvedPort = port ?? 5432
        if host.hasPrefix("/") {
            self.endpoint = .unixSocket(directory: host, port: resolvedPort)
        } else {
            guard !host.isEmpty else { throw ParseError(reason: "a host is required, as in postgres://user@db.example.com/db") }
            self.endpoint = .tcp(host: host, port: resolvedPort)
        }
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.sslRootCertificatePath = query["sslrootcert"]
    }

    private static func parsePort(_ text: Substring) throws(ParseError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw ParseError(reason: "the port must be a number from 1 to 65535")
        }
        return port
    }
}

/// Decodes `%XX` escapes; nil when an escape is malformed or the bytes are not UTF-8.
func percentDecode(_ text: Substring) -> String? {
    guard text.contains("%") else { return String(text) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
        bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
