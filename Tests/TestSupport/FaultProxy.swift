import Catalog
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
import SystemIO
#endif

/// `scripts/lib/fault_proxy.py` in front of the test moto server (or any loopback HTTP server: `upstream`): every
/// request is forwarded byte for byte (so SigV4 still verifies) unless a rule says to answer it with a fault (see the
/// script's header for the rules).
public final class FaultProxy: Sendable {
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The proxy's address: use it as the S3 endpoint.
    public let endpoint: String
    private let process: Subprocess.Running

    /// A fault: which S3 operation (on which paths), what happens to it, how often.
    public struct Rule: Sendable, Codable {
        public var operation: String
        public var action: String
        public var times: Int?
        public var probability: Double?
        /// Only requests whose path ("/bucket/key") contains this.
        public var pathContains: String?
        /// Only requests with this HTTP method ("PATCH").
        public var method: String?
        /// Matching requests that pass untouched before the rule starts hitting.
        public var skip: Int?

        enum CodingKeys: String, CodingKey {
            case operation, action, times, probability, method, skip
            case pathContains = "path_contains"
        }

        public init(
            _ operation: String, _ action: String, times: Int? = nil, probability: Double? = nil, pathContains: String? = nil,
            method: String? = nil, skip: Int? = nil
        ) {
            self.operation = operation
            self.action = action
            self.times = times
            self.probability = probability
            self.pathContains = pathContains
            self.method = method
            self.skip = skip
        }
    }

    /// Starts a proxy in front of `upstream` (default: the moto server `scripts/test` started).
    public init(upstream: String? = nil) async throws {
        let upstream = try upstream ?? TestEnvironment.required("TEST_S3_ENDPOINT")
        let portFile = NSTemporaryDirectory() + "/fault-proxy-\(UUID().uuidString).port"
        process = try Subprocess.spawn("/usr/bin/env", [
            "python3", Self.repositoryRoot + "/scripts/lib/fault_proxy.py", "--upstream", upstream, "--port-file", portFile,
        ])
        var port: String?
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), !text.isEmpty {
                port = text
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try? FileManager.default.removeItem(atPath: portFile)
        guard let port else {
            process.signal(SIGKILL)
            throw TestEnvironment.Missing(variable: "a running fault proxy (\(process.outputSoFar()))")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    /// Replaces the proxy's rules; `seed` makes probabilistic rules repeatable.
    public func inject(_ rules: [Rule], seed: UInt64 = 0) async throws {
        struct Document: Codable { var seed: UInt64; var rules: [Rule] }
        _ = try await control("POST", body: try JSONEncoder().encode(Document(seed: seed, rules: rules)))
    }

    /// How many faults were injected, by "OPERATION ACTION".
    public func injected() async throws -> [String: Int] {
        struct State: Codable { var injected: [String: Int] }
        return try JSONDecoder().decode(State.self, from: try await control("GET", body: nil)).injected
    }

    public func stop() {
        process.signal(SIGTERM)
    }

    private func control(_ method: String, body: Data?) async throws -> Data {
        var request = URLRequest(url: URL(string: endpoint + "/__faults__")!)
        request.httpMethod = method
        request.httpBody = body
        let (data, _) = try await URLSession.shared.data(for: request)
        return data
    }
}
