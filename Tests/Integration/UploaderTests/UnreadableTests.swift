import Catalog
import Foundation
import ObjectStore
import Testing
import TestSupport
import SystemIO

/// A scratched disc: reads of one file fail with EIO. The uploader process is real; the I/O error comes from a
/// tiny LD_PRELOAD library (compiled here) that fails `pread` on files whose name contains "scratched".
@Suite("uploader and unreadable media")
struct UnreadableTests {
    static func failingReadLibrary(in directory: String) async throws -> String {
        let source = directory + "/eio.c"
        let library = directory + "/eio.so"
        try """
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <errno.h>
            #include <stdio.h>
            #include <string.h>
            #include <unistd.h>
            #include <sys/types.h>
            #include <stdlib.h>
            /* A file named "scratched…" fails entirely, or only in [EIO_BAD_FROM, EIO_BAD_TO) when those are set. */
            static int scratched_at(int fd, off_t offset, size_t count) {
                char link[64], target[4096];
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                ssize_t n = readlink(link, target, sizeof target - 1);
                if (n < 0) return 0;
                target[n] = 0;
                if (strstr(target, "scratched") == NULL) return 0;
                const char *from = getenv("EIO_BAD_FROM"), *to = getenv("EIO_BAD_TO");
                if (!from || !to) return 1;
                return offset < atoll(to) && offset + (off_t)count > atoll(from);
            }
            ssize_t pread64(int fd, void *buf, size_t count, off_t offset) {
                static ssize_t (*real)(int, void *, size_t, off_t);
                if (!real) real = dlsym(RTLD_NEXT, "pread64");
                if (scratched_at(fd, offset, count)) { errno = EIO; return -1; }
                return real(fd, buf, count, offset);
            }
            ssize_t pread(int fd, void *buf, size_t count, off_t offset) { return pread64(fd, buf, count, offset); }
            ssize_t read(int fd, void *buf, size_t count) {
                static ssize_t (*real)(int, void *, size_t);
                if (!real) real = dlsym(RTLD_NEXT, "read");
                if (getenv("EIO_BAD_FROM") == NULL && scratched_at(fd, 0, count)) { errno = EIO; return -1; }
                return real(fd, buf, count);
            }
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let compile = try await Subprocess.run("/usr/bin/cc", ["-shared", "-fPIC", "-O1", "-o", library, source, "-ldl"])
        #expect(compile.status == 0, "\(compile.output)")
        return library
    }

    @Test("an unreadable file is retried, recorded unreadable with its error, and the run goes on and exits 1")
    func unreadableFile() async throws {
        try await UploaderHarness.with(.file) { harness in
            try harness.write("good-1.txt", "fine")
            try harness.write("scratched-video.mpg", UploaderHarness.bytes(count: 50_000, seed: 9))
            try harness.write("good-2.txt", "also fine")
            let library = try await Self.failingReadLibrary(in: harness.work.path)

            let run = try await harness.upload(environment: ["LD_PRELOAD": library])
            #expect(run.status == 1, "\(run.output)")
            #expect((run.summary["unreadable"] as? [String]) == ["scratched-video.mpg"])
            let rows = try await harness.rows()
            #expect(rows.map(\.state) == ["staged", "staged", "unreadable"])
            let bad = try #require(rows.last)
            #expect(bad.path == "scratched-video.mpg")
            #expect(bad.hash == nil)
            #expect(bad.error?.contains("Input/output error") == true, "\(bad.error ?? "")")

            // The disc read fine the next time: the same row gets its content, no new version.
            let retry = try await harness.upload()
            #expect(retry.status == 0, "\(retry.output)")
            let after = try await harness.rows().first { $0.path == "scratched-video.mpg" }
            #expect(after?.state == "staged")
            #expect(after?.version == 1)
            #expect(after?.error == nil)
        }
    }

    @Test("an image with bad sectors is stored degraded, zeros in their place, with its ddrescue map")
    func degradedDiscImage() async throws {
        try await UploaderHarness.with(.file) { harness in
            let sectors = 2_000
            let disc = UploaderHarness.bytes(count: sectors * 2048, seed: 11)
            let image = harness.work.path + "/scratched-disc.iso"
            FileManager.default.createFile(atPath: image, contents: Data(disc))
            let library = try await Self.failingReadLibrary(in: harness.work.path)
            let badFrom = 700 * 2048, badTo = 703 * 2048

            let result = try await Program.run("uploader", ["image", image, "--label", "Blu-ray 3", "--retry-passes", "1"], environment: harness.environment.merging([
                "LD_PRELOAD": library, "EIO_BAD_FROM": "\(badFrom)", "EIO_BAD_TO": "\(badTo)",
            ]) { $1 })
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains("DEGRADED: 6144 bytes could not be read"))

            var expected = disc
            expected.replaceSubrange(badFrom..<badTo, with: [UInt8](repeating: 0, count: badTo - badFrom))
            let rows = try await harness.rows()
            #expect(rows.count == 1)
            let row = try #require(rows.first)
            #expect(row.kind == "disc_image")
            #expect(row.size == Int64(disc.count))
            #expect(row.hash == UploaderHarness.sha256(expected), "the image holds zeros where sectors failed")
            #expect(try await harness.scalar("SELECT degraded FROM objectstoragefiles", as: Bool.self) == true)
            let mapKey = try #require(try await harness.scalar("SELECT details->>'rescue_map_key' FROM objectstoragefiles", as: String.self))
            let map = String(decoding: try await harness.staging.getBytes(mapKey), as: UTF8.self)
            #expect(map.contains("0x0015E000  0x00001800  -"), "the map lists the bad area: \(map)")
        }
    }

    @Test("a clean image is stored clean, exit 0")
    func cleanDiscImage() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let disc = UploaderHarness.bytes(count: 30_000 * 2048, seed: 12)
            let image = harness.work.path + "/home-movies.iso"
            FileManager.default.createFile(atPath: image, contents: Data(disc))
            let result = try await Program.run("uploader", ["image", image, "--label", "DVD 7"], environment: harness.environment)
            #expect(result.status == 0, "\(result.output)")
            let row = try #require(try await harness.rows().first)
            #expect(row.kind == "disc_image")
            #expect(row.hash == UploaderHarness.sha256(disc))
            #expect(try await harness.stagedHash(try #require(row.storageKey)) == row.hash)
            #expect(try await harness.scalar("SELECT degraded FROM objectstoragefiles", as: Bool.self) == false)
        }
    }
}
