import ArchiveStep
import AsyncHTTPClient
import Catalog
import Crypto
import Foundation
import NIOHTTP1
import ObjectStore
import PipelineCore
import PostgresNIO
import SigV4
import SystemIO
import Testing
import TestSupport

/// The catalog contract for `ObjectStorageFiles.signed_download_url`: a presigned GET for the current copy while it
/// is readable (staged copies included), NULL otherwise, and signed again before it expires — never later than the
/// credentials that signed it.
@Suite("archiver: signed download URLs")
struct SignedURLTests {
    struct URLRow: Sendable {
        let id: Int64
        let path: String
        let state: String
        let hash: String?
        let url: String?
        let expires: Date?
    }

    static func urlRows(_ harness: PipelineHarness) async throws -> [URLRow] {
        try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var rows: [URLRow] = []
            for try await (id, path, state, hash, url, expires) in try await client.query("""
                SELECT id, path, state, hash, signed_download_url, signed_download_url_expires_at FROM objectstoragefiles ORDER BY id
                """, logger: TestEnvironment.logger).decode((Int64, String, String, String?, String?, Date?).self) {
                rows.append(URLRow(id: id, path: path, state: state, hash: hash, url: url, expires: expires))
            }
            return rows
        }
    }

    /// GETs a presigned URL as a stranger would (no credentials) and returns the SHA-256 of the body.
    static func download(_ url: String) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(60))
        #expect(response.status.code == 200, "GET of a signed URL answered \(response.status)")
        var hasher = SHA256()
        for try await chunk in response.body { hasher.update(data: Data(chunk.readableBytesView)) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    @Test("moto: the archiver signs staged copies (they download as their bytes), an archived single object in a readable class keeps a URL, bundle members and duplicates have none, a deleted file loses its own")
    func stagedAndArchived() async throws {
        try await PipelineHarness.with(.s3) { harness in
            try harness.write("small/a.txt", PipelineHarness.bytes(count: 3_000, seed: 1))
            try harness.write("small/b.txt", PipelineHarness.bytes(count: 5_000, seed: 2))
            try harness.write("small/copy-of-a.txt", PipelineHarness.bytes(count: 3_000, seed: 1))
            try harness.write("large.bin", PipelineHarness.bytes(count: 600_000, seed: 3))
            let upload = try await harness.upload(label: "URLs")
            #expect(upload.status == 0, "\(upload.output)")
            #expect(try await Self.urlRows(harness).allSatisfy { $0.url == nil }, "no URL before the archiver has run")

            // Hold the files back from the archive, so the real archiver's housekeeping sees them staged.
            try await harness.execute("UPDATE objectstoragefiles SET run_after = now() + interval '1 hour'")
            let housekeeping = try await harness.archiveOnce()
            #expect(housekeeping.status == 0, "\(housekeeping.output)")
            let staged = try await Self.urlRows(harness)
            // The uploader already found the copy of a.txt a duplicate: it has no copy of its own, so no URL.
            #expect(staged.map(\.state).sorted() == ["duplicate", "staged", "staged", "staged"], "\(staged.map { ($0.path, $0.state) })")
            #expect(staged.filter { $0.state == "duplicate" }.allSatisfy { $0.url == nil })
            for row in staged where row.state == "staged" {
                let url = try #require(row.url, "\(row.path) has no URL while staged")
                #expect(url.contains("X-Amz-Signature="), "\(row.path): \(url.prefix(80))")
                let expires = try #require(row.expires)
                #expect(expires > Date().addingTimeInterval(6 * 86_400) && expires <= Date().addingTimeInterval(7 * 86_400 + 60))
                #expect(try await Self.download(url) == row.hash, "\(row.path): a staged copy's URL must give its bytes")
            }

            try await harness.execute("UPDATE objectstoragefiles SET run_after = now()")
            let archived = try await harness.archiveOnce(["--small-file-threshold", "100KiB"], environment: ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"])
            #expect(archived.status == 0, "\(archived.output)")
            let after = try await Self.urlRows(harness)
            let large = try #require(after.first { $0.path == "large.bin" })
            #expect(large.state == "archived")
            let largeURL = try #require(large.url, "an archived single object in STANDARD is readable, so it has a URL")
            #expect(largeURL.contains("-archive/"), "the URL names the archive copy: \(largeURL.prefix(80))")
            #expect(try await Self.download(largeURL) == large.hash)
            for row in after where row.path != "large.bin" {
                #expect(["archived", "duplicate"].contains(row.state))
                #expect(row.url == nil && row.expires == nil, "\(row.path) (\(row.state)) is a bundle member or a duplicate: no URL of its own")
            }

            // A deleted file's URL goes when the delete is carried out, and is not signed again.
            try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(large.id), now() - interval '30 days')")
            let deleted = try await harness.archiveOnce(["--delete-grace-days", "0"])
            #expect(deleted.status == 0, "\(deleted.output)")
            let gone = try #require(try await Self.urlRows(harness).first { $0.id == large.id })
            #expect(gone.url == nil && gone.expires == nil, "a deleted file keeps no URL")
        }
    }

    @Test("moto: a URL lives no longer than the temporary credentials that signed it, and is signed again before it expires; a row whose copy moved meanwhile keeps what the move wrote")
    func renewedBeforeExpiry() async throws {
        try await PipelineHarness.with(.s3) { harness in
            try harness.write("one.bin", PipelineHarness.bytes(count: 10_000, seed: 7))
            let upload = try await harness.upload(label: "Renew")
            #expect(upload.status == 0, "\(upload.output)")

            guard case .s3(let bucket, let prefix) = try StorageURL(parsing: harness.stagingURL) else { Issue.record("not S3"); return }
            let configuration = S3Configuration.fromEnvironment(harness.environment)
            func store(credentialsExpire: Date) throws -> S3ObjectStore {
                try S3ObjectStore(bucket: bucket, prefix: prefix, configuration: configuration, credentials: StaticCredentialProvider(AWSCredentials(
                    accessKeyID: harness.environment["AWS_ACCESS_KEY_ID"] ?? "", secretAccessKey: harness.environment["AWS_SECRET_ACCESS_KEY"] ?? "",
                    expiration: credentialsExpire)))
            }
            try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                let catalog = SignedURLCatalog(client: client, logger: TestEnvironment.logger)
                let now = Date()
                // A task role's credentials, two hours left: the URL lives two hours, not seven days.
                let first = try store(credentialsExpire: now.addingTimeInterval(7_200))
                #expect(try await SignedURLRefresh.run(catalog: catalog, staging: first, archive: harness.archive, logger: TestEnvironment.logger, now: now) == 1)
                let signed = try #require(try await Self.urlRows(harness).first)
                let expires = try #require(signed.expires)
                #expect(abs(expires.timeIntervalSince(now.addingTimeInterval(7_200))) < 2, "expires \(expires), the credentials at \(now.addingTimeInterval(7_200))")
                #expect(try await Self.download(try #require(signed.url)) == signed.hash)

                // An hour later nothing is due; with ten minutes left (inside the renewal margin) it is signed again
                // with the renewed credentials.
                #expect(try await SignedURLRefresh.run(catalog: catalog, staging: first, archive: harness.archive, logger: TestEnvironment.logger, now: now.addingTimeInterval(3_600)) == 0)
                let later = now.addingTimeInterval(7_200 - 600)
                let renewed = try store(credentialsExpire: later.addingTimeInterval(6 * 3_600))
                #expect(try await SignedURLRefresh.run(catalog: catalog, staging: renewed, archive: harness.archive, logger: TestEnvironment.logger, now: later) == 1)
                let again = try #require(try await Self.urlRows(harness).first)
                #expect(abs((again.expires ?? .distantPast).timeIntervalSince(later.addingTimeInterval(6 * 3_600))) < 2)

                // Signed for a copy that has since moved (the archiver archived it meanwhile): not recorded.
                let due = SignedURLDue(fileID: signed.id, area: .staging, key: "no/longer/this/key")
                #expect(try await catalog.record([(due, PresignedURL(url: "https://example.invalid/x", expires: later))]) == 0)
                #expect(try await Self.urlRows(harness).first?.url == again.url)
            }
        }
    }
}
