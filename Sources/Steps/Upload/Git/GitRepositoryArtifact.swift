import Foundation
import SourceReading
import SystemIO

/// A git repository (a work tree's `.git`, or a bare repository) kept whole as one file, instead of thousands of
/// small objects that cannot be cloned back without every one of them. The file is a tar (GNU tar, pax, sorted
/// names, no owner: the same repository gives the same bytes, so an unchanged one adds no version) holding:
///
/// - `repository.bundle`: `git bundle create --all --reflog --indexed-objects`, checked with `git bundle verify`:
///   every ref, the commits only a reflog reaches (older stashes), and the blobs only the index holds (changes
///   staged and not committed);
/// - `git-dir/`: the repository without `objects/`: config, HEAD, refs and packed-refs, reflogs (the stash list),
///   the index, hooks, info, submodules' repositories (`modules/`) and worktrees' records;
/// - `RESTORE.txt`: how to make the repository again with git and tar alone.
///
/// When git cannot bundle it (no commit yet, a damaged repository), `git-dir/` holds `objects/` too: the directory
/// exactly as it is, and `layout` says so. Objects nothing reaches (what `git gc` would prune) are not kept.
struct GitRepositoryArtifact: Sendable {
    /// The tar, in the work directory; the caller removes it once it is stored.
    let path: String
    let size: Int64
    let layout: Layout
    /// Refs in the bundle (0 without one).
    let refs: Int
    /// Why there is no bundle, in git's words.
    let note: String?

    enum Layout: String, Sendable {
        case bundle
        /// No bundle: `git-dir/` is the whole directory, objects included.
        case directory
    }

    /// Builds the artifact of the repository at `repository` (absolute) under `workDirectory`. Blocks: run it on the
    /// thread pool. Throws only when not even the directory could be archived (then its files are stored one by one).
    static func build(repository: RawPath, workDirectory: String) throws -> GitRepositoryArtifact {
        let directory = workDirectory + "/git-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer {
            for name in ["repository.bundle", "RESTORE.txt"] { unlink(directory + "/" + name) }
        }
        let bundle = directory + "/repository.bundle"
        let gitDirectory = Array("--git-dir=".utf8) + repository.bytes
        var layout = Layout.bundle, note: String?, refs = 0
        // One packing thread: the same repository always gives the same bundle bytes.
        let created = try GitProgram.run([gitDirectory] + ["-c", "pack.threads=1", "bundle", "create", "-q", bundle, "--all", "--reflog", "--indexed-objects"].map { Array($0.utf8) })
        if created.status != 0 {
            (layout, note) = (.directory, "git could not bundle it (\(firstLine(created))); kept as a directory, objects included")
        } else {
            let verified = try GitProgram.run([gitDirectory] + ["bundle", "verify", "-q", bundle].map { Array($0.utf8) })
            let heads = try GitProgram.run([gitDirectory] + ["bundle", "list-heads", bundle].map { Array($0.utf8) })
            if verified.status != 0 || heads.status != 0 {
                (layout, note) = (.directory, "its bundle did not verify (\(firstLine(verified.status != 0 ? verified : heads))); kept as a directory, objects included")
            } else {
                refs = heads.output.split(separator: UInt8(ascii: "\n")).count
            }
        }
        if layout == .directory { unlink(bundle) }
        try Data(restoreInstructions(layout).utf8).write(to: URL(fileURLWithPath: directory + "/RESTORE.txt"))

        let artifact = directory + ".tar"
        var arguments = ["--create", "--file", artifact, "--format=pax", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                         "--pax-option=delete=atime,delete=ctime", "-C", directory, "RESTORE.txt"].map { Array($0.utf8) }
        if layout == .bundle { arguments.append(Array("repository.bundle".utf8)) }
        arguments += ["--transform=flags=r;s|^\\.|git-dir|", "--anchored"].map { Array($0.utf8) }
        if layout == .bundle { arguments.append(Array("--exclude=./objects".utf8)) }
        arguments += [Array("-C".utf8), repository.bytes, Array(".".utf8)]
        let tar = try CapturedProcess.run("tar", arguments, environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LC_ALL": "C"])
        try? FileManager.default.removeItem(atPath: directory)
        guard tar.status == 0 else {
            unlink(artifact)
            let said = tar.errorText.split(separator: "\n").first.map(String.init) ?? "exit status \(tar.status)"
            throw IngestError(.archiveFailed, path: repository.string, "tar could not archive the repository: \(said)")
        }
        let size = (try FileManager.default.attributesOfItem(atPath: artifact)[.size] as? NSNumber)?.int64Value ?? 0
        return GitRepositoryArtifact(path: artifact, size: size, layout: layout, refs: refs, note: note)
    }

    /// The newest modification time anywhere in the repository: a commit, a stash, a staged change or a new ref
    /// touches at least one file or directory in it, so an unchanged time and size mean an unchanged repository.
    static func newestModification(in repository: RawPath) -> Date {
        var newest = Date(timeIntervalSince1970: 0)
        let enumerator = FileManager.default.enumerator(atPath: repository.string)
        func consider(_ path: String) {
            var status = stat()
            guard lstat(path, &status) == 0 else { return }
            let time = Date(timeIntervalSince1970: Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9)
            if time > newest { newest = time }
        }
        consider(repository.string)
        while let relative = enumerator?.nextObject() as? String { consider(repository.string + "/" + relative) }
        return newest
    }

    private static func firstLine(_ process: CapturedProcess) -> String {
        process.errorText.split(separator: "\n").first.map(String.init) ?? "exit status \(process.status)"
    }

    static func restoreInstructions(_ layout: Layout) -> String {
        let steps = layout == .bundle
            ? """
              This tar holds one git repository, kept whole by personal-backup:
                repository.bundle  every ref and every object they, the reflogs and the index reach (git bundle)
                git-dir/           the repository's own files, objects excepted (config, HEAD, refs, reflogs,
                                   the index, hooks, info, submodules' repositories)

              To make the repository again at DIR/.git (for a bare repository: at DIR) with git and tar alone:

                mkdir -p DIR/.git && tar -xf THIS.tar repository.bundle
                git init -q --bare DIR/.git
                git --git-dir=DIR/.git bundle unbundle repository.bundle
                find DIR/.git -mindepth 1 -maxdepth 1 ! -name objects -exec rm -rf {} +
                tar -xf THIS.tar -C DIR/.git --strip-components=1 git-dir
                mkdir -p DIR/.git/refs/heads DIR/.git/refs/tags

              `git -C DIR status`, `git log --all` and `git stash list` then show it as it was (with the work tree's
              files restored beside it). Only `git clone repository.bundle` is needed for the history alone.
              """
            : """
              This tar holds one git repository, kept whole by personal-backup as the directory it was (git could
              not bundle it: no commit yet, or damaged), objects included:

                mkdir -p DIR/.git && tar -xf THIS.tar -C DIR/.git --strip-components=1 git-dir
              """
        return steps + "\n"
    }
}
