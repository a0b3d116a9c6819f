import SystemIO
import Catalog
import Foundation
import ObjectStore
import PipelineCore
import Testing
import TestSupport

/// `ObjectStorageDeleteLog` requests carried out by the archiver after the grace period.
@Suite("delete requests")
struct DeleteTests {
    @Test("after the grace period data goes only when no other file needs it; bundles go when all their members are dead")
    func deleteAfterGrace() async throws {
        try await PipelineHarness.with(.file) { harness in
            // Deep Archive (the default): rewriting a bundle needs a restore first (file:// restores finish at once).
            let deepArchive: [String: String] = [:]
            let options = ["--small-file-threshold", "1MiB"]
            for index in 0..<3 { try harness.write("docs/\(index).txt", "document \(index)\n") }
            #expect(try await harness.upload(label: "docs").status == 0)
            #expect(try await harness.archiveOnce(options, environment: deepArchive).status == 0)

            for index in 0..<3 { try FileManager.default.removeItem(atPath: harness.source.path + "/docs/\(index).txt") }
            try harness.write("photo.jpg", PipelineHarness.bytes(count: 5000, seed: 1))
            try harness.write("photo copy.jpg", PipelineHarness.bytes(count: 5000, seed: 1))
            try harness.write("movie.bin", PipelineHarness.bytes(count: 2 << 20, seed: 2))
            try harness.write("recent.txt", "asked for deletion yesterday\n")
            #expect(try await harness.upload(label: "photos").status == 0)
            #expect(try await harness.archiveOnce(options, environment: deepArchive).status == 0)

            let rows = try await harness.rows()
            func id(_ path: String, state: String? = nil) throws -> Int64 {
                try #require(rows.first { $0.path == path && (state == nil || $0.state == state) }).id
            }
            let docsBundle = try #require(try await harness.scalar(
                "SELECT archive_key FROM bundles WHERE id = (SELECT bundle_id FROM objectstoragefiles WHERE path = 'docs/0.txt')", as: String.self))
            let movieKey = try #require(rows.first { $0.path == "movie.bin" }?.storageKey)
            let photoHolder = try #require(rows.first { $0.path.hasPrefix("photo") && $0.state == "archived" })
            let expired = "now() - interval '31 days'"
            for path in ["docs/0.txt", "docs/1.txt", "docs/2.txt", "movie.bin"] {
                try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(try id(path)), \(expired))")
            }
            try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(photoHolder.id), \(expired))")
            try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(try id("recent.txt")), now() - interval '1 day')")

            #expect(try await harness.archiveOnce(options, environment: deepArchive).status == 0)

            // The docs bundle lost all members: gone with its manifest. The movie's object: gone.
            #expect(try await harness.archive.head(docsBundle) == nil)
            #expect(try await harness.archive.head(docsBundle + ".manifest.json") == nil)
            #expect(try await harness.archive.head(movieKey) == nil)
            #expect(try await harness.scalar("SELECT state FROM bundles WHERE archive_key = '\(docsBundle)'", as: String.self) == "deleted")
            // The photo is still needed by its duplicate: kept, handed over to it, and the outcome says so.
            #expect(try await harness.archive.head(try #require(photoHolder.storageKey)) != nil)
            let photoOutcome = try await harness.scalar(
                "SELECT outcome FROM objectstoragedeletelog WHERE file_id = \(photoHolder.id)", as: String.self)
            #expect(photoOutcome?.contains("handed over to file") == true, "\(photoOutcome ?? "nil")")
            // Within the grace period nothing happens.
            #expect(try await harness.scalar(
                "SELECT count(*) FROM objectstoragedeletelog WHERE processed_at IS NULL", as: Int64.self) == 1)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE deleted_at IS NOT NULL", as: Int64.self) == 5)
            // The log is history: rows cannot be removed.
            await #expect(throws: (any Error).self) { try await harness.execute("DELETE FROM objectstoragedeletelog") }

            // Deleting the last user of the photo kills its bytes in the bundle, which is then mostly dead: it is
            // rewritten (the live member goes to a new bundle) and the old bundle is removed.
            let photoBundleID = try #require(try await harness.scalar("SELECT bundle_id FROM objectstoragefiles WHERE id = \(photoHolder.id)", as: Int64.self))
            let photoBundleKey = try #require(try await harness.scalar("SELECT archive_key FROM bundles WHERE id = \(photoBundleID)", as: String.self))
            let copy = try #require(try await harness.rows().first { $0.path.hasPrefix("photo") && $0.id != photoHolder.id })
            #expect(copy.state == "archived" && copy.duplicateOf == nil, "the duplicate took the deleted holder's content over")
            try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(copy.id), \(expired))")
            let rewrite = try await harness.archiveOnce(options, environment: deepArchive)
            #expect(rewrite.status == 0, "\(rewrite.output)")
            #expect(try await harness.scalar("SELECT dead_members FROM bundles WHERE id = \(photoBundleID)", as: Int.self) == 1)
            #expect(try await harness.scalar("SELECT state FROM bundles WHERE id = \(photoBundleID)", as: String.self) == "deleted")
            #expect(try await harness.archive.head(photoBundleKey) == nil)
            let recent = try #require(try await harness.rows().first { $0.path == "recent.txt" })
            #expect(recent.state == "archived")
            let newBundle = try await harness.scalar("SELECT bundle_id FROM objectstoragefiles WHERE id = \(recent.id)", as: Int64.self)
            #expect(newBundle != nil && newBundle != photoBundleID)
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
            _ = try await BundleCheck.verifyAllBundles(harness, restoreFirst: true)
            #expect(try await harness.scalar("SELECT count(*) FROM bundles WHERE details ? 'restore_requested_at'", as: Int64.self) == 1)
        }
    }
}
