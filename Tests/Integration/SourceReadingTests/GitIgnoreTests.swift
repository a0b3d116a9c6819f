import Foundation
import SystemIO
import Testing
import TestSupport
@testable import SourceReading

/// `git` as the oracle: in git work trees the walker keeps exactly what `git ls-files --cached --others
/// --exclude-standard` lists (tracked files, and untracked ones git does not ignore), nested repositories each by
/// their own rules, and everything inside `.git` as it is.
@Suite("git work trees: what git ignores is left out, exactly as git reads it", .onOwnThreads)
struct GitIgnoreTests {
    /// Random trees, `.gitignore` files at random depths, `.git/info/exclude`, tracked files that patterns match,
    /// and nested repositories, from patterns that exercise git's corners. The seed is printed for a failure.
    @Test("random trees: the walker keeps what git lists, for every seed")
    func randomTrees() async throws {
        let base = UInt64(Date().timeIntervalSince1970)
        for round in 0..<40 {
            let seed = base &+ UInt64(round) &* 0x9E37_79B9
            let dir = try TemporaryDirectory()
            let path = dir.path
            // Dozens of git runs per tree: on the thread pool, never on the cooperative pool.
            let (root, expected) = try await blocking {
                var random = SeededRandom(seed: seed)
                let root = try GitTreeGenerator.makeRepository(at: path, random: &random)
                return (root, try GitOracle.keptFiles(repository: root))
            }
            let kept = try await walkKeptFiles(root, respectGitIgnore: true)
            let missing = expected.subtracting(kept).sorted(), extra = kept.subtracting(expected).sorted()
            #expect(missing.isEmpty && extra.isEmpty, """
                seed \(seed): the walker and git disagree
                  git keeps, the walker leaves out: \(missing)
                  the walker keeps, git ignores: \(extra)
                  ignore files: \(GitTreeGenerator.describeIgnoreFiles(root))
                """)
            if !missing.isEmpty || !extra.isEmpty { break }
        }
    }

    @Test("the corners by name: nested rules, info/exclude, negation, anchoring, **, directory-only, no re-include below an excluded directory, tracked files kept")
    func corners() async throws {
        let dir = try TemporaryDirectory()
        let root = dir.path + "/project"
        let expected = try await blocking {
            try Git.initRepository(root)
            try dir.write("project/.gitignore", "*.log\n!important.log\n/build\nnode_modules/\n**/cache\ndocs/**/draft-*\nvendor/\n!vendor/keep.txt\n")
            try dir.write("project/.git/info/exclude", "secret-notes.txt\n")
            try dir.write("project/src/.gitignore", "!debug.log\ngenerated/\n")
            for path in ["src/main.c", "src/debug.log", "src/trace.log", "src/generated/out.c", "build/app", "src/build/kept.c",
                         "important.log", "noise.log", "node_modules/left/index.js", "a/b/cache/blob", "cache", "docs/x/y/draft-1.md",
                         "docs/final.md", "vendor/keep.txt", "secret-notes.txt", "tracked.log"] {
                try dir.write("project/" + path, path)
            }
            try Git.run(["add", "-f", "tracked.log"], in: root)
            try Git.run(["commit", "-q", "-m", "one"], in: root)
            return try GitOracle.keptFiles(repository: root)
        }
        do {
            let kept = try await walkKeptFiles(root, respectGitIgnore: true)
            #expect(kept == expected)
            #expect(kept.isSuperset(of: ["src/main.c", "src/debug.log", "src/build/kept.c", "important.log", "docs/final.md", "tracked.log", ".gitignore"]))
            #expect(kept.isDisjoint(with: ["src/trace.log", "src/generated/out.c", "build/app", "noise.log", "node_modules/left/index.js",
                                           "a/b/cache/blob", "cache", "docs/x/y/draft-1.md", "vendor/keep.txt", "secret-notes.txt"]))

            // The summary counts what was left out; whole directories are not entered but are counted.
            let (entries, summary) = try await walk(root, respectGitIgnore: true)
            let ignored = entries.compactMap { if case .gitIgnored(let entry) = $0 { entry } else { nil } }
            #expect(ignored.contains { $0.relativePath == "node_modules" && $0.isDirectory && $0.files == 1 })
            #expect(summary.gitIgnoredFiles == 10)
            #expect(summary.gitIgnoredBytes == ignored.reduce(0) { $0 + $1.bytes })

            // Turned off: every file is kept.
            let all = try await walkKeptFiles(root, respectGitIgnore: false)
            #expect(all.count == 18 && all.contains("node_modules/left/index.js"))
        }
    }

    @Test("a submodule and a nested repository follow their own rules; the outer rules do not reach into them")
    func nestedRepositories() async throws {
        let dir = try TemporaryDirectory()
        let root = dir.path + "/app"
        let expected = try await blocking {
            let library = dir.path + "/library"
            try Git.initRepository(library)
            try dir.write("library/.gitignore", "*.tmp\n")
            try dir.write("library/lib.c", "lib")
            try Git.run(["add", "."], in: library)
            try Git.run(["commit", "-q", "-m", "lib"], in: library)

            try Git.initRepository(root)
            try dir.write("app/.gitignore", "*.o\n")
            try dir.write("app/main.c", "main")
            try Git.run(["-c", "protocol.file.allow=always", "submodule", "--quiet", "add", library, "libs/library"], in: root)
            try Git.run(["commit", "-q", "-m", "with a submodule"], in: root)
            try dir.write("app/libs/library/scratch.tmp", "ignored inside the submodule")
            try dir.write("app/libs/library/local.o", "not ignored there: *.o is the outer rule")
            // A repository inside the work tree that is not a submodule (a clone kept in a subfolder).
            try Git.initRepository(root + "/experiments/clone")
            try dir.write("app/experiments/clone/.gitignore", "out/\n")
            try dir.write("app/experiments/clone/out/x.bin", "ignored in the clone")
            try dir.write("app/experiments/clone/notes.o", "kept: the clone has no *.o rule")
            try dir.write("app/main.o", "ignored by the outer rule")
            return try GitOracle.keptFiles(repository: root)
        }
        do {
            let kept = try await walkKeptFiles(root, respectGitIgnore: true)
            #expect(kept.contains("libs/library/lib.c") && kept.contains("libs/library/local.o") && kept.contains("experiments/clone/notes.o"))
            #expect(!kept.contains("libs/library/scratch.tmp") && !kept.contains("experiments/clone/out/x.bin") && !kept.contains("main.o"))
            #expect(kept == expected)
        }
    }

    @Test("a repository git cannot read keeps everything and says so; a source inside a repository is not ruled by it")
    func unreadableRulesKeepEverything() async throws {
        let dir = try TemporaryDirectory()
        let root = dir.path + "/old-laptop"
        let repository = dir.path + "/home"
        try await blocking {
            // A worktree's `.git` file pointing at the old machine's path: git cannot open it.
            try dir.write("old-laptop/project/.git", "gitdir: /home/someone/elsewhere/.git/worktrees/project\n")
            try dir.write("old-laptop/project/.gitignore", "*.log\n")
            try dir.write("old-laptop/project/run.log", "kept: the rules could not be read")
            // The source's root is a folder inside a repository: the repository is not part of the source.
            try Git.initRepository(repository)
            try dir.write("home/.gitignore", "*\n")
            try dir.write("home/Documents/tax-2019.pdf", "kept")
        }
        do {
            let (entries, _) = try await walk(root, respectGitIgnore: true)
            let problems = entries.compactMap { if case .gitRulesUnreadable(let problem) = $0 { problem } else { nil } }
            #expect(problems.map(\.workTree) == ["project"])
            #expect(problems.first?.message.contains("git could not read this repository") == true)
            #expect(try await walkKeptFiles(root, respectGitIgnore: true).contains("project/run.log"))
            #expect(try await walkKeptFiles(repository + "/Documents", respectGitIgnore: true) == ["tax-2019.pdf"])
        }
    }
}

// MARK: - The walker's side

private func walk(_ root: String, respectGitIgnore: Bool) async throws -> ([SourceEntry], WalkSummary) {
    try await SourceWalker(root: RawPath(root), configuration: .init(respectGitIgnore: respectGitIgnore)).collect()
}

/// Regular files the walker keeps, relative to the root, without what is inside `.git` directories (git never
/// lists those; the walker keeps them as they are).
private func walkKeptFiles(_ root: String, respectGitIgnore: Bool) async throws -> Set<String> {
    let (entries, _) = try await walk(root, respectGitIgnore: respectGitIgnore)
    var kept = Set<String>()
    for case .file(let file) in entries where !file.relativePath.string.split(separator: "/").contains(".git") {
        kept.insert(file.relativePath.string)
    }
    return kept
}

// MARK: - git, the oracle

enum Git {
    /// Nothing of this machine's git configuration; a fixed identity for commits.
    static let environment: [String: String] = [
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid", "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    ]

    @discardableResult
    static func run(_ arguments: [String], in directory: String) throws -> [UInt8] {
        let result = try CapturedProcess.run("git", (["-C", directory] + arguments).map { Array($0.utf8) }, environment: environment)
        guard result.status == 0 else {
            throw CommandFailed(description: "git \(arguments.joined(separator: " ")) in \(directory) exited \(result.status): \(result.errorText)")
        }
        return result.output
    }

    static func initRepository(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try run(["init", "-q", "-b", "main"], in: path)
    }
}

enum GitOracle {
    /// `git ls-files --cached --others --exclude-standard` of the repository, with each nested repository or
    /// submodule it lists as a directory replaced by that repository's own list.
    static func keptFiles(repository: String, prefix: String = "") throws -> Set<String> {
        let output = try Git.run(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], in: repository)
        var kept = Set<String>()
        for entry in output.split(separator: 0).map({ String(decoding: $0, as: UTF8.self) }) {
            let trimmed = entry.hasSuffix("/") ? String(entry.dropLast()) : entry
            var isDirectory: ObjCBool = false
            let absolute = repository + "/" + trimmed
            if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), isDirectory.boolValue {
                // A nested repository (listed as "dir/") or a submodule (a gitlink): its own rules.
                kept.formUnion(try keptFiles(repository: absolute, prefix: prefix + trimmed + "/"))
            } else if FileManager.default.fileExists(atPath: absolute) {
                kept.insert(prefix + trimmed)
            }
        }
        return kept
    }
}

// MARK: - Random trees

enum GitTreeGenerator {
    /// Names that collide with the patterns below in interesting ways (case, spaces, `#`, `!`, dots).
    static let names = ["a", "b", "c", "build", "node_modules", "logs", "cache", "Doc", "doc", "deep", "keep.txt", "x.log",
                        "y.txt", "z.o", "foo bar", "#hash", "!bang", "trail ", ".hidden", "a.b.c", "x", "q.txt"]
    /// Patterns for git's corners: negation, anchoring, `**`, directory-only, classes, escapes, trailing spaces.
    static let patterns = ["*.log", "build/", "/build", "**/logs", "logs/**", "!keep.txt", "!*.txt", "a/**/b", "deep/*", "*.o",
                           "doc", "Doc/", "[ab]", "[!c]*.txt", "?.txt", "\\#hash", "\\!bang", "trail\\ ", "trail ", "node_modules",
                           "!build/keep.txt", "a/b/", "**/c", "*", "!*/", "x.*", "!/a/x.log", "foo\\ bar", "# a comment", "",
                           ".hidden", "!.hidden", "a/*/c", "/a/b", "**", "!**/q.txt", "cache/", "!cache/", "*.[lo]*", "b/**/",
                           "!x", "c/", "\\!*", "doc/**/keep.txt", "**/deep/**"]

    static func makeRepository(at base: String, random: inout SeededRandom) throws -> String {
        let root = base + "/repo"
        try Git.initRepository(root)
        var files: [String] = []
        try fill(root, relative: "", depth: 0, files: &files, random: &random)
        // A nested repository sometimes, with rules of its own.
        if Int.random(in: 0..<3, using: &random) == 0 {
            let nested = "nested-\(Int.random(in: 0..<100, using: &random))"
            try Git.initRepository(root + "/" + nested)
            var nestedFiles: [String] = []
            try fill(root + "/" + nested, relative: "", depth: 1, files: &nestedFiles, random: &random)
        }
        // Some files tracked whatever the patterns say (added with -f before the rules are written).
        var tracked: [String] = []
        for path in files where Int.random(in: 0..<4, using: &random) == 0 { tracked.append(path) }
        for path in tracked { try Git.run(["add", "-f", "--", path], in: root) }
        if !tracked.isEmpty { try Git.run(["commit", "-q", "-m", "tracked"], in: root) }
        try writeIgnoreFiles(root, random: &random)
        return root
    }

    private static func fill(_ directory: String, relative: String, depth: Int, files: inout [String], random: inout SeededRandom) throws {
        for _ in 0..<Int.random(in: 1...5, using: &random) {
            let name = names.randomElement(using: &random)!
            let path = relative.isEmpty ? name : relative + "/" + name
            let absolute = directory + "/" + path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) {
                if isDirectory.boolValue, depth < 3 { try fill(directory, relative: path, depth: depth + 1, files: &files, random: &random) }
                continue
            }
            if depth < 3, Int.random(in: 0..<3, using: &random) == 0 {
                try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true)
                try fill(directory, relative: path, depth: depth + 1, files: &files, random: &random)
            } else {
                try Data(path.utf8).write(to: URL(fileURLWithPath: absolute))
                files.append(path)
            }
        }
    }

    /// `.gitignore` in random directories (the root most often) and `.git/info/exclude` of every repository.
    private static func writeIgnoreFiles(_ root: String, random: inout SeededRandom) throws {
        let enumerator = FileManager.default.enumerator(atPath: root)
        var directories = [""]
        while let path = enumerator?.nextObject() as? String {
            if path.split(separator: "/").contains(".git") { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory), isDirectory.boolValue { directories.append(path) }
        }
        for directory in directories where directory.isEmpty || Int.random(in: 0..<3, using: &random) == 0 {
            let lines = (0..<Int.random(in: 1...5, using: &random)).map { _ in patterns.randomElement(using: &random)! }
            let path = (directory.isEmpty ? root : root + "/" + directory) + "/.gitignore"
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        }
        for directory in directories where FileManager.default.fileExists(atPath: root + "/" + directory + "/.git/info") {
            let lines = (0..<Int.random(in: 0...2, using: &random)).map { _ in patterns.randomElement(using: &random)! }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: root + "/" + directory + "/.git/info/exclude"))
        }
    }

    static func describeIgnoreFiles(_ root: String) -> String {
        var out: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let path = enumerator?.nextObject() as? String {
            guard path.hasSuffix(".gitignore") || path.hasSuffix(".git/info/exclude") else { continue }
            let text = (try? String(contentsOfFile: root + "/" + path, encoding: .utf8)) ?? ""
            out.append("\(path): \(text.split(separator: "\n").map { "'\($0)'" }.joined(separator: " "))")
        }
        return out.sorted().joined(separator: "; ")
    }
}
