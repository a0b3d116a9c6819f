import Foundation
import SigV4
import Testing

@Suite("signer behaviour")
struct SignerBehaviourTests {
    static let signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "token"),
        region: "eu-central-1",
        service: "s3"
    )
    static let date = Date(timeIntervalSince1970: 1_700_000_000.75)  // 2023-11-14T22:13:20.75Z
    static let request = SigV4Request(
        method: "PUT", host: "bucket.s3.eu-central-1.amazonaws.com", path: "/a%20b",
        query: [("partNumber", "1"), ("uploadId", "x/y")],
        headers: [("Content-Type", "text/plain")])

    @Test("signing twice replaces the previous signature instead of adding a second one")
    func resigningIsIdempotent() {
        let once = Self.signer.sign(Self.request, payload: .unsigned, date: Self.date)
        let later = Self.signer.sign(once, payload: .unsigned, date: Self.date.addingTimeInterval(60))
        let twice = Self.signer.sign(later, payload: .unsigned, date: Self.date)
        #expect(twice == once)
        for name in ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
            #expect(twice.headerValues(name).count == 1, "\(name)")
        }
        #expect(later.headerValue("X-Amz-Date") == "20231114T221420Z")
    }

    @Test("presigning twice replaces the previous presignature")
    func presigningIsIdempotent() throws {
        let once = try Self.signer.presign(Self.request, expires: 60, date: Self.date)
        let later = try Self.signer.presign(once, expires: 120, date: Self.date.addingTimeInterval(60))
        let twice = try Self.signer.presign(later, expires: 60, date: Self.date)
        #expect(twice == once)
        #expect(later.query.filter { $0.name.hasPrefix("X-Amz-") }.count == 7)
    }

    @Test("the signature covers the body hash, headers, query and time")
    func signatureDependsOnInputs() {
        func signature(_ request: SigV4Request, _ payload: PayloadHash = .unsigned, _ date: Date = Self.date) -> String? {
            Self.signer.sign(request, payload: payload, date: date).headerValue("Authorization")
        }
        let base = signature(Self.request)
        var otherQuery = Self.request
        otherQuery.query[0].value = "2"
        var otherHeader = Self.request
        otherHeader.headers[0].value = "text/html"
        var otherPath = Self.request
        otherPath.path = "/a%20c"
        #expect(base != signature(otherQuery))
        #expect(base != signature(otherHeader))
        #expect(base != signature(otherPath))
        #expect(base != signature(Self.request, .emptySHA256))
        #expect(base != signature(Self.request, .unsigned, Self.date.addingTimeInterval(1)))
        // Fractions of a second do not matter: SigV4 has one-second resolution.
        #expect(base == signature(Self.request, .unsigned, Self.date.addingTimeInterval(0.2)))
    }

    @Test("canonical headers: case-insensitive names, trimmed values, repeated names joined in order")
    func canonicalHeaders() {
        let request = SigV4Request(
            method: "GET", host: "h.example", path: "/",
            headers: [
                ("X-Amz-Meta-B", "  two   words\t here  "), ("x-amz-meta-a", "1"), ("X-AMZ-META-A", " 2 "),
                ("User-Agent", "changes-in-transit/1.0"), ("Host", "ignored.example"),
            ])
        let canonical = Self.signer.canonicalRequest(for: request, payload: .unsigned)
        #expect(canonical.signedHeaders == "host;x-amz-meta-a;x-amz-meta-b")
        #expect(canonical.text.contains("\nhost:h.example\nx-amz-meta-a:1,2\nx-amz-meta-b:two words here\n\n"))
        // Unsigned headers stay in the request; the signer only leaves them out of the signature.
        let signed = Self.signer.sign(request, payload: .unsigned, date: Self.date)
        #expect(signed.headerValue("user-agent") == "changes-in-transit/1.0")
        #expect(signed.headerValue("Authorization")?.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-amz-meta-b;x-amz-security-token,") == true)
    }

    @Test("x-amz-content-sha256 is optional and the token can be left unsigned")
    func options() {
        var options = SigV4Signer.Options.s3
        options.addContentSHA256Header = false
        options.omitSessionTokenFromSignature = true
        var signer = Self.signer
        signer.options = options
        let signed = signer.sign(SigV4Request(method: "GET", host: "h", path: "/"), payload: .emptySHA256, date: Self.date)
        #expect(signed.headerValue("x-amz-content-sha256") == nil)
        #expect(signed.headerValue("X-Amz-Security-Token") == "token")
        #expect(signed.headerValue("Authorization")?.contains("SignedHeaders=host;x-amz-date,") == true)
    }

    @Test("payload hashes")
    func payloadHashes() {
        #expect(PayloadHash.sha256(of: [UInt8]()) == .emptySHA256)
        #expect(PayloadHash.sha256(of: "".utf8) == .emptySHA256)
        // A non-contiguous sequence longer than the internal buffer hashes the same as an array.
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(PayloadHash.sha256(of: bytes.lazy.map { $0 }) == PayloadHash.sha256(of: bytes))
        #expect(PayloadHash.sha256(of: Data(bytes)) == PayloadHash.sha256(of: bytes))
        #expect(PayloadHash.sha256Hex("ABCDEF").headerValue == "abcdef")
        #expect(PayloadHash.unsigned.headerValue == "UNSIGNED-PAYLOAD")
    }

    /// The arithmetic date formatting against Foundation's formatter, across centuries, leap days and 1970.
    @Test("X-Amz-Date matches a UTC DateFormatter")
    func timestamps() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "A", secretAccessKey: "S"), region: "r")
        var seconds: Int64 = -2_208_988_800  // 1900-01-01
        while seconds < 7_258_118_400 {  // 2200-01-01
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let expected = formatter.string(from: date)
            let stringToSign = signer.stringToSign(canonicalRequest: "", date: date)
            #expect(stringToSign.split(separator: "\n")[1] == expected)
            #expect(signer.credentialScope(date: date).hasPrefix(expected.prefix(8) + "/r/s3/"))
            seconds += 7_919 * 3_600 + 1_234  // an irregular step that visits every month, hour and minute
        }
        let leap = Date(timeIntervalSince1970: 951_868_800)  // 2000-03-01T00:00:00Z, right after Feb 29
        #expect(signer.stringToSign(canonicalRequest: "", date: leap.addingTimeInterval(-0.5)).contains("\n20000229T235959Z\n"))
        #expect(signer.stringToSign(canonicalRequest: "", date: Date(timeIntervalSince1970: -1)).contains("\n19691231T235959Z\n"))
    }

    @Test("urlString renders the path and each query parameter encoded")
    func urlRendering() {
        #expect(
            Self.request.urlString(scheme: "http")
                == "http://bucket.s3.eu-central-1.amazonaws.com/a%20b?partNumber=1&uploadId=x%2Fy")
        #expect(Self.request.canonicalQueryString == "partNumber=1&uploadId=x%2Fy")
        let unsorted = SigV4Request(method: "GET", host: "h", path: "/", query: [("b", "2"), ("a", "2"), ("a", "1"), ("uploads", "")])
        #expect(unsorted.canonicalQueryString == "a=1&a=2&b=2&uploads=")
        #expect(unsorted.pathAndQuery == "/?b=2&a=2&a=1&uploads=")
    }
}
