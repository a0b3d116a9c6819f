import Catalog
import Foundation
import ObjectStore
import Testing
import TestSupport

/// A scratched disc: reads of one file fail with EIO. The uploader process is real; the I/O error comes from a
/// tiny LD_PRELOAD library (compiled here) that fails `pread` on files whose name contains "scratched".
@Suite("uploader and unreadable files")
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
            static int scratched(int fd) {
                char link[64], target[4096];
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                ssize_t n = readlink(link, target, sizeof target - 1);
                if (n < 0) return 0;
                target[n] = 0;
                return strstr(target, "scratched") != NULL;
            }
            ssize_t pread64(int fd, void *buf, size_t count, off_t offset) {
                static ssize_t (*real)(int, void *, size_t, off_t);
                if (!real) real = dlsym(RTLD_NEXT, "pread64");
                if (scratched(fd)) { errno = EIO; return -1; }
                return real(fd, buf, count, offset);
            }
            ssize_t pread(int fd, void *buf, size_t count, off_t offset) { return pread64(fd, buf, count, offset); }
            ssize_t read(int fd, void *buf, size_t count) {
                static ssize_t (*real)(int, void *, size_t);
                if (!real) real = dlsym(RTLD_NEXT, "read");
                if (scratched(fd)) { errno = EIO; return -1; }
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
}
