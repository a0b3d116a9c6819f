import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SigV4
import Testing
import TestSupport

/// The S3 API that scripts/test starts must reject what AWS rejects: these prove that the test server really
/// checks signatures, and that this signer's output is accepted by a real S3 implementation.
@Suite("SigV4 against the moto S3 server")
struct MotoSigV4Tests {
    struct Server {
        let endpoint: URL
        let credentials: AWSCredentials

        init() throws {
            endpoint = try #require(URL(string: try TestEnvironment.required("TEST_S3_ENDPOINT")))
            credentials = AWSCredentials(
                accessKeyID: try TestEnvironment.required("TEST_S3_ACCESS_KEY_ID"),
                secretAccessKey: try TestEnvironment.required("TEST_S3_SECRET_ACCESS_KEY"))
        }

        var host: String { "\(endpoint.host ?? "127.0.0.1"):\(endpoint.port ?? 80)" }

        func send(_ request: SigV4Request, body: Data = Data()) async throws -> (Int, String) {
            var urlRequest = URLRequest(url: try #require(URL(string: request.urlString(scheme: "http"))))
            urlRequest.httpMethod = request.method
            for header in request.headers where header.name.lowercased() != "host" {
                urlRequest.setValue(header.value, forHTTPHeaderField: header.name)
            }
            if !body.isEmpty { urlRequest.httpBody = body }
            let (data, response) = try await URLSession.shared.data(for: urlRequest)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
    }

    @Test("a signed request is accepted, an unsigned or wrongly signed one refused")
    func signaturesAreEnforced() async throws {
        let server = try Server()
        let bucket = "sigv4-\(UInt32.random(in: 0...UInt32.max))"
        let signer = SigV4Signer(credentials: server.credentials, region: "us-east-1", service: "s3")

        let create = signer.sign(SigV4Request(method: "PUT", host: server.host, path: "/\(bucket)"), payload: .emptySHA256, date: Date())
        let (createStatus, createBody) = try await server.send(create)
        #expect(createStatus == 200, "\(createBody)")

        let body = Data("hello, archive".utf8)
        let key = "dir/a file+ü.txt"
        let put = signer.sign(
            SigV4Request(method: "PUT", host: server.host, path: "/\(bucket)/" + SigV4URIEncoding.encode(key, encodeSlash: false),
                         headers: [("Content-Length", "\(body.count)")]),
            payload: .sha256(of: body), date: Date())
        let (putStatus, putBody) = try await server.send(put, body: body)
        #expect(putStatus == 200, "\(putBody)")

        let list = signer.sign(SigV4Request(method: "GET", host: server.host, path: "/\(bucket)", query: [("list-type", "2")]), payload: .emptySHA256, date: Date())
        let (listStatus, listBody) = try await server.send(list)
        #expect(listStatus == 200)
        #expect(listBody.contains("<Key>\(key)</Key>"), "\(listBody)")

        let unsigned = SigV4Request(method: "GET", host: server.host, path: "/\(bucket)", query: [("list-type", "2")])
        let (unsignedStatus, _) = try await server.send(unsigned)
        #expect(unsignedStatus == 403)

        let wrongSecret = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: server.credentials.accessKeyID, secretAccessKey: "not-the-secret"),
            region: "us-east-1", service: "s3")
        let (wrongStatus, wrongBody) = try await server.send(wrongSecret.sign(unsigned, payload: .emptySHA256, date: Date()))
        #expect(wrongStatus == 403)
        #expect(wrongBody.contains("SignatureDoesNotMatch"), "\(wrongBody)")

        let presigned = try signer.presign(SigV4Request(method: "GET", host: server.host, path: "/\(bucket)/" + SigV4URIEncoding.encode(key, encodeSlash: false)), expires: 300, date: Date())
        let (getStatus, getBody) = try await server.send(presigned)
        #expect(getStatus == 200)
        #expect(getBody == "hello, archive")
    }
}
