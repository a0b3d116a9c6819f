import Foundation
import SigV4
import Testing

/// AWS's SigV4 test suite (aws-c-auth's 38 cases): every intermediate step of header and query signing.
@Suite("AWS SigV4 test suite")
struct TestSuiteTests {
    @Test("the fixture folder holds exactly the 38 listed cases")
    func fixturesAreComplete() throws {
        let folder = try Fixtures.directory("aws-sig-v4-test-suite")
        let found = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }
        #expect(Set(found) == Set(SuiteCase.names))
        #expect(SuiteCase.names.count == 38)
    }

    @Test("header signing", arguments: SuiteCase.names)
    func headerSigning(_ name: String) throws {
        let vector = try SuiteCase(name)
        let signer = vector.signer
        let expectedCanonical = try vector.expected("header-canonical-request.txt")
        let expectedStringToSign = try vector.expected("header-string-to-sign.txt")
        let expectedSignature = try vector.expected("header-signature.txt")

        let signed = signer.signWithDetails(vector.request, payload: vector.payload, date: vector.date)
        #expect(signed.canonicalRequest == expectedCanonical)
        #expect(signed.stringToSign == expectedStringToSign)
        #expect(signed.signature == expectedSignature)

        // Each later step on its own, fed the published previous step, so one failure points at one step.
        #expect(signer.stringToSign(canonicalRequest: expectedCanonical, date: vector.date) == expectedStringToSign)
        #expect(signer.signature(stringToSign: expectedStringToSign, date: vector.date) == expectedSignature)

        // The signed request: same Authorization, and the same headers (added ones included) as published.
        let published = try HTTPMessage(parsing: vector.expected("header-signed-request.txt")).sigV4Request
        #expect(signed.request.headerValue("Authorization") == published.headerValue("Authorization"))
        #expect(normalizedHeaders(signed.request.headers) == normalizedHeaders(published.headers))
        #expect(signed.request.method == published.method)
        #expect(signed.request.host == published.host)
        #expect(signed.request.path == published.path)
        #expect(normalizedQuery(signed.request.query) == normalizedQuery(published.query))
    }

    @Test("query signing", arguments: SuiteCase.names)
    func querySigning(_ name: String) throws {
        let vector = try SuiteCase(name)
        let signer = vector.signer
        let expectedCanonical = try vector.expected("query-canonical-request.txt")
        let expectedStringToSign = try vector.expected("query-string-to-sign.txt")
        let expectedSignature = try vector.expected("query-signature.txt")

        let signed = try signer.presignWithDetails(
            vector.request, expires: vector.context.expirationInSeconds, payload: vector.payload, date: vector.date)
        #expect(signed.canonicalRequest == expectedCanonical)
        #expect(signed.stringToSign == expectedStringToSign)
        #expect(signed.signature == expectedSignature)

        #expect(signer.stringToSign(canonicalRequest: expectedCanonical, date: vector.date) == expectedStringToSign)
        #expect(signer.signature(stringToSign: expectedStringToSign, date: vector.date) == expectedSignature)

        // The presigned request carries the same parameters (order aside) and leaves the headers alone.
        let published = try HTTPMessage(parsing: vector.expected("query-signed-request.txt")).sigV4Request
        #expect(normalizedQuery(signed.request.query) == normalizedQuery(published.query))
        #expect(signed.request.queryValue("X-Amz-Signature") == expectedSignature)
        #expect(normalizedHeaders(signed.request.headers) == normalizedHeaders(published.headers))
        #expect(signed.request.path == published.path)
    }
}
