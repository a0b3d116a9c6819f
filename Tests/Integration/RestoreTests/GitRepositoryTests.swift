import Foundation
import SystemIO
import Testing
import TestSupport

/// Repositories made at test time with Debian's git: history, branches, tags, stashes, staged and unstaged changes,
/// an untracked file, an ignored build folder, a hook, config, a submodule and a bare repository. Uploaded,
/// archived and restored through the real stack; git then shows each as it was.
@Suite("git repositories kept whole: stored as one verified bundle and the rest of .git, restored as they were")
struct GitRepositoryTests {
    /// What git says about a repository, for comparing the original with the restored one.
    struct GitView: Equatable {
        var refs: String
        var status: String
        var stashes: String
        var olderStash: String
        var config: String
        var submodules: String
    }

    static func view(_ workTree: String) throws -> GitView {
        GitView(
            refs: try TestGit.run(["log", "--all", "--format=%H %D %s"], in: workTree),
            status: try TestGit.run(["status", "--porcelain=v1", "--branch"], in: workTree),
            stashes: try TestGit.run(["stash", "list"], in: workTree),
            olderStash: try TestGit.run(["stash", "show", "-p", "stash@{1}"], in: workTree),
            config: try TestGit.run(["config", "--get", "backup.test"], in: workTree),
            submodules: try TestGit.run(["submodule", "status"], in: workTree))
    }

    /// `code/` (a work tree with everything git users leave lying around, and a submodule) and
    /// `backups/project.git` (a bare repository) in the source.
    static func makeRepositories(_ harness: PipelineHarness) throws {
        let library = harness.work.path + "/library"
        try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
        try TestGit.run(["init", "-q", "-b", "main"], in: library)
        try Data("lib".utf8).write(to: URL(fileURLWithPath: library + "/lib.c"))
        try TestGit.run(["add", "."], in: library)
        try TestGit.run(["commit", "-q", "-m", "library"], in: library)

        let code = harness.source.path + "/code"
        func write(_ path: String, _ text: String) throws {
            try FileManager.default.createDirectory(atPath: ((code + "/" + path) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: code + "/" + path))
        }
        try FileManager.default.createDirectory(atPath: code, withIntermediateDirectories: true)
        try TestGit.run(["init", "-q", "-b", "main"], in: code)
        try write(".gitignore", "build/\n")
        try write("main.c", "int main() { return 0; }\n")
        try write("notes.txt", "first\n")
        try TestGit.run(["add", "."], in: code)
        try TestGit.run(["commit", "-q", "-m", "first"], in: code)
        try TestGit.run(["tag", "-a", "v1", "-m", "version one"], in: code)
        try TestGit.run(["-c", "protocol.file.allow=always", "submodule", "--quiet", "add", library, "libs/library"], in: code)
        try TestGit.run(["commit", "-q", "-m", "a submodule"], in: code)
        try TestGit.run(["checkout", "-q", "-b", "feature"], in: code)
        try write("feature.c", "feature\n")
        try TestGit.run(["add", "feature.c"], in: code)
        try TestGit.run(["commit", "-q", "-m", "feature"], in: code)
        try TestGit.run(["checkout", "-q", "main"], in: code)
        try TestGit.run(["tag", "light"], in: code)
        // Two stashes (the older one reachable only from the stash's reflog).
        try write("notes.txt", "stashed once\n")
        try TestGit.run(["stash", "-q"], in: code)
        try write("notes.txt", "stashed twice\n")
        try TestGit.run(["stash", "-q"], in: code)
        // A staged change (its blob only in the index), an unstaged one, an untracked file, an ignored build.
        try write("main.c", "int main() { return 1; }\n")
        try TestGit.run(["add", "main.c"], in: code)
        try write("notes.txt", "not staged\n")
        try write("scratch.txt", "untracked\n")
        try write("build/app.o", String(repeating: "o", count: 5000))
        try TestGit.run(["config", "backup.test", "kept"], in: code)
        try write(".git/hooks/pre-commit", "#!/bin/sh\necho checked\n")

        // A linked worktree beside the repository, on the feature branch.
        try TestGit.run(["worktree", "add", "-q", harness.source.path + "/code-feature", "feature"], in: code)
        try TestGit.run(["-c", "protocol.file.allow=always", "submodule", "--quiet", "update", "--init"], in: harness.source.path + "/code-feature")
        try FileManager.default.createDirectory(atPath: harness.source.path + "/backups", withIntermediateDirectories: true)
        try TestGit.run(["clone", "-q", "--bare", code, harness.source.path + "/backups/project.git"], in: harness.work.path)
    }

