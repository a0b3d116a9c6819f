import Foundation
import SigV4
import Testing

@Suite("credentials and errors never leak secrets")
struct CredentialsTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
    static let credentials = AWSCredentials(
        accessKeyID: "ASIAEXAMPLE", secretAccessKey: secret, sessionToken: token,
        expiration: Date(timeIntervalSince1970: 1_709_251_199))

    static func renderings(_ value: some Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return ["\(value)", String(describing: value), String(reflecting: value), dumped]
    }

    @Test("description, debugDescription, interpolation and dump show the key id only")
    func credentialsAreRedacted() {
        let renderings = Self.renderings(Self.credentials)
        for text in renderings {
            #expect(text.contains("ASIAEXAMPLE"))
            #expect(!text.contains(Self.secret), "\(text)")
            #expect(!text.contains(Self.token), "\(text)")
            #expect(!text.contains("wJalr"), "\(text)")
        }
        #expect(Self.credentials.description.contains("2024-02-29T23:59:59Z"))
        // Also inside a collection, where Swift prints elements with debugDescription.
        #expect(!"\([Self.credentials])".contains(Self.secret))
        #expect(!"\(Optional(Self.credentials) as Any)".contains(Self.secret))
    }

    @Test("defaults for the optional parts")
    func defaults() {
        let long = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s")
        #expect(long.sessionToken == nil && long.expiration == nil)
        #expect(!long.description.contains("sessionToken"))
    }

    @Test("signing keys are not printable")
    func signingKeyIsRedacted() {
        let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1")
        let key = signer.signingKey(date: Date(timeIntervalSince1970: 0))
        let hex = key.bytes.map { String(format: "%02x", $0) }.joined()
        for text in Self.renderings(key) {
            #expect(!text.contains(hex.prefix(16)), "\(text)")
        }
    }

    @Test("expiry bounds of presigned URLs", arguments: [Int.min, -1, 0, 604_801, 1_000_000, Int.max])
    func expiryOutOfRange(_ expires: Int) {
        let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1")
        let request = SigV4Request(method: "GET", host: "bucket.s3.amazonaws.com", path: "/key")
        #expect {
            _ = try signer.presign(request, expires: expires, date: Date(timeIntervalSince1970: 0))
        } throws: { error in
            guard let error = error as? SigV4Error else { return false }
            let text = "\(error)"
            return error.code == .expiresOutOfRange && text.contains(String(expires)) && text.contains("604800")
                && !text.contains(Self.secret) && !text.contains(Self.token) && !text.contains("\n")
        }
    }

    @Test("expiry bounds are inclusive", arguments: [1, 3600, 604_800])
    func expiryInRange(_ expires: Int) throws {
        let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1")
        let request = SigV4Request(method: "GET", host: "bucket.s3.amazonaws.com", path: "/key")
        let presigned = try signer.presign(request, expires: expires, date: Date(timeIntervalSince1970: 0))
        #expect(presigned.queryValue("X-Amz-Expires") == String(expires))
    }
}
