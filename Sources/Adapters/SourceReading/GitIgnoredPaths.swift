import Foundation
import SystemIO

/// What git itself leaves out of one work tree: the untracked files and directories that `.gitignore` files,
/// `.git/info/exclude` and the repository's `core.excludesFile` ignore, as `git ls-files --others --ignored
/// --exclude-standard --directory` lists them. Tracked files are never in it, even when a pattern matches them
/// (git keeps them, and so do we).
///
/// Asked of Debian's `git` rather than re-implemented: the rules (negation, anchoring, `**`, directory-only
/// patterns, a file in an excluded directory that cannot be re-included, the index) are git's, and only git reads
/// them exactly as git does.
public struct GitIgnoredPaths: Sendable {
    /// Ignored files, relative to the work tree's top.
    let files: Set<[UInt8]>
    /// Wholly ignored directories (git does not enter them), relative to the work tree's top, no trailing `/`.
    let directories: Set<[UInt8]>

    public var isEmpty: Bool { files.isEmpty && directories.isEmpty }

    /// Reads the ignored paths of the work tree whose top is `workTree` (it holds `.git`). Blocks: call it on the
    /// thread pool. A failure is git's own message (a repository git cannot read, no `git` installed).
    public static func read(workTree: RawPath) -> Result<GitIgnoredPaths, GitRulesProblem> {
        let workTree = workTree.bytes.first == UInt8(ascii: "/")
            ? workTree : RawPath(FileManager.default.currentDirectoryPath).appending(workTree)
        let command = ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"]
        let process: CapturedProcess
        do {
            process = try GitProgram.run([Array("-C".utf8), workTree.bytes] + command.map { Array($0.utf8) }, ceiling: workTree)
        } catch {
            return .failure(GitRulesProblem(workTree: workTree, message: "git is not installed (\(error)); install git, or pass --no-gitignore"))
        }
        guard process.status == 0 else {
            let said = process.errorText.split(separator: "\n").first.map(String.init) ?? "exit status \(process.status)"
            return .failure(GitRulesProblem(workTree: workTree, message: "git could not read this repository: \(said)"))
        }
        var files = Set<[UInt8]>(), directories = Set<[UInt8]>()
        for entry in process.output.split(separator: 0, omittingEmptySubsequences: true) {
            if entry.last == UInt8(ascii: "/") { directories.insert(Array(entry.dropLast())) } else { files.insert(Array(entry)) }
        }
        return .success(GitIgnoredPaths(files: files, directories: directories))
    }
}

/// A work tree whose ignore rules git could not give: everything in it is kept, and the run says so.
public struct GitRulesProblem: Error, Sendable, Hashable, CustomStringConvertible {
    public let workTree: RawPath
    public let message: String
    public var description: String { message }
}

/// The ignore rules read for each work tree, kept for the walks of one run (the uploader walks twice: a counting
/// pass for the progress totals, then the real one), so git runs once per work tree per run.
public final class GitRulesCache: Sendable, Hashable {
    private let known = LockedBox<[[UInt8]: Result<GitIgnoredPaths, GitRulesProblem>]>([:])

    public init() {}

    func rules(for workTree: RawPath) -> Result<GitIgnoredPaths, GitRulesProblem> {
        if let cached = known.withLock({ $0[workTree.bytes] }) { return cached }
        let read = GitIgnoredPaths.read(workTree: workTree)
        known.withLock { $0[workTree.bytes] = read }
        return read
    }

    public static func == (lhs: GitRulesCache, rhs: GitRulesCache) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
