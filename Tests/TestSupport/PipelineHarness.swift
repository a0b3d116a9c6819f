import Catalog
import Crypto
import Foundation
import Logging
import ObjectStore
import PipelineCore
import PostgresNIO
import TestSupport
import SystemIO

/// A fresh catalog database, fresh staging and archive buckets (moto S3 or directories) and a scratch source
/// directory, with helpers to run the real programs and to read what they recorded.
public struct PipelineHarness: Sendable {
    public enum Staging: Sendable { case s3, file }

    public let database: TestDatabase
    public let stagingURL: String
    public let archiveURL: String
    public let staging: any ObjectStore
    public let archive: any ObjectStore
    public let source: TemporaryDirectory
    public let work: TemporaryDirectory
    public let environment: [String: String]

    public static func with(_ staging: Staging, _ body: (PipelineHarness) async throws -> Void) async throws {
        let database = try await TestDatabase.create()
        let source = try TemporaryDirectory("src")
        let work = try TemporaryDirectory("work")
        var environment = [
            "DATABASE_URL": try TestEnvironment.required("TEST_DATABASE_URL").replacingOccurrences(of: "/postgres?", with: "/\(database.url.database)?"),
            "BACKUP_DATA_DIR": work.path,
        ]
        let stagingURL: String
        let archiveURL: String
        switch staging {
        case .s3:
            let bucket = "up-" + UUID().uuidString.lowercased().prefix(18)
            stagingURL = "s3://\(bucket)/staging"
            archiveURL = "s3://\(bucket)-archive/archive"
            environment["AWS_ENDPOINT_URL_S3"] = try TestEnvironment.required("TEST_S3_ENDPOINT")
            environment["AWS_REGION"] = try TestEnvironment.required("TEST_S3_REGION")
            environment["AWS_ACCESS_KEY_ID"] = try TestEnvironment.required("TEST_S3_ACCESS_KEY_ID")
            environment["AWS_SECRET_ACCESS_KEY"] = try TestEnvironment.required("TEST_S3_SECRET_ACCESS_KEY")
        case .file:
            stagingURL = "file://\(work.path)/staging"
            archiveURL = "file://\(work.path)/archive"
        }
        environment["BACKUP_STAGING_URL"] = stagingURL
        environment["BACKUP_ARCHIVE_URL"] = archiveURL
        let settings = ObjectStoreSettings(environment: environment, logger: TestEnvironment.logger)
        let store = try await openObjectStore(url: try StorageURL(parsing: stagingURL), settings: settings)
        if let s3 = store as? S3ObjectStore { try await s3.createBucket() }
        let archive = try await openObjectStore(url: try StorageURL(parsing: archiveURL), settings: settings)
        if let s3 = archive as? S3ObjectStore { try await s3.createBucket() }

        let harness = PipelineHarness(
            database: database, stagingURL: stagingURL, archiveURL: archiveURL, staging: store, archive: archive,
            source: source, work: work, environment: environment)
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
    public func write(_ relativePath: String, _ bytes: [UInt8]) throws -> String {
        let path = source.path + "/" + relativePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TestEnvironment.Missing(variable: "writable \(path)") }
        return path
    }

    public func write(_ relativePath: String, _ text: String) throws {
        try write(relativePath, Array(text.utf8))
    }

