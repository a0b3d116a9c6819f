import Foundation
import Testing

/// botocore (the AWS CLI's and boto3's request layer) as an independent judge of how a request for a key must be
/// encoded and signed. moto 5.2.1 cannot verify signatures for keys with '+', non-ASCII or reserved characters,
/// for '/' in query values, or for presigned URLs while it enforces SigV4 (boto3 fails there the same way), so
/// for those cases the tests compare our requests byte for byte with botocore's instead.
enum BotocoreOracle {
    struct Input: Encodable {
        var mode: String  // "path", "sign" or "presign"
        var key: String = ""
        var method: String = "GET"
        var url: String = ""
        var headers: [String: String] = [:]
        var bodyBase64: String = ""
        var amzDate: String = ""
        var accessKeyID: String = ""
        var secretAccessKey: String = ""
        var region: String = "us-east-1"
        var expires: Int = 0
    }

    static let script = #"""
    import base64, datetime, json, sys
    import botocore.auth as auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode
    d = json.load(sys.stdin)
    if d["mode"] == "path":
        print(percent_encode(d["key"], safe="/~"), end="")
        sys.exit(0)
    fixed = datetime.datetime.strptime(d["amzDate"], "%Y%m%dT%H%M%SZ")
    auth.get_current_datetime = lambda *a, **k: fixed
    credentials = Credentials(d["accessKeyID"], d["secretAccessKey"])
    request = AWSRequest(method=d["method"], url=d["url"], headers=d["headers"],
                         data=base64.b64decode(d["bodyBase64"]))
    if d["mode"] == "presign":
        auth.S3SigV4QueryAuth(credentials, "s3", d["region"], expires=d["expires"]).add_auth(request)
        print(request.url, end="")
    else:
        auth.S3SigV4Auth(credentials, "s3", d["region"]).add_auth(request)
        print(request.headers["Authorization"], end="")
    """#

    static func run(_ input: Input, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(try JSONEncoder().encode(input))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0,
                     "python3 with botocore is needed (run the tests with scripts/test): \(String(decoding: errors, as: UTF8.self))",
                     sourceLocation: sourceLocation)
        return String(decoding: output, as: UTF8.self)
    }

    /// botocore's wire encoding of an object key (`quote(key, safe='/~')`).
    static func encodedKey(_ key: String) throws -> String {
        try run(Input(mode: "path", key: key))
    }
}
