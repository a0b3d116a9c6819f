/// The parts of an HTTP request that SigV4 signs, and what signing returns.
public struct SigV4Request: Sendable, Equatable {
    public var method: String
    /// Exactly the `Host` header value: `bucket.s3.eu-west-1.amazonaws.com`, or `localhost:9000`
    /// when the port is not the scheme's default. Always signed as the `host` header; do not also
    /// put a `Host` entry in `headers` (one there is left out of the signature: this value wins).
    public var host: String
    /// The path exactly as sent on the wire, already percent-encoded (see `SigV4URIEncoding`).
    public var path: String
    /// Query parameters with decoded names and values, in sending order; `?uploads` is `("uploads", "")`.
    public var query: [(name: String, value: String)]
    /// Header names in any case; repeated names are allowed and kept in order.
    public var headers: [(name: String, value: String)]

    public init(
        method: String,
        host: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = []
    ) {
        self.method = method
        self.host = host
        self.path = path
        self.query = query
        self.headers = headers
    }

    public static func == (lhs: SigV4Request, rhs: SigV4Request) -> Bool {
        lhs.method == rhs.method && lhs.host == rhs.host && lhs.path == rhs.path
            && lhs.query.elementsEqual(rhs.query, by: { $0.name == $1.name && $0.value == $1.value })
            && lhs.headers.elementsEqual(rhs.headers, by: { $0.name == $1.name && $0.value == $1.value })
    }

    /// All values of a header, compared case-insensitively, in order.
    public func headerValues(_ name: String) -> [String] {
        let wanted = name.lowercased()
        return headers.filter { $0.name.lowercased() == wanted }.map(\.value)
    }

    /// The first value of a header (case-insensitive name), e.g. `Authorization` after `sign`.
    public func headerValue(_ name: String) -> String? {
        headerValues(name).first
    }

    /// The first value of a query parameter (exact, case-sensitive name), e.g. `X-Amz-Signature`.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// The query as SigV4 signs it: each name and value encoded with `SigV4URIEncoding`,
    /// sorted by name then value, `&`-joined; `""` without parameters.
    public var canonicalQueryString: String {
        query
            .map { (SigV4URIEncoding.encode($0.name, encodeSlash: true), SigV4URIEncoding.encode($0.value, encodeSlash: true)) }
            .sorted { lhs, rhs in
                lhs.0 == rhs.0 ? lhs.1.utf8.lexicographicallyPrecedes(rhs.1.utf8) : lhs.0.utf8.lexicographicallyPrecedes(rhs.0.utf8)
            }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// The request target to send: the wire path (`/` if empty) and the query, each parameter encoded
    /// exactly as in `canonicalQueryString` (so the server recomputes the same canonical form) but kept
    /// in `query` order, which puts a presigned URL's `X-Amz-Signature` last as AWS's examples do.
    public var pathAndQuery: String {
        let target = path.isEmpty ? "/" : path
        guard !query.isEmpty else { return target }
        let encoded = query.map {
            SigV4URIEncoding.encode($0.name, encodeSlash: true) + "=" + SigV4URIEncoding.encode($0.value, encodeSlash: true)
        }
        return target + "?" + encoded.joined(separator: "&")
    }

    /// `scheme://host/path?query`, e.g. the presigned URL to hand out.
    public func urlString(scheme: String = "https") -> String {
        "\(scheme)://\(host)\(pathAndQuery)"
    }
}
