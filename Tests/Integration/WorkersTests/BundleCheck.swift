import ArchiveFormat
import Catalog
import Foundation
import ObjectStore
import PostgresNIO
import Testing
import TestSupport
import SystemIO
@testable import ArchiveStep
@testable import JobQueue
@testable import TranscodeStep

/// Reads archived bundles back and checks them with an independent reader (Python's tarfile): every member's
/// offset, size and SHA-256 match the manifest inside the tar, the manifest beside it, and the catalog rows.
enum BundleCheck {
    struct Summary {
        var bundleCount = 0
        var memberCount = 0
    }

    static func verifyAllBundles(_ harness: PipelineHarness, restoreFirst: Bool = false) async throws -> Summary {
        var summary = Summary()
        let bundles = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var result: [(Int64, String, String, String, Int64)] = []
            for try await row in try await client.query(
                "SELECT id, archive_key, manifest_key, compression, stored_bytes FROM bundles WHERE state = 'archived' ORDER BY id",
                logger: TestEnvironment.logger).decode((Int64, String, String, String, Int64).self) {
                result.append(row)
            }
            return result
        }
        for (bundleID, key, manifestKey, compression, storedBytes) in bundles {
            summary.bundleCount += 1
            let sidecar = try BundleManifest.decode(try await harness.archive.getBytes(manifestKey))
            #expect(sidecar.bundleKey == key)
            #expect(sidecar.bundleID == bundleID)
            #expect(sidecar.compression == compression)
            #expect(sidecar.storedBytes == storedBytes)

            if restoreFirst {
                _ = try await harness.archive.requestRestore(key, days: 1, tier: .bulk)
                for _ in 0..<50 {
                    if try await harness.archive.head(key)?.restore.isReadable == true { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let stored = try await harness.archive.getBytes(key, limit: 512 << 20)
            #expect(Int64(stored.count) == storedBytes)
            #expect(PipelineHarness.sha256(stored) == sidecar.storedSHA256)
            let tarPath = harness.work.path + "/check-\(bundleID).tar"
            if compression == "zstd" {
                let compressedPath = tarPath + ".zst"
                FileManager.default.createFile(atPath: compressedPath, contents: Data(stored))
                try ZstdFile.decompress(compressedPath, to: tarPath)
            } else {
                FileManager.default.createFile(atPath: tarPath, contents: Data(stored))
            }

            // Python's tarfile is the independent reader: names, data offsets, sizes and hashes of every member.
            let listing = try await Subprocess.run("/usr/bin/env", ["python3", "-c", """
                import hashlib, json, sys, tarfile
                with tarfile.open(sys.argv[1]) as tar:
                    out = []
                    for m in tar.getmembers():
                        data = tar.extractfile(m).read()
                        out.append({"name": m.name, "offset": m.offset_data, "size": m.size, "sha256": hashlib.sha256(data).hexdigest(),
                                    "text": data.decode() if m.name.endswith("manifest.json") else None})
                    print(json.dumps(out))
                """, tarPath])
            #expect(listing.status == 0, "\(listing.output)")
            let members = try #require(try JSONSerialization.jsonObject(with: Data(listing.output.utf8)) as? [[String: Any]])
            let inner = try #require(members.last)
            #expect(inner["name"] as? String == BundleManifest.memberName)
            let manifest = try BundleManifest.decode(Array((try #require(inner["text"] as? String)).utf8))
            #expect(manifest.members == sidecar.members)
            #expect(members.count == manifest.members.count + 1)
            for (member, listed) in zip(manifest.members, members) {
                #expect(listed["name"] as? String == member.member)
                #expect((listed["offset"] as? Int).map(Int64.init) == member.offset)
                #expect((listed["size"] as? Int).map(Int64.init) == member.size)
                #expect(listed["sha256"] as? String == member.sha256)
                let row = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
                    var found: (Int64?, Int64?, String?, String)?
                    for try await row in try await client.query(
                        "SELECT bundle_id, bundle_offset, stored_hash, path FROM objectstoragefiles WHERE id = \(member.fileID)",
                        logger: TestEnvironment.logger).decode((Int64?, Int64?, String?, String).self) {
                        found = row
                    }
                    return found
                }
                #expect(row?.0 == bundleID)
                #expect(row?.1 == member.offset)
                #expect(row?.2 == member.sha256)
                #expect(row?.3 == member.path)
                summary.memberCount += 1
            }
        }
        return summary
    }

    /// The lines of a gzip file (the catalog export), read with the system's gzip.
    static func gunzipLines(_ bytes: [UInt8], directory: String) throws -> [String] {
        let path = directory + "/export-\(UUID().uuidString).gz"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
