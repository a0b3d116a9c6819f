import Catalog
import Crypto
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// A fresh catalog database, a fresh staging bucket (moto S3 or a directory) and a scratch source directory,
/// with helpers to run the real `uploader` and to read what it recorded.
struct UploaderHarness: Sendable {
    enum Staging: Sendable { case s3, file }

    let database: TestDatabase
    let stagingURL: String
    let staging: any ObjectStore
    let source: TemporaryDirectory
    let work: TemporaryDirectory
    let environment: [String: String]

    static func with(_ staging: Staging, _ body: (UploaderHarness) async throws -> Void) async throws {
        let database = try await TestDatabase.create()
        let source = try TemporaryDirectory("src")
        let work = try TemporaryDirectory("work")
        var environment = [
            "DATABASE_URL": try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?"),
            "BACKUP_DATA_DIR": work.path,
        ]
        let stagingURL: String
        switch staging {
        case .s3:
            let bucket = "up-" + UUID().uuidString.lowercased().prefix(18)
            stagingURL = "s3://\(bucket)/staging"
            environment["AWS_ENDPOINT_URL_S3"] = try TestEnvironment.required("TEST_S3_ENDPOINT")
            environment["AWS_REGION"] = try TestEnvironment.required("TEST_S3_REGION")
            environment["AWS_ACCESS_KEY_ID"] = try TestEnvironment.required("TEST_S3_ACCESS_KEY_ID")
            environment["AWS_SECRET_ACCESS_KEY"] = try TestEnvironment.required("TEST_S3_SECRET_ACCESS_KEY")
        case .file:
            stagingURL = "file://\(work.path)/staging"
        }
        environment["BACKUP_STAGING_URL"] = stagingURL
        let store = try await openObjectStore(
            url: try StorageURL(parsing: stagingURL),
            settings: ObjectStoreSettings(environment: environment, logger: TestEnvironment.logger))
        if let s3 = store as? S3ObjectStore { try await s3.createBucket() }

        let harness = UploaderHarness(database: database, stagingURL: stagingURL, staging: store, source: source, work: work, environment: environment)
        do {
            try await body(harness)
        } catch {
            await harness.cleanUp()
            throw error
        }
        await harness.cleanUp()
    }

    private func cleanUp() async {
        try? await database.drop()
        source.remove()
        work.remove()
    }

    // MARK: building a source

    @discardableResult
    func write(_ relativePath: String, _ bytes: [UInt8]) throws -> String {
        let path = source.path + "/" + relativePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TestEnvironment.Missing(variable: "writable \(path)") }
        return path
    }

    func write(_ relativePath: String, _ text: String) throws {
        try write(relativePath, Array(text.utf8))
    }

    /// Deterministic pseudo-random bytes (no two seeds alike), quick to make in bulk.
    static func bytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { buffer in
            var index = 0
            while index < count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                withUnsafeBytes(of: state) { word in
                    for byte in word where index < count {
                        buffer[index] = byte
                        index += 1
                    }
                }
            }
        }
        return result
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: running the uploader

    func upload(label: String = "DVD 12", extra: [String] = [], environment extraEnvironment: [String: String] = [:]) async throws -> (status: Int32, output: String, summary: [String: Any]) {
        let result = try await Program.run(
            "uploader", ["upload", source.path, "--label", label, "--json"] + extra,
            environment: environment.merging(extraEnvironment) { $1 })
        return (result.status, result.output, Self.summary(in: result.output))
    }

    func startUpload(label: String = "DVD 12", extra: [String] = []) throws -> Subprocess.Running {
        try Program.start("uploader", ["upload", source.path, "--label", label, "--json"] + extra, environment: environment)
    }

    /// The `summary` event of a `--json` run.
    static func summary(in output: String) -> [String: Any] {
        for line in output.split(separator: "\n").reversed() where line.hasPrefix("{") {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["event"] as? String == "summary" {
                return object
            }
        }
        return [:]
    }

    // MARK: reading the catalog

    struct Row: Sendable {
        let id: Int64
        let path: String
        let name: String
        let version: Int
        let size: Int64
        let hash: String?
        let state: String
        let storage: String?
        let storageKey: String?
        let duplicateOf: Int64?
        let kind: String
        let error: String?
    }

    func rows() async throws -> [Row] {
        try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            var rows: [Row] = []
            let query: PostgresQuery = """
                SELECT id, path, name, version, size_bytes, hash, state, storage, storage_key, duplicate_of, kind, error
                FROM objectstoragefiles ORDER BY path, version
                """
            for try await (id, path, name, version, size, hash, state, storage, key, duplicate, kind, error) in try await client.query(query, logger: TestEnvironment.logger)
                .decode((Int64, String, String, Int, Int64, String?, String, String?, String?, Int64?, String, String?).self) {
                rows.append(Row(id: id, path: path, name: name, version: version, size: size, hash: hash, state: state, storage: storage,
                                storageKey: key, duplicateOf: duplicate, kind: kind, error: error))
            }
            return rows
        }
    }

    func scalar<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type) async throws -> T? {
        try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger).decode(T.self) {
                return value
            }
            return nil
        }
    }

    /// The SHA-256 of a staged object, read back from the store.
    func stagedHash(_ key: String) async throws -> String {
        let bytes = try await staging.getBytes(key, limit: 512 << 20)
        return Self.sha256(bytes)
    }
}
