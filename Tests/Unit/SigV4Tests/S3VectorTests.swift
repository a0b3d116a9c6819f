import Foundation
import SigV4
import Testing

/// S3's own worked examples, from the S3 API Reference pages "Signature Calculations for the Authorization
/// Header: Transferring Payload in a Single Chunk" (examples GET Object, PUT Object, GET Bucket Lifecycle,
/// Get Bucket (List Objects)) and "Authenticating Requests: Using Query Parameters" (presigned URL example).
/// Inputs and expected values are as published there; botocore reproduces every one of them.
@Suite("S3 documentation examples")
struct S3DocumentationExampleTests {
    static let signer = SigV4Signer(
        credentials: AWSCredentials(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1",
        service: "s3",
        options: .s3
    )
    static let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    static let host = "examplebucket.s3.amazonaws.com"

    /// The documentation writes the Authorization header without spaces after the commas; both forms are valid.
    static func compact(_ authorization: String?) -> String? {
        authorization?.replacingOccurrences(of: ", ", with: ",")
    }

    @Test("GET Object with a Range header")
    func getObject() {
        let request = SigV4Request(method: "GET", host: Self.host, path: "/test.txt", headers: [("Range", "bytes=0-9")])
        let signed = Self.signer.signWithDetails(request, payload: .emptySHA256, date: Self.date)
        #expect(
            signed.canonicalRequest == """
                GET
                /test.txt

                host:examplebucket.s3.amazonaws.com
                range:bytes=0-9
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;range;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """)
        #expect(
            signed.stringToSign == """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
                """)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(
            Self.compact(signed.request.headerValue("Authorization"))
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(signed.request.headerValue("x-amz-date") == "20130524T000000Z")
        #expect(signed.request.headerValue("x-amz-content-sha256") == PayloadHash.emptySHA256.headerValue)
    }

    @Test("PUT Object: a key with '$', a body, Date and storage-class headers")
    func putObject() {
        let body = "Welcome to Amazon S3."
        let payload = PayloadHash.sha256(of: body.utf8)
        #expect(payload == .sha256Hex("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"))
        let path = SigV4URIEncoding.s3Path(forKey: "test$file.text")
        #expect(path == "/test%24file.text")

        let request = SigV4Request(
            method: "PUT", host: Self.host, path: path,
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")])
        let signed = Self.signer.signWithDetails(request, payload: payload, date: Self.date)
        #expect(
            signed.canonicalRequest == """
                PUT
                /test%24file.text

                date:Fri, 24 May 2013 00:00:00 GMT
                host:examplebucket.s3.amazonaws.com
                x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
                x-amz-date:20130524T000000Z
                x-amz-storage-class:REDUCED_REDUNDANCY

                date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class
                44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
                """)
        #expect(signed.stringToSign.hasSuffix("\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"))
        #expect(signed.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test("GET Bucket Lifecycle: a query parameter without a value")
    func getBucketLifecycle() {
        let request = SigV4Request(method: "GET", host: Self.host, path: "/", query: [("lifecycle", "")])
        let signed = Self.signer.signWithDetails(request, payload: .emptySHA256, date: Self.date)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "lifecycle=")
        #expect(signed.stringToSign.hasSuffix("\n9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"))
        #expect(signed.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        #expect(signed.request.pathAndQuery == "/?lifecycle=")
    }

    @Test("GET Bucket (List Objects): parameters sorted by name")
    func listObjects() {
        let request = SigV4Request(method: "GET", host: Self.host, path: "/", query: [("prefix", "J"), ("max-keys", "2")])
        let signed = Self.signer.signWithDetails(request, payload: .emptySHA256, date: Self.date)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "max-keys=2&prefix=J")
        #expect(signed.stringToSign.hasSuffix("\ndf57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"))
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test("presigned GET URL valid for 24 hours")
    func presignedURL() throws {
        let request = SigV4Request(method: "GET", host: Self.host, path: "/test.txt")
        let signed = try Self.signer.presignWithDetails(request, expires: 86_400, date: Self.date)
        #expect(
            signed.canonicalRequest == """
                GET
                /test.txt
                X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host
                host:examplebucket.s3.amazonaws.com

                host
                UNSIGNED-PAYLOAD
                """)
        #expect(signed.stringToSign.hasSuffix("\n3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"))
        #expect(signed.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(
            signed.request.urlString(scheme: "https")
                == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(signed.request.headers.isEmpty)
    }

    /// From the general SigV4 documentation ("Examples of how to derive a signing key"): kSigning for
    /// the example secret, 20120215, us-east-1, iam.
    @Test("signing key derivation example")
    func signingKey() {
        let signer = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1", service: "iam", options: .standard)
        let key = signer.signingKey(date: Date(timeIntervalSince1970: 1_329_264_000))  // 2012-02-15T00:00:00Z
        let hex = key.bytes.map { String(format: "%02x", $0) }.joined()
        #expect(hex == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d")
        #expect(!"\(key)".contains(hex.prefix(8)))
    }
}