    /// Deterministic pseudo-random bytes (no two seeds alike), quick to make in bulk.
    public static func bytes(count: Int, seed: UInt64) -> [UInt8] {
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

    public static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: running the uploader

    /// Runs `uploader upload` on the source directory (or on `path`, such as a faulty mirror of it).
    public func upload(
        label: String = "DVD 12", path: String? = nil, extra: [String] = [], environment extraEnvironment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String, summary: [String: Any]) {
        let result = try await Program.run(
            "uploader", ["upload", path ?? source.path, "--label", label, "--json"] + extra,
            environment: environment.merging(extraEnvironment) { $1 })
        return (result.status, result.output, Self.summary(in: result.output))
    }

    /// Runs `transcoder run --once` with the fast h264 profile (lease and poll shortened for tests).
    public func transcodeOnce() async throws -> Subprocess.Result {
        try await Program.run(
            "transcoder", ["run", "--once", "--profile", "h264", "--lease-seconds", "10", "--poll-seconds", "0.2"], environment: environment)
    }

    /// Runs `archiver run --once` (lease and poll shortened for tests) and returns its exit status and output.
    public func archiveOnce(_ extra: [String] = [], environment extraEnvironment: [String: String] = [:]) async throws -> Subprocess.Result {
        try await Program.run(
            "archiver", ["run", "--once", "--lease-seconds", "3", "--poll-seconds", "0.2"] + extra,
            environment: environment.merging(extraEnvironment) { $1 })
    }

    /// Runs SQL on the test's database (setting up states a test needs).
    public func execute(_ sql: String) async throws {
        try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger).collect()
        }
    }

    /// Every key in a store, for checking that nothing was left behind.
    public static func allKeys(_ store: any ObjectStore, prefix: String = "") async throws -> [String] {
        var keys: [String] = []
        for try await object in store.listAll(prefix: prefix) { keys.append(object.key) }
        return keys
    }

    public func startUpload(label: String = "DVD 12", extra: [String] = []) throws -> Subprocess.Running {
        try Program.start("uploader", ["upload", source.path, "--label", label, "--json"] + extra, environment: environment)
    }

    /// The `summary` event of a `--json` run.
    public static func summary(in output: String) -> [String: Any] {
        for line in output.split(separator: "\n").reversed() where line.hasPrefix("{") {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["event"] as? String == "summary" {
                return object
            }
        }
        return [:]
    }

    // MARK: reading the catalog

    public struct Row: Sendable {
        public let id: Int64
        public let path: String
        public let name: String
        public let version: Int
        public let size: Int64
        public let hash: String?
        public let state: String
        public let storage: String?
        public let storageKey: String?
        public let duplicateOf: Int64?
        public let kind: String
        public let error: String?
    }

    public func rows() async throws -> [Row] {
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

    public func scalar<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type) async throws -> T? {
        try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger).decode(T.self) {
                return value
            }
            return nil
        }
    }

    /// The SHA-256 of a staged object, read back from the store.
    public func stagedHash(_ key: String) async throws -> String {
        let bytes = try await staging.getBytes(key, limit: 512 << 20)
        return Self.sha256(bytes)
    }
}

extension PipelineHarness {
    /// Waits (up to two minutes) until the catalog's multipart journal shows `parts` finished parts or the process
    /// has exited, and returns the parts seen: the moment a crash test kills the uploader mid-file. One connection
    /// for the whole wait: on a loaded machine a new connection per look can take longer than the uploader needs
    /// for the remaining parts, and the moment would be missed.
    public func waitForStoredParts(_ parts: Int32, of process: Subprocess.Running) async throws -> Int32 {
        try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
            var seen: Int32 = 0
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline, process.isRunning {
                do {
                    for try await value in try await client.query(
                        "SELECT coalesce(max(jsonb_array_length(multipart_state->'parts')), 0)::int FROM pending_uploads",
                        logger: TestEnvironment.logger).decode(Int32.self) { seen = value }
                } catch {
                    seen = 0  // the uploader has not created its tables yet
                }
                if seen >= parts { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            return seen
        }
    }
}

extension PipelineHarness {
    /// Runs `uploader restore --source LABEL` into a fresh directory (with `environment` added) and returns the
    /// restored files by path (`LABEL/path`).
    public func restoreSource(
        _ label: String, arguments: [String] = [], environment extra: [String: String] = [:]
    ) async throws -> (status: Int32, output: String, files: [String: [UInt8]]) {
        let directory = work.path + "/restored-" + UUID().uuidString.prefix(8)
        let result = try await Program.run(
            "uploader", ["restore", "--source", label, "--to", directory, "--json"] + arguments, environment: environment.merging(extra) { $1 })
        var files: [String: [UInt8]] = [:]
        if let enumerator = FileManager.default.enumerator(atPath: directory) {
            while let relative = enumerator.nextObject() as? String {
                var isDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: directory + "/" + relative, isDirectory: &isDirectory)
                if !isDirectory.boolValue, let data = FileManager.default.contents(atPath: directory + "/" + relative) { files[relative] = Array(data) }
            }
        }
        return (result.status, result.output, files)
    }

    /// The state `uploader sources --json` gives the source with this label (nil: not listed).
    public func sourceState(_ label: String) async throws -> String? {
        let listing = try await Program.run("uploader", ["sources", "--json"], environment: environment)
        for line in listing.output.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["label"] as? String == label else { continue }
            return object["state"] as? String
        }
        return nil
    }
}
