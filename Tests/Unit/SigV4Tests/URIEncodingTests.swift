import Foundation
import SigV4
import Testing

@Suite("URI encoding of S3 keys")
struct URIEncodingTests {
    @Test(
        "object keys become wire paths",
        arguments: [
            ("a b.txt", "a%20b.txt"),
            ("dir/sub dir/file.txt", "dir/sub%20dir/file.txt"),
            ("C++ notes+more.md", "C%2B%2B%20notes%2Bmore.md"),
            ("key=value&x=1", "key%3Dvalue%26x%3D1"),
            ("Ünïcödé ☃/日本語.jpg", "%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20%E2%98%83/%E6%97%A5%E6%9C%AC%E8%AA%9E.jpg"),
            ("emoji 😀.png", "emoji%20%F0%9F%98%80.png"),
            ("100% done?#[x]", "100%25%20done%3F%23%5Bx%5D"),
            ("a//b/../c/./d", "a//b/../c/./d"),
            ("-_.~AZaz09", "-_.~AZaz09"),
            ("", ""),
        ])
    func keys(_ key: String, _ expected: String) {
        #expect(SigV4URIEncoding.encode(key, encodeSlash: false) == expected)
        #expect(SigV4URIEncoding.decode(expected) == key)
    }

    @Test("query values encode '/' too")
    func encodeSlash() {
        #expect(SigV4URIEncoding.encode("a/b c+d=e", encodeSlash: true) == "a%2Fb%20c%2Bd%3De")
        #expect(SigV4URIEncoding.encode("a/b", encodeSlash: false) == "a/b")
    }

    /// Every ASCII byte: only RFC 3986's unreserved set stays literal, the rest becomes upper-case %XX.
    @Test("the unreserved set and upper-case escapes, byte by byte")
    func everyASCIIByte() {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".unicodeScalars)
        for value in UInt8(0)...UInt8(127) {
            let scalar = Unicode.Scalar(value)
            let expected = unreserved.contains(scalar) ? String(scalar) : String(format: "%%%02X", value)
            #expect(SigV4URIEncoding.encode(String(scalar), encodeSlash: true) == expected, "byte \(value)")
        }
    }

    @Test("s3Path joins an optional bucket prefix")
    func s3Path() {
        #expect(SigV4URIEncoding.s3Path(forKey: "a b/c+d") == "/a%20b/c%2Bd")
        #expect(SigV4URIEncoding.s3Path(forKey: "a b", prefix: "/my-bucket") == "/my-bucket/a%20b")
    }

    @Test("decoding keeps '+' and rejects malformed input")
    func decoding() {
        #expect(SigV4URIEncoding.decode("a+b%2Bc%20d") == "a+b+c d")
        #expect(SigV4URIEncoding.decode("%e2%98%83") == "☃")
        #expect(SigV4URIEncoding.decode("%G1") == nil)
        #expect(SigV4URIEncoding.decode("abc%2") == nil)
        #expect(SigV4URIEncoding.decode("%E2%98") == nil)  // truncated UTF-8
        #expect(SigV4URIEncoding.decode("%FF") == nil)
    }

    @Test(".s3 signs the wire path untouched; .standard normalises and encodes it again")
    func uriModes() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret")
        let request = SigV4Request(method: "GET", host: "h", path: "/bucket/a//b/../c%20d")
        let s3 = SigV4Signer(credentials: credentials, region: "us-east-1", service: "s3", options: .s3)
        let standard = SigV4Signer(credentials: credentials, region: "us-east-1", service: "svc", options: .standard)
        var unnormalized = SigV4Signer.Options.standard
        unnormalized.normalizeURIPath = false
        let raw = SigV4Signer(credentials: credentials, region: "us-east-1", service: "svc", options: unnormalized)

        func uri(_ signer: SigV4Signer) -> Substring {
            signer.canonicalRequest(for: request, payload: .emptySHA256).text.split(separator: "\n")[1]
        }
        #expect(uri(s3) == "/bucket/a//b/../c%20d")
        #expect(uri(standard) == "/bucket/a/c%2520d")
        #expect(uri(raw) == "/bucket/a//b/../c%2520d")
    }

    @Test("an empty path is signed and sent as '/'")
    func emptyPath() {
        let request = SigV4Request(method: "GET", host: "h", path: "")
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "A", secretAccessKey: "S"), region: "r")
        #expect(signer.canonicalRequest(for: request, payload: .unsigned).text.split(separator: "\n")[1] == "/")
        #expect(request.urlString(scheme: "http") == "http://h/")
    }
}
