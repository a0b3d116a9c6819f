import Foundation
import SystemIO
import Testing
import TestSupport

@Suite("uploader upload in a git work tree: what git ignores is left out and counted, --no-gitignore keeps it")
struct GitIgnoreUploadTests {
    @Test("a code folder with build output: the catalog holds what git lists, the summary counts what was left out")
    func codeFolder() async throws {
        try await UploaderHarness.with(.s3) { harness in
            let project = harness.source.path + "/project"
            _ = try harness.write("project/.gitignore", "node_modules/\ntarget/\n*.log\n")
            try harness.write("project/src/main.rs", "fn main() {}")
            try harness.write("project/target/debug/app", UploaderHarness.bytes(count: 200_000, seed: 1))
            try harness.write("project/node_modules/left-pad/index.js", UploaderHarness.bytes(count: 30_000, seed: 2))
            try harness.write("project/node_modules/left-pad/package.json", "{}")
            try harness.write("project/build.log", "noise")
            try harness.write("project/kept.log", "tracked although *.log is ignored")
            try harness.write("photos/beach.jpg", UploaderHarness.bytes(count: 50_000, seed: 3))
            try await blocking {
                try TestGit.run(["init", "-q", "-b", "main"], in: project)
                try TestGit.run(["add", "-f", "kept.log", "src/main.rs", ".gitignore"], in: project)
                try TestGit.run(["commit", "-q", "-m", "first"], in: project)
            }

            let result = try await harness.upload(label: "Old laptop")
            #expect(result.status == 0, "\(result.output)")
            let paths = Set(try await harness.rows().map(\.path))
            // What git lists, and the repository kept whole as one file.
            #expect(paths.isSuperset(of: ["project/.gitignore", "project/src/main.rs", "project/kept.log", "photos/beach.jpg", "project/.git"]))
            #expect(!paths.contains { $0.hasPrefix("project/.git/") })
            #expect(!paths.contains { $0.contains("node_modules") || $0.contains("target/") || $0.hasSuffix("build.log") })
            #expect(result.summary["git_ignored_files"] as? Int == 4)
            #expect(result.summary["git_ignored_bytes"] as? Int == 200_000 + 30_000 + 2 + 5)
            let skipped = result.summary["skipped"] as? [String] ?? []
            #expect(skipped.contains("project/node_modules/: ignored by git (2 files, 29.3 KiB)"), "\(skipped)")
            #expect(skipped.contains("project/build.log: ignored by git"))

            // Archived: the audit calls the source safe, and says what was deliberately left out.
            #expect(try await harness.archiveOnce().status == 0)
            let audit = try await Program.run("uploader", ["audit", "--source", "Old laptop"], environment: harness.environment)
            #expect(audit.status == 0, "\(audit.output)")
            // Not a terminal: one JSON line per source (node_modules/, target/ and build.log are 3 paths).
            #expect(audit.output.contains("\"entries_not_stored\":3") && audit.output.contains("\"safe\":true"), "\(audit.output)")

            // Asked for: everything is kept, in a source of its own.
            let all = try await harness.upload(label: "Old laptop, everything", extra: ["--no-gitignore"])
            #expect(all.status == 0, "\(all.output)")
            #expect(all.summary["git_ignored_files"] as? Int == 0)
            let everything = try await harness.scalar(
                "SELECT count(*) FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id WHERE s.label = 'Old laptop, everything' AND (f.path LIKE '%node_modules%' OR f.path LIKE '%target/%' OR f.path LIKE '%build.log')",
                as: Int64.self)
            #expect(everything == 4)
        }
    }
}
