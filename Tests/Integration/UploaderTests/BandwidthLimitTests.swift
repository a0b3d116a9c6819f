import Foundation
import SystemIO
import Testing
import TestSupport

/// `--bwlimit` and `--window` on the real programs, measured on the wire: the uploader (or restore) talks to moto
/// through `RateProxy`, which counts the bytes per 100 ms on its side of the sockets. Serialized: each test times a
/// transfer, and two at once on a 2-core machine would measure each other.
@Suite("bandwidth limits and transfer windows, measured at a loopback proxy", .serialized)
struct BandwidthLimitTests {
    static let mebibyte = 1 << 20

    /// `HH:MM:SS` in UTC of `date` (the tests pass `--timezone UTC`).
    static func clock(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.hour, .minute, .second], from: date)
        return String(format: "%02d:%02d:%02d", parts.hour!, parts.minute!, parts.second!)
    }

    func proxied(_ harness: PipelineHarness, _ proxy: RateProxy) -> [String: String] {
        harness.environment.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
    }

    /// Now, rounded up to a whole second: the windows and timetables below are written to the second.
    static func wholeSecondNow() -> Date { Date(timeIntervalSince1970: (Date().timeIntervalSince1970).rounded(.up)) }

    /// Within `tolerance` of the target; with `below`, a shortfall down to that fraction is accepted too (a sender
    /// starved of CPU for a moment on a loaded machine sends less; a limiter must never let it send more).
    func expectNear(_ measured: Double, _ target: Double, tolerance: Double = 0.10, below: Double? = nil, _ what: String) {
        print("bwlimit measured: \(what): \(Int(measured / 1024)) KiB/s for \(Int(target / 1024)) KiB/s (\(String(format: "%+.1f", (measured / target - 1) * 100)) %)")
        let low = target * (1 - (below ?? tolerance)), high = target * (1 + tolerance)
        #expect(measured >= low && measured <= high,
                "\(what): \(Int(measured / 1024)) KiB/s measured, \(Int(low / 1024))…\(Int(high / 1024)) KiB/s wanted")
    }

    @Test("--bwlimit 1M: 40 MiB in 4 parts at once (two files of 2 parts) hold 1 MiB/s ± 10 % over 30 s, all connections together")
    func plainRate() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let files = (0..<2).map { PipelineHarness.bytes(count: 20 * Self.mebibyte, seed: UInt64(40 + $0)) }
            for (index, bytes) in files.enumerated() { try harness.write("video-\(index).dv", bytes) }
            let proxy = try await RateProxy()
            let result = try await Program.run(
                "uploader", ["upload", harness.source.path, "--label", "DVD 12", "--json", "--concurrency", "2", "--bwlimit", "1M"],
                environment: proxied(harness, proxy))
            let counts = try await proxy.stop()
            #expect(result.status == 0, "\(result.output)")
            #expect(try await harness.rows().filter { $0.state == "staged" }.count == 2)

            let active = try #require(RateProxy.Counts.active(counts.up, threshold: 4096))
            let seconds = Double(active.count) * counts.bucket
            #expect(seconds >= 37 && seconds <= 45, "40 MiB at 1 MiB/s take about 40 s, took \(seconds) s")
            // The first 2 s fill the socket buffers; the middle 30 s must hold the rate, as must every 5 s of them.
            let middle = (active.lowerBound + 20)...(active.lowerBound + 319)
            expectNear(counts.rate(counts.up, middle), Double(Self.mebibyte), "over 30 s")
            for start in stride(from: middle.lowerBound, to: middle.upperBound, by: 50) {
                // Never more than 15 % over in any 5 s; a dip (the uploader waiting for CPU) may go lower.
                expectNear(counts.rate(counts.up, start...(start + 49)), Double(Self.mebibyte), tolerance: 0.15, below: 0.30,
                           "5 s from \(Double(start - active.lowerBound) / 10) s")
            }
        }
    }

    @Test("a timetable whose rate changes during the upload: 512K, then 2M at the time it names, without a restart")
    func timetable() async throws {
        try await PipelineHarness.with(.s3) { harness in
            try harness.write("disc.iso", PipelineHarness.bytes(count: 24 * Self.mebibyte, seed: 7))
            let proxy = try await RateProxy()
            let now = Self.wholeSecondNow()
            let change = now.addingTimeInterval(14)
            let timetable = "\(Self.clock(now.addingTimeInterval(-60))),512K \(Self.clock(change)),2M"
            let result = try await Program.run(
                "uploader", ["upload", harness.source.path, "--label", "DVD 12", "--json", "--bwlimit", timetable, "--timezone", "UTC"],
                environment: proxied(harness, proxy))
            let counts = try await proxy.stop()
            #expect(result.status == 0, "\(result.output)")
            let active = try #require(RateProxy.Counts.active(counts.up, threshold: 4096))
            let changeBucket = counts.bucket(at: change)
            #expect(active.lowerBound + 60 < changeBucket, "the upload started well before the change")
            expectNear(counts.rate(counts.up, (active.lowerBound + 20)...(changeBucket - 5)), 512 * 1024, "before \(Self.clock(change))")
            #expect(active.upperBound > changeBucket + 40, "still sending 4 s after the change")
            expectNear(counts.rate(counts.up, (changeBucket + 10)...(active.upperBound - 5)), 2.0 * Double(Self.mebibyte), "after \(Self.clock(change))")
        }
    }

    @Test("a window that closes mid-upload: the transfer in flight finishes, nothing new starts, the upload resumes when the next window opens")
    func windowClosesMidUpload() async throws {
        try await PipelineHarness.with(.s3) { harness in
            // 6 s per file at 1 MiB/s: the second file is in flight at the close whether the uploader needs 0 or 3 s to start.
            for index in 0..<3 { try harness.write("file-\(index).bin", PipelineHarness.bytes(count: 6 * Self.mebibyte, seed: UInt64(90 + index))) }
            let proxy = try await RateProxy()
            let now = Self.wholeSecondNow()
            let close = now.addingTimeInterval(9)
            let reopen = now.addingTimeInterval(22)
            let result = try await Program.run(
                "uploader", [
                    "upload", harness.source.path, "--label", "DVD 12", "--json", "--concurrency", "1", "--bwlimit", "1M", "--timezone", "UTC",
                    "--window", "\(Self.clock(now.addingTimeInterval(-60)))-\(Self.clock(close))",
                    "--window", "\(Self.clock(reopen))-\(Self.clock(reopen.addingTimeInterval(3600)))",
                ],
                environment: proxied(harness, proxy))
            let counts = try await proxy.stop()
            #expect(result.status == 0, "\(result.output)")
            #expect(try await harness.rows().filter { $0.state == "staged" }.count == 3)
            // The message writes a time on the minute without its seconds ("10:04", not "10:04:00").
            let reopenText = Self.clock(reopen).hasSuffix(":00") ? String(Self.clock(reopen).dropLast(3)) : Self.clock(reopen)
            let pauses = result.output.components(separatedBy: "paused until \(reopenText)").count - 1
            #expect(pauses == 1, "one line says when the upload goes on: \(result.output)")

            let closeBucket = counts.bucket(at: close)
            let reopenBucket = counts.bucket(at: reopen)
            // A file was being sent when the window closed, and was finished (6 MiB at 1 MiB/s: within 6.5 s)…
            #expect(counts.up[(closeBucket - 5)...closeBucket].reduce(0, +) > 100_000, "a transfer is in flight at the close")
            let lastBeforeReopen = try #require(counts.up[..<reopenBucket].lastIndex { $0 > 4096 })
            #expect(lastBeforeReopen > closeBucket, "the transfer in flight went on after the close")
            #expect(lastBeforeReopen <= closeBucket + 65, "and ended within one file's time")
            // …then nothing until the next window, then the rest.
            let quiet = counts.up[min(lastBeforeReopen + 3, reopenBucket - 1)..<(reopenBucket - 1)].reduce(0, +)
            #expect(quiet < 16 * 1024, "\(quiet) bytes sent while outside every window")
            print("bwlimit measured: window closed at bucket \(closeBucket), in-flight transfer ended at \(lastBeforeReopen), reopened at \(reopenBucket)")
            let afterReopen = try #require(counts.up[reopenBucket...].firstIndex { $0 > 4096 })
            #expect(afterReopen <= reopenBucket + 20, "resumed within 2 s of the opening")
            #expect(counts.up[reopenBucket...].reduce(0, +) >= 6 * Self.mebibyte, "the third file after the opening")
        }
    }

    @Test("restore downloads under --bwlimit off:1M: the download side holds 1 MiB/s ± 10 %")
    func restoreDownloadLimit() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let bytes = PipelineHarness.bytes(count: 24 * Self.mebibyte, seed: 11)
            try harness.write("movie.mkv", bytes)
            #expect(try await harness.upload().status == 0)
            let archived = try await harness.archiveOnce()
            #expect(archived.status == 0, "\(archived.output)")

            let proxy = try await RateProxy()
            let directory = harness.work.path + "/restored"
            let result = try await Program.run(
                "uploader", ["restore", "--source", "DVD 12", "--to", directory, "--json", "--bwlimit", "off:1M"],
                environment: proxied(harness, proxy))
            let counts = try await proxy.stop()
            #expect(result.status == 0, "\(result.output)")
            #expect(FileManager.default.contents(atPath: directory + "/DVD 12/movie.mkv").map(Array.init) == bytes)
            let active = try #require(RateProxy.Counts.active(counts.down, threshold: 4096))
            // A download is limited by reading slowly: the kernel's socket buffers (several MiB on loopback) take the
            // first bytes at once, so the first 3 s are left out; from then on the rate must hold.
            let middle = (active.lowerBound + 30)...(active.upperBound - 10)
            #expect(middle.count >= 100, "at least 10 s measured, \(middle.count) buckets")
            expectNear(counts.rate(counts.down, middle), Double(Self.mebibyte), "download")
        }
    }

    @Test("verify and audit read back under --bwlimit off:1M: each stays within 1 MiB/s + 10 % on the download side (a starved reader may fall to -30 %); rebuild-catalog takes the same flags")
    func verifyAndAuditDownloadLimit() async throws {
        try await PipelineHarness.with(.s3) { harness in
            // A warm source: its objects are readable at once, so verify and audit read every byte back.
            let bytes = PipelineHarness.bytes(count: 24 * Self.mebibyte, seed: 12)
            try harness.write("scan.tiff", bytes)
            #expect(try await harness.upload(extra: ["--tier", "warm"]).status == 0)
            let archived = try await harness.archiveOnce()
            #expect(archived.status == 0, "\(archived.output)")

            for command in [["verify", "--source", "DVD 12"], ["audit", "--source", "DVD 12"]] {
                let proxy = try await RateProxy()
                let result = try await Program.run(
                    "uploader", command + ["--json", "--bwlimit", "off:1M"], environment: proxied(harness, proxy))
                let counts = try await proxy.stop()
                #expect(result.status == 0, "\(command[0]): \(result.output)")
                let active = try #require(RateProxy.Counts.active(counts.down, threshold: 4096), "\(command[0]) read nothing back")
                // As for restore: the socket buffers take the first few MiB at once, so the first 3 s are left out.
                let middle = (active.lowerBound + 30)...(active.upperBound - 10)
                #expect(middle.count >= 70, "\(command[0]): at least 7 s measured, \(middle.count) buckets")
                // Never above the limit; below it only when the reader was starved on a loaded machine.
                expectNear(counts.rate(counts.down, middle), Double(Self.mebibyte), below: 0.30, "\(command[0]) download")
            }

            // rebuild-catalog reads the same flags; a bad one stops it before the database or the archive is touched.
            let refused = try await Program.run("uploader", ["rebuild-catalog", "--bwlimit", "1X"], environment: harness.environment)
            #expect(refused.status == 2, "\(refused.output)")
            #expect(refused.output.contains(#"--bwlimit "1X""#), "\(refused.output)")
        }
    }
}
