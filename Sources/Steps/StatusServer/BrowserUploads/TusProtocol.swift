import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The tus 1.0.0 headers, the parsing of what a client sends, and the server's answers: every refusal is one line of
/// text that says what was wrong (tus clients show the body), with `Tus-Resumable`.
enum Tus {
    static let version = "1.0.0"
    static let extensions = "creation,termination,expiration"
    static let contentType = "application/offset+octet-stream"

    static let resumable = HTTPField.Name("Tus-Resumable")!
    static let versionHeader = HTTPField.Name("Tus-Version")!
    static let extensionHeader = HTTPField.Name("Tus-Extension")!
    static let maxSize = HTTPField.Name("Tus-Max-Size")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let deferLength = HTTPField.Name("Upload-Defer-Length")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!

    /// An HTTP date (RFC 9110's IMF-fixdate), as `Upload-Expires` carries it.
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
    static let methodOverride = HTTPField.Name("X-HTTP-Method-Override")!
    /// The session's CSRF token, which the page script sends with every request that changes something.
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    /// 423 Locked (WebDAV) and 507 Insufficient Storage, which HTTPTypes does not name.
    static let locked = HTTPResponse.Status(code: 423, reasonPhrase: "Locked")
    static let insufficientStorage = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")

    /// A tus answer: `Tus-Resumable` always, no caching.
    static func response(_ status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var response = Response(status: status, headers: headers)
        response.headers[resumable] = version
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// A refusal: one line of text.
    static func refusal(_ status: HTTPResponse.Status, _ line: String) -> Response {
        var response = Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: line + "\n")))
        response.headers[resumable] = version
        response.headers[.cacheControl] = "no-store"
        if status == .preconditionFailed { response.headers[versionHeader] = version }
        return response
    }

    /// The 412 every request but OPTIONS gets without `Tus-Resumable: 1.0.0` (the request is not processed).
    static func versionRefusal(_ request: Request) -> Response? {
        guard let sent = request.headers[resumable] else {
            return refusal(.preconditionFailed, "missing Tus-Resumable header: this server speaks tus \(version)")
        }
        guard sent == version else {
            return refusal(.preconditionFailed, "tus version \(sent.prefix(20)) is not supported: this server speaks tus \(version)")
        }
        return nil
    }

    /// A non-negative decimal header value; nil when absent, `.failure` when malformed.
    static func integer(_ request: Request, _ name: HTTPField.Name) -> Result<Int64?, TusInputError> {
        guard let text = request.headers[name] else { return .success(nil) }
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int64(text) else {
            return .failure(TusInputError("\(name.canonicalName) must be a non-negative integer"))
        }
        return .success(value)
    }

    /// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent), keys unique.
    static func metadata(_ header: String?) -> Result<[String: String], TusInputError> {
        guard let header, !header.trimmingCharacters(in: .whitespaces).isEmpty else { return .success([:]) }
        guard header.utf8.count <= 16_384 else { return .failure(TusInputError("Upload-Metadata is longer than 16384 bytes")) }
        var pairs: [String: String] = [:]
        for item in header.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let key = parts.first, !key.isEmpty else {
                return .failure(TusInputError("Upload-Metadata must be comma-separated 'key base64value' pairs"))
            }
            guard pairs[String(key)] == nil else { return .failure(TusInputError("Upload-Metadata names '\(key.prefix(40))' twice")) }
            var value = ""
            if parts.count == 2 {
                guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8) else {
                    return .failure(TusInputError("Upload-Metadata value of '\(key.prefix(40))' is not base64 of UTF-8 text"))
                }
                value = text
            }
            pairs[String(key)] = value
        }
        return .success(pairs)
    }

    /// A source's name from the browser: 1-200 characters, no control characters.
    static func checkLabel(_ label: String?) -> Result<String, TusInputError> {
        guard let label = label?.trimmingCharacters(in: .whitespaces), !label.isEmpty else {
            return .failure(TusInputError("name the source: Upload-Metadata needs 'source'"))
        }
        guard label.count <= 200 else { return .failure(TusInputError("the source name is longer than 200 characters")) }
        guard !label.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return .failure(TusInputError("the source name contains a control character"))
        }
        return .success(label)
    }

    /// A path inside the source, `/`-separated and relative: no empty, `.` or `..` component, no NUL or other control
    /// character, components of at most 255 bytes, at most 4096 bytes in all. Refused, never rewritten, so the
    /// catalog never holds a name the member did not choose.
    static func checkPath(_ path: String?) -> Result<String, TusInputError> {
        guard let path, !path.isEmpty else {
            return .failure(TusInputError("name the file: Upload-Metadata needs 'path' (or 'filename')"))
        }
        let shown = String(path.prefix(60)).unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : String($0) }.joined()
        guard path.utf8.count <= 4096 else { return .failure(TusInputError("the path is longer than 4096 bytes")) }
        guard !path.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return .failure(TusInputError("the path '\(shown)' contains NUL or another control character"))
        }
        guard !path.hasPrefix("/") else { return .failure(TusInputError("the path '\(shown)' must be relative (no leading /)")) }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return .failure(TusInputError("the path '\(shown)' has an empty component (// or a trailing /)")) }
            if component == "." || component == ".." { return .failure(TusInputError("the path '\(shown)' has a '\(component)' component")) }
            if component.utf8.count > 255 { return .failure(TusInputError("a name in the path '\(shown)…' is longer than 255 bytes")) }
        }
        return .success(path)
    }
}

/// A request the tus routes cannot take: its one-line reason.
struct TusInputError: Error, Sendable {
    let line: String
    init(_ line: String) { self.line = line }
}
