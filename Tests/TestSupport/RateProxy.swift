import Foundation
import SystemIO

/// `scripts/lib/rate_proxy.py` in front of the test moto server: forwards every byte unchanged (SigV4 still
/// verifies) and counts each direction's bytes per 100 ms on the wire, so a bandwidth limit is measured outside
/// the process that applies it.
public final class RateProxy: Sendable {
    /// The proxy's address: use it as the S3 endpoint.
    public let endpoint: String
    private let statsFile: String
    private let outageFile: String
    private let process: Subprocess.Running

    /// What the proxy counted: bytes per bucket, client to server (`up`) and back (`down`).
    public struct Counts: Sendable, Decodable {
        /// Unix time of the first bucket.
        public var start: Double
        /// Bucket length in seconds.
        public var bucket: Double
        public var up: [Int]
        public var down: [Int]

        /// The instant bucket `index` starts.
        public func date(ofBucket index: Int) -> Date { Date(timeIntervalSince1970: start + Double(index) * bucket) }

        /// The bucket holding `date` (clamped to the series).
        public func bucket(at date: Date) -> Int { max(0, Int((date.timeIntervalSince1970 - start) / bucket)) }

        /// The first and last bucket with traffic in `series`.
        public static func active(_ series: [Int], threshold: Int = 0) -> ClosedRange<Int>? {
            guard let first = series.firstIndex(where: { $0 > threshold }), let last = series.lastIndex(where: { $0 > threshold }) else { return nil }
            return first...last
        }

        /// Bytes per second over buckets `range` of `series`.
        public func rate(_ series: [Int], _ range: ClosedRange<Int>) -> Double {
            let slice = series[min(range.lowerBound, series.count)..<min(range.upperBound + 1, series.count)]
            return Double(slice.reduce(0, +)) / (Double(range.count) * bucket)
        }
    }

    public init(upstream: String? = nil) async throws {
        let upstream = try upstream ?? TestEnvironment.required("TEST_S3_ENDPOINT")
        let base = NSTemporaryDirectory() + "/rate-proxy-\(UUID().uuidString)"
        statsFile = base + ".json"
        outageFile = base + ".outage"
        process = try Subprocess.spawn("/usr/bin/env", [
            "python3", FaultProxy.repositoryRoot + "/scripts/lib/rate_proxy.py", "--upstream", upstream,
            "--port-file", base + ".port", "--stats-file", statsFile, "--outage-file", outageFile,
        ])
        var port: String?
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: base + ".port", encoding: .utf8), !text.isEmpty {
                port = text
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try? FileManager.default.removeItem(atPath: base + ".port")
        guard let port else {
            process.signal(SIGKILL)
            throw TestEnvironment.Missing(variable: "a running rate proxy (\(process.outputSoFar()))")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    /// Cuts the line: open connections are shut down mid-transfer and new ones closed at once, until ``reconnect()``.
    public func cut() {
        FileManager.default.createFile(atPath: outageFile, contents: Data())
    }

    /// Ends an outage begun by ``cut()``.
    public func reconnect() {
        try? FileManager.default.removeItem(atPath: outageFile)
    }

    /// The counts so far (rewritten by the proxy every 200 ms).
    public func counts() throws -> Counts {
        try JSONDecoder().decode(Counts.self, from: Data(contentsOf: URL(fileURLWithPath: statsFile)))
    }

    /// Stops the proxy and returns its final counts.
    public func stop() async throws -> Counts {
        reconnect()
        process.signal(SIGTERM)
        _ = try? await process.wait()
        defer { try? FileManager.default.removeItem(atPath: statsFile) }
        return try counts()
    }
}