/// S3 requests the documentation does not cover, cross-checked with botocore's `S3SigV4Auth` and
/// `S3SigV4QueryAuth`: expected values were produced by Vectors/botocore-crosscheck/generate.py
/// (botocore 1.43.11, time patched to 2024-02-29T23:59:59Z).
@Suite("botocore cross-checks")
struct BotocoreCrossCheckTests {
    static let signer = SigV4Signer(
        credentials: AWSCredentials(
            accessKeyID: "ASIAEXAMPLEKEY123456", secretAccessKey: "s3cr3t/Key+With=Symbols",
            sessionToken: "FwoGZXIvYXdzE+token/with=="),
        region: "eu-west-1",
        service: "s3"
    )
    static let date = Date(timeIntervalSince1970: 1_709_251_199)  // 2024-02-29T23:59:59Z, a leap day
    static let key = "photos/2008 summer/Ünïcödé+plus=eq ☃.jpg"
    static let path = "/backup-bucket/photos/2008%20summer/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%2Bplus%3Deq%20%E2%98%83.jpg"

    @Test("the key's wire path matches botocore's")
    func wirePath() {
        #expect(SigV4URIEncoding.s3Path(forKey: Self.key, prefix: "/backup-bucket") == Self.path)
    }

    @Test("PUT with a body, temporary credentials, a non-default port")
    func putUnicodeKey() {
        let request = SigV4Request(
            method: "PUT", host: "localhost:9000", path: Self.path,
            headers: [("Content-Type", "image/jpeg"), ("x-amz-storage-class", "DEEP_ARCHIVE")])
        let signed = Self.signer.signWithDetails(request, payload: .sha256(of: "hello".utf8), date: Self.date)
        #expect(
            signed.canonicalRequest == """
                PUT
                /backup-bucket/photos/2008%20summer/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%2Bplus%3Deq%20%E2%98%83.jpg

                content-type:image/jpeg
                host:localhost:9000
                x-amz-content-sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
                x-amz-date:20240229T235959Z
                x-amz-security-token:FwoGZXIvYXdzE+token/with==
                x-amz-storage-class:DEEP_ARCHIVE

                content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-storage-class
                2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
                """)
        #expect(signed.stringToSign.hasSuffix("\n25c1a967275b423c720af180104a01370062353f3aad251527e74bda0315f692"))
        #expect(
            signed.request.headerValue("Authorization")
                == "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY123456/20240229/eu-west-1/s3/aws4_request, "
                + "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-storage-class, "
                + "Signature=0f4f43847ebd1aecf848f8f4b130302a66b101a8bdc3ed3ed34427d39033fdff")
        #expect(signed.request.headerValue("X-Amz-Security-Token") == "FwoGZXIvYXdzE+token/with==")
    }

    @Test("UploadPart with an unsigned payload and an upload id containing '/', '+' and '='")
    func uploadPartUnsigned() {
        let request = SigV4Request(
            method: "PUT", host: "localhost:9000", path: Self.path,
            query: [("partNumber", "3"), ("uploadId", "2~abc/def+g==")])
        let signed = Self.signer.signWithDetails(request, payload: .unsigned, date: Self.date)
        #expect(signed.canonicalRequest.split(separator: "\n")[2] == "partNumber=3&uploadId=2~abc%2Fdef%2Bg%3D%3D")
        #expect(signed.stringToSign.hasSuffix("\nbc0247d7d3eef7772355121d9167f404a410b01938bf20d904a0a772e3ce2ae4"))
        #expect(signed.signature == "6ef4605876a817ae4c6351efe3362b354946b47e0265283ced846e69c47a71bc")
        #expect(signed.request.headerValue("x-amz-content-sha256") == "UNSIGNED-PAYLOAD")
    }

    @Test("presigned GET for 7 days with a response-content-disposition override and a session token")
    func presignUnicodeKey() throws {
        let request = SigV4Request(
            method: "GET", host: "localhost:9000", path: Self.path,
            query: [("response-content-disposition", #"attachment; filename="a b.jpg""#)])
        let signed = try Self.signer.presignWithDetails(request, expires: 604_800, date: Self.date)
        #expect(signed.stringToSign.hasSuffix("\n5fb3c5a6fa3190de984022fc797f4f2ce242e7a507c8d9be60da2027cecea612"))
        #expect(signed.signature == "c310c68c82825601d9c32df5e87453d0f326f960676b3796d59ae7e7dcdb3ac5")
        // botocore orders the parameters the same way, so the whole URL matches byte for byte.
        #expect(
            signed.request.urlString(scheme: "https")
                == "https://localhost:9000/backup-bucket/photos/2008%20summer/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%2Bplus%3Deq%20%E2%98%83.jpg"
                + "?response-content-disposition=attachment%3B%20filename%3D%22a%20b.jpg%22"
                + "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=ASIAEXAMPLEKEY123456%2F20240229%2Feu-west-1%2Fs3%2Faws4_request"
                + "&X-Amz-Date=20240229T235959Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host"
                + "&X-Amz-Security-Token=FwoGZXIvYXdzE%2Btoken%2Fwith%3D%3D"
                + "&X-Amz-Signature=c310c68c82825601d9c32df5e87453d0f326f960676b3796d59ae7e7dcdb3ac5")
    }
}
