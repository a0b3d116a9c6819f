import Foundation
import ObjectStore
import SystemIO
import Testing
import TestSupport

/// What killed uploaders leave in staging, and the archiver's sweep of it.
@Suite("staging leftovers", .serialized)
struct StagingLeftoverTests {
    @Test("a disc image map an uploader killed before the image's row left in staging is removed by the archiver once an hour old; a younger one, and the map of an image whose pending upload its next run resumes, stay")
    func orphanedImageMaps() async throws {
        try await PipelineHarness.with(.file) { harness in
            var maps: [String] = []
            /// Runs `uploader image` until it has stored the image and its map, and kills it there (SIGKILL).
            func killedAfterMap(_ name: String, label: String, sectors: Int, seed: UInt64) async throws -> (map: String, image: String) {
                let image = harness.work.path + "/\(name).iso"
                FileManager.default.createFile(atPath: image, contents: Data(PipelineHarness.bytes(count: sectors * 2048, seed: seed)))
                let killed = try await Program.run(
                    "uploader", ["image", image, "--label", label],
                    environment: harness.environment.merging(["BACKUP_UPLOADER_TEST_CRASH_AFTER_MAP": "1"]) { $1 })
                #expect(killed.status == 128 + SIGKILL, "\(killed.output)")
                let map = try #require(try await PipelineHarness.allKeys(harness.staging).first { $0.hasSuffix(".map") && !maps.contains($0) })
                maps.append(map)
                return (map, image)
            }
            func age(_ key: String, by seconds: TimeInterval) throws {
                try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-seconds)],
                                                      ofItemAtPath: harness.work.path + "/staging/" + key)
            }
            // 1 MiB: sent in one request, so nothing but the map and the image is left, and a new run writes new keys.
            let orphan = try await killedAfterMap("small", label: "DVD 30", sectors: 512, seed: 1)
            let young = try await killedAfterMap("young", label: "DVD 31", sectors: 512, seed: 2)
            // 18 MB: above the multipart threshold, so a pending upload names the image, and the next run resumes it.
            let resumable = try await killedAfterMap("large", label: "DVD 32", sectors: 9000, seed: 3)
            #expect(try await harness.rows().isEmpty, "the hook fired before any image row")
            #expect(try await harness.scalar("SELECT staging_key FROM pending_uploads", as: String.self) == String(resumable.map.dropLast(4)))
            try age(orphan.map, by: 7200)
            try age(resumable.map, by: 7200)
            try age(young.map, by: 600)

            let archived = try await harness.archiveOnce()
            #expect(archived.status == 0, "\(archived.output)")
            let keys = try await PipelineHarness.allKeys(harness.staging)
            #expect(!keys.contains(orphan.map), "the map no row names, two hours old, is gone")
            #expect(keys.contains(young.map), "ten minutes old: an uploader may be about to write its row")
            #expect(keys.contains(resumable.map), "its image's pending upload may still be resumed")

            // The interrupted image's next run resumes it and records it with its map.
            let resumed = try await Program.run("uploader", ["image", resumable.image, "--label", "DVD 32"], environment: harness.environment)
            #expect(resumed.status == 0, "\(resumed.output)")
            #expect(try await harness.scalar("SELECT details->>'rescue_map_key' FROM objectstoragefiles WHERE kind = 'disc_image'", as: String.self)
                == resumable.map)
            #expect(try await PipelineHarness.allKeys(harness.staging).contains(resumable.map))
        }
    }
}