    @Test("a work tree with stashes, staged and untracked changes, a hook and a submodule, and a bare repository: git shows them as they were")
    func keptWholeAndRestored() async throws {
        try await PipelineHarness.with(.file) { harness in
            let code = harness.source.path + "/code"
            let bare = harness.source.path + "/backups/project.git"
            let (original, bareLog) = try await blocking {
                try Self.makeRepositories(harness)
                return (try Self.view(code), try TestGit.run(["--git-dir=" + bare, "log", "--all", "--format=%H %D"], in: harness.work.path))
            }

            let upload = try await harness.upload(label: "Laptop")
            #expect(upload.status == 0, "\(upload.output)")
            #expect(upload.summary["git_repositories"] as? Int == 2)
            let rows = try await harness.rows()
            #expect(!rows.contains { $0.path.hasPrefix("code/.git/") || $0.path.hasPrefix("backups/project.git/") })
            #expect(rows.contains { $0.path == "code/libs/library/.git" }, "the submodule's .git file is a file")
            #expect(!rows.contains { $0.path.hasPrefix("code/build/") }, "ignored by git")
            let layouts = try await harness.scalar(
                "SELECT string_agg(path || '=' || (details->>'git_repository') || ',' || (details->>'git_bare'), ' ' ORDER BY path) FROM objectstoragefiles WHERE details ? 'git_repository'",
                as: String.self)
            #expect(layouts == "backups/project.git=bundle,true code/.git=bundle,false")

            // The same repositories again: the same bytes, so no new version.
            let again = try await harness.upload(label: "Laptop")
            #expect(again.status == 0, "\(again.output)")
            #expect(try await harness.scalar("SELECT max(version) FROM objectstoragefiles WHERE details ? 'git_repository'", as: Int.self) == 1)

            #expect(try await harness.archiveOnce().status == 0)
            let directory = restoreDirectory(harness)
            let restore = try await harness.restore(["--source", "Laptop"], to: directory)
            #expect(restore.status == 0, "\(restore.output)")
            let restoredCode = directory + "/Laptop/code"
            let restoredBare = directory + "/Laptop/backups/project.git"
            let (restored, restoredBareLog, fsck, hook) = try await blocking {
                (try Self.view(restoredCode),
                 try TestGit.run(["--git-dir=" + restoredBare, "log", "--all", "--format=%H %D"], in: harness.work.path),
                 try TestGit.run(["fsck", "--no-dangling"], in: restoredCode),
                 try String(contentsOfFile: restoredCode + "/.git/hooks/pre-commit", encoding: .utf8))
            }
            #expect(restored == original)
            #expect(restored.stashes.split(separator: "\n").count == 2 && restored.status.contains("M  main.c") && restored.status.contains("?? scratch.txt"))
            #expect(restoredBareLog == bareLog && !bareLog.isEmpty)
            #expect(fsck.isEmpty)
            #expect(hook.contains("echo checked"))
            #expect(!FileManager.default.fileExists(atPath: restoredCode + "/.git.git-repository.tar"))

            // The linked worktree: its .git file names the old place; `git worktree repair` (as the README says) fixes it.
            let restoredWorktree = directory + "/Laptop/code-feature"
            let worktreeStatus = try await blocking { () -> String in
                try TestGit.run(["worktree", "repair", restoredWorktree], in: restoredCode)
                return try TestGit.run(["status", "--porcelain=v1", "--branch"], in: restoredWorktree)
            }
            #expect(worktreeStatus == "## feature\n", "\(worktreeStatus)")

            // Run again: the repositories are in place, nothing is downloaded.
            let second = try await harness.restore(["--source", "Laptop"], to: directory)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.files("already_present").contains("Laptop/code/.git") && second.summary["bytes_downloaded"] as? Int == 0)
        }
    }

    @Test("a repository without a commit cannot be bundled: kept as the directory it is, staged files included")
    func noCommitYet() async throws {
        try await PipelineHarness.with(.file) { harness in
            let fresh = harness.source.path + "/fresh"
            try await blocking {
                try FileManager.default.createDirectory(atPath: fresh, withIntermediateDirectories: true)
                try TestGit.run(["init", "-q", "-b", "main"], in: fresh)
                try Data("draft".utf8).write(to: URL(fileURLWithPath: fresh + "/draft.txt"))
                try TestGit.run(["add", "draft.txt"], in: fresh)
            }
            let upload = try await harness.upload(label: "Fresh")
            #expect(upload.status == 0, "\(upload.output)")
            let notes = upload.summary["notes"] as? [String] ?? []
            #expect(notes.contains { $0.hasPrefix("git repository fresh/.git: git could not bundle it") }, "\(notes)")
            #expect(try await harness.scalar("SELECT details->>'git_repository' FROM objectstoragefiles WHERE path = 'fresh/.git'", as: String.self) == "directory")
            #expect(try await harness.archiveOnce().status == 0)
            let directory = restoreDirectory(harness)
            #expect(try await harness.restore(["--source", "Fresh"], to: directory).status == 0)
            let status = try await blocking { try TestGit.run(["status", "--porcelain=v1"], in: directory + "/Fresh/fresh") }
            #expect(status == "A  draft.txt\n")

            // Unchanged: not made again (no git, no tar) and no new version. A first commit: a new version, now a bundle.
            let again = try await harness.upload(label: "Fresh")
            #expect(again.status == 0 && again.summary["unchanged"] as? Int == 2, "\(again.output)")
            try await blocking { try TestGit.run(["commit", "-q", "-m", "first"], in: fresh) }
            let committed = try await harness.upload(label: "Fresh")
            #expect(committed.status == 0 && committed.summary["staged"] as? Int == 1, "\(committed.output)")
            #expect(try await harness.scalar(
                "SELECT version || ':' || (details->>'git_repository') FROM objectstoragefiles WHERE path = 'fresh/.git' ORDER BY version DESC LIMIT 1",
                as: String.self) == "2:bundle")
        }
    }
}
