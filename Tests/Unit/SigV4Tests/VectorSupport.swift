import Foundation
import SigV4

/// One case of AWS's SigV4 test suite (Vectors/aws-sig-v4-test-suite, see the NOTICE there).
struct SuiteCase {
    /// All 38 cases, listed rather than discovered so that a missing folder fails instead of shrinking the run.
    static let names = [
        "get-header-key-duplicate", "get-header-value-multiline", "get-header-value-order", "get-header-value-trim",
        "get-relative-normalized", "get-relative-relative-normalized", "get-relative-relative-unnormalized",
        "get-relative-unnormalized", "get-slash-dot-slash-normalized", "get-slash-dot-slash-unnormalized",
        "get-slash-normalized", "get-slash-pointless-dot-normalized", "get-slash-pointless-dot-unnormalized",
        "get-slash-unnormalized", "get-slashes-normalized", "get-slashes-unnormalized", "get-space-normalized",
        "get-space-unnormalized", "get-unreserved", "get-utf8", "get-vanilla", "get-vanilla-empty-query-key",
        "get-vanilla-query", "get-vanilla-query-order-encoded", "get-vanilla-query-order-key-case",
        "get-vanilla-query-unreserved", "get-vanilla-utf8-query", "get-vanilla-with-session-token",
        "post-header-key-case", "post-header-key-sort", "post-header-value-case", "post-sts-header-after",
        "post-sts-header-before", "post-vanilla", "post-vanilla-empty-query-value", "post-vanilla-query",
        "post-x-www-form-urlencoded", "post-x-www-form-urlencoded-parameters",
    ]

    /// `context.json`: what aws-c-auth's harness configures the signer with.
    struct Context: Decodable {
        struct Credentials: Decodable {
            let accessKeyId: String
            let secretAccessKey: String
            let token: String?
        }

        let credentials: Credentials
        let expirationInSeconds: Int
        let normalize: Bool
        let region: String
        let service: String
        let signBody: Bool
        let timestamp: String
        let omitSessionToken: Bool?
    }

    let name: String
    let directory: URL
    let context: Context
    let message: HTTPMessage
    let date: Date

    init(_ name: String) throws {
        self.name = name
        directory = try Fixtures.directory("aws-sig-v4-test-suite").appendingPathComponent(name, isDirectory: true)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        context = try decoder.decode(Context.self, from: Data(contentsOf: directory.appendingPathComponent("context.json")))
        message = try HTTPMessage(parsing: Self.text(directory, "request.txt"))
        guard let date = ISO8601DateFormatter().date(from: context.timestamp) else {
            throw FixtureError("\(name): unreadable timestamp \(context.timestamp)")
        }
        self.date = date
    }

    func expected(_ file: String) throws -> String { try Self.text(directory, file) }

    var signer: SigV4Signer {
        SigV4Signer(
            credentials: AWSCredentials(
                accessKeyID: context.credentials.accessKeyId,
                secretAccessKey: context.credentials.secretAccessKey,
                sessionToken: context.credentials.token
            ),
            region: context.region,
            service: context.service,
            options: .init(
                uriEncoding: .standard,
                normalizeURIPath: context.normalize,
                addContentSHA256Header: context.signBody,
                omitSessionTokenFromSignature: context.omitSessionToken ?? false
            )
        )
    }

    /// The request as the suite's harness hands it to the signer: the path as written in request.txt
    /// (which `.standard` encodes once), the query decoded, the Host header as `host`.
    var request: SigV4Request { message.sigV4Request }

    /// The body's hash whether or not the body is signed (`sign_body` only controls x-amz-content-sha256).
    var payload: PayloadHash { .sha256(of: message.body.utf8) }

    private static func text(_ directory: URL, _ file: String) throws -> String {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        guard let text = String(data: data, encoding: .utf8) else { throw FixtureError("\(file) is not UTF-8") }
        return text
    }
}

/// A request in the suite's `.txt` form: request line, headers (with obs-fold continuation lines), blank line, body.
struct HTTPMessage {
    var method: String
    var path: String
    var query: [(name: String, value: String)]
    var headers: [(name: String, value: String)]
    var body: String

    init(parsing text: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
        guard let requestLine = lines.popFirst(),
            let firstSpace = requestLine.firstIndex(of: " "),
            let lastSpace = requestLine.lastIndex(of: " "), firstSpace < lastSpace
        else { throw FixtureError("bad request line in \(text.prefix(40))") }
        method = String(requestLine[..<firstSpace])
        // The target may itself contain spaces (get-space-*), so it runs to the last space.
        let target = requestLine[requestLine.index(after: firstSpace)..<lastSpace]
        let pathEnd = target.firstIndex(of: "?") ?? target.endIndex
        path = String(target[..<pathEnd])
        query = []
        if pathEnd < target.endIndex {
            for pair in target[target.index(after: pathEnd)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = SigV4URIEncoding.decode(String(parts[0])),
                    let value = SigV4URIEncoding.decode(parts.count > 1 ? String(parts[1]) : "")
                else { throw FixtureError("bad query parameter \(pair)") }
                query.append((name, value))
            }
        }

        headers = []
        while let line = lines.popFirst(), !line.isEmpty {
            if line.first == " " || line.first == "\t", let last = headers.popLast() {
                headers.append((last.name, last.value + " " + Self.trimmed(line)))  // obs-fold
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw FixtureError("bad header line \(line)") }
            headers.append((String(line[..<colon]), Self.trimmed(line[line.index(after: colon)...])))
        }
        body = lines.joined(separator: "\n")
    }

    var sigV4Request: SigV4Request {
        SigV4Request(
            method: method,
            host: headers.first { $0.name.lowercased() == "host" }?.value ?? "",
            path: path,
            query: query,
            headers: headers.filter { $0.name.lowercased() != "host" }
        )
    }

    private static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

enum Fixtures {
    static func directory(_ name: String) throws -> URL {
        guard let vectors = Bundle.module.url(forResource: "Vectors", withExtension: nil) else {
            throw FixtureError("Vectors missing from the test bundle")
        }
        return vectors.appendingPathComponent(name, isDirectory: true)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Headers as comparable values: lower-cased names, order kept among equal names (it is significant).
func normalizedHeaders(_ headers: [(name: String, value: String)]) -> [String] {
    headers.enumerated()
        .map { (name: $0.element.name.lowercased(), value: $0.element.value, index: $0.offset) }
        .sorted { ($0.name, $0.index) < ($1.name, $1.index) }
        .map { "\($0.name): \($0.value)" }
}

/// Query parameters as a sorted multiset of decoded `name=value` strings.
func normalizedQuery(_ query: [(name: String, value: String)]) -> [String] {
    query.map { "\($0.name)=\($0.value)" }.sorted()
}
