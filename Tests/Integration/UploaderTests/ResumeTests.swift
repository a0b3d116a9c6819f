import SystemIO
import Catalog
import Foundation
import ObjectStore
import PostgresNIO
import Testing
import TestSupport

@Suite("uploader crashes and resumes", .serialized, .onOwnThreads)
struct ResumeTests {
    @Test("killed after a multipart upload completed but before its row was written: the next run sends nothing again")
    func killedAfterCompletionKeepsTheUpload() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let big = UploaderHarness.bytes(count: 20_000_000, seed: 43)
            try harness.write("image/disc.iso.part", big)
            let crashed = try await harness.upload(environment: ["BACKUP_UPLOADER_TEST_CRASH_AFTER_UPLOAD": "1"])
            #expect(crashed.status == 128 + SIGKILL, "\(crashed.output)")
            #expect(try await harness.rows().isEmpty, "no row before the hook fired")
            #expect(try await PipelineHarness.allKeys(harness.staging).count == 1, "the completed upload is in staging")

            let resumed = try await harness.upload()
            #expect(resumed.status == 0, "\(resumed.output)")
            #expect(resumed.summary["bytes_uploaded"] as? Int == 0, "nothing sent again: \(resumed.summary)")
            let rows = try await harness.rows()
            #expect(rows.count == 1 && rows[0].state == "staged" && rows[0].hash == UploaderHarness.sha256(big))
            #expect(try await harness.stagedHash(try #require(rows[0].storageKey)) == UploaderHarness.sha256(big))
            #expect(try await PipelineHarness.allKeys(harness.staging).count == 1, "no second copy")
        }
    }

    @Test("kill -9 in the middle of a 100 MB multipart upload, run again: only missing parts are sent")
    func killedMidFileResumes() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let big = UploaderHarness.bytes(count: 100_000_000, seed: 42)
            try harness.write("video/tape-01.dv", big)
            try harness.write("docs/small.txt", "small")

            let child = try harness.startUpload(extra: ["--concurrency", "1"])
            // Two finished parts in the catalog's journal, then kill the process outright.
            let partsBeforeKill = try await harness.waitForStoredParts(2, of: child)
            child.signal(SIGKILL)
            let killed = try await child.wait()
            #expect(killed.status == 128 + SIGKILL, "the uploader was killed, not finished: \(killed.output)")
            #expect(partsBeforeKill >= 2)
            #expect(try await harness.rows().filter { $0.path == "video/tape-01.dv" }.isEmpty, "no row before the bytes are stored")

            let resumed = try await harness.upload(extra: ["--concurrency", "1"])
            #expect(resumed.status == 0, "\(resumed.output)")
            let uploaded = try #require(resumed.summary["bytes_uploaded"] as? Int)
            let partSize = 16 << 20
            // The last part is short: on a loaded machine the kill may land after it, and then nothing is left to send.
            #expect(uploaded <= max(0, big.count - Int(partsBeforeKill) * partSize) + 10, "sent \(uploaded) bytes after \(partsBeforeKill) parts were stored")
            #expect(resumed.output.contains("resuming an interrupted upload"))

            let rows = try await harness.rows()
            #expect(rows.map(\.path).sorted() == ["docs/small.txt", "video/tape-01.dv"], "no row duplicated or lost")
            let tape = try #require(rows.first { $0.path == "video/tape-01.dv" })
            #expect(tape.hash == UploaderHarness.sha256(big))
            #expect(try await harness.stagedHash(try #require(tape.storageKey)) == tape.hash)
            #expect(try await harness.scalar("SELECT count(*) FROM pending_uploads", as: Int64.self) == 0)
            #expect(try await harness.staging.listMultipartUploads(prefix: "").isEmpty, "no multipart upload left behind")

            // And a third run is a no-op, as after an uninterrupted run.
            let third = try await harness.upload(extra: ["--concurrency", "1"])
            #expect(third.summary["unchanged"] as? Int == 2)
        }
    }

    @Test("Ctrl-C stops cleanly, says how to resume, and the next run finishes")
    func interruptedBySIGINT() async throws {
        try await UploaderHarness.with(.s3) { harness in
            try harness.write("big.bin", UploaderHarness.bytes(count: 60_000_000, seed: 3))
            // Held to 8 MiB/s, so the file is still being sent (about 7 s) when the signal comes after its first
            // part; unlimited, a loaded machine's polling once saw the whole file sent before the signal.
            let child = try harness.startUpload(extra: ["--concurrency", "1", "--bwlimit", "8M"])
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let parts = await harness.storedParts()
                if parts >= 1 { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            child.signal(SIGINT)
            let interrupted = try await child.wait()
            #expect(interrupted.status == 130, "\(interrupted.output)")
            #expect(interrupted.output.contains("run the same command again"))
            let finished = try await harness.upload()
            #expect(finished.status == 0)
            #expect(try await harness.rows().map(\.state) == ["staged"])
        }
    }
}

extension UploaderHarness {
    /// Parts of the pending multipart upload the catalog has recorded (0 before the uploader created its tables).
    func storedParts() async -> Int32 {
        (try? await scalar("SELECT coalesce(max(jsonb_array_length(multipart_state->'parts')), 0)::int FROM pending_uploads", as: Int32.self)) ?? 0
    }
}
