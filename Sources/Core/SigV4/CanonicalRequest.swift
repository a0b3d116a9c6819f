/// Task 1 of SigV4: the canonical request, the exact text whose hash gets signed.
public struct SigV4CanonicalRequest: Sendable, Hashable {
    /// `method \n uri \n query \n headers \n \n signedHeaders \n payloadHash`.
    public let text: String
    /// The lower-case, `;`-joined names of the signed headers, as in `SignedHeaders=`.
    public let signedHeaders: String

    /// Lower-case hex SHA-256 of `text`, the last line of the string to sign.
    public var hash: String { SHA256Digests.hex(text) }
}

/// How the canonical URI is derived from `SigV4Request.path`.
public enum SigV4URIMode: Sendable, Hashable {
    /// The wire path as it is: no normalisation, no second encoding. S3 requires this, since
    /// `a//b/../c` and `%2F` are meaningful parts of object keys.
    case s3
    /// Every other AWS service and the generic test suite: optionally normalise `.`/`..`/`//`
    /// segments, then URI-encode the path once more (a `%20` on the wire becomes `%2520`).
    case standard
}

enum Canonical {
    /// Headers never signed: hop-by-hop headers and others that proxies and HTTP stacks add or rewrite
    /// after signing (botocore's list), plus `authorization`, which carries the signature itself.
    static let unsignableHeaders: Set<String> = [
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]

    static func uri(_ path: String, mode: SigV4URIMode, normalize: Bool) -> String {
        switch mode {
        case .s3:
            return path.isEmpty ? "/" : path
        case .standard:
            let normalized = normalize ? SigV4URIEncoding.normalizePath(path) : (path.isEmpty ? "/" : path)
            return SigV4URIEncoding.encode(normalized, encodeSlash: false)
        }
    }

    /// `(canonical header block, signed header names)`: names lower-cased and sorted, values trimmed
    /// with inner runs of blanks collapsed to one space, repeated names joined with `,` in order.
    static func headers(host: String, headers: [(name: String, value: String)]) -> (block: String, signed: String) {
        var values: [String: [String]] = ["host": [trimAll(host)]]
        for header in headers {
            let name = header.name.lowercased()
            // `host` comes from SigV4Request.host only, so it cannot be signed twice with two values.
            guard name != "host", !unsignableHeaders.contains(name) else { continue }
            values[name, default: []].append(trimAll(header.value))
        }
        let names = values.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var block = ""
        for name in names {
            block += name + ":" + (values[name] ?? []).joined(separator: ",") + "\n"
        }
        return (block, names.joined(separator: ";"))
    }

    /// Trim leading/trailing blanks and collapse inner runs of spaces and tabs to a single space.
    static func trimAll(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        var pendingSpace = false
        for byte in value.utf8 {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func request(
        _ request: SigV4Request, payload: PayloadHash, mode: SigV4URIMode, normalize: Bool
    ) -> SigV4CanonicalRequest {
        let (headerBlock, signed) = headers(host: request.host, headers: request.headers)
        let text = [
            request.method,
            uri(request.path, mode: mode, normalize: normalize),
            request.canonicalQueryString,
            headerBlock,
            signed,
            payload.headerValue,
        ].joined(separator: "\n")
        return SigV4CanonicalRequest(text: text, signedHeaders: signed)
    }
}
