import Foundation
import PipelineCore
import SourceReading
import SystemIO

extension RestoreRun {
    /// A git repository kept whole was restored as its tar (checked against its hash like any file): make the
    /// repository's directory from it. nil when done; otherwise the problem, and the tar is left beside the path
    /// (`….git-repository.tar`, with its RESTORE.txt) so nothing is lost.
    func expandRepository(_ job: FileJob, layout: String, destination: SafeDestination) async -> RestoreError? {
        let path = destination.root + "/" + job.path.description
        do {
            try await blocking {
                try GitRepositoryRestore.expand(artifactAt: path, layout: layout)
                try GitRepositoryRestore.syncFileSystem(of: path)
            }
            return nil
        } catch {
            return RestoreError(.localIO, "\(job.path): the git repository could not be made again (\(error)); its archive is at \(job.path).git-repository.tar (see RESTORE.txt inside)")
        }
    }
}

/// Makes a repository again from the tar the uploader stored (``GitRepositoryArtifact`` on the uploader's side),
/// the way its RESTORE.txt tells a person to, with Debian's git and tar.
enum GitRepositoryRestore {
    static func expand(artifactAt path: String, layout: String) throws {
        let artifact = path + ".git-repository.tar"
        let scratch = (path as NSString).deletingLastPathComponent + "/.git-repository-" + UUID().uuidString
        guard rename(path, artifact) == 0 else { throw RestoreError(.localIO, "cannot move the restored archive aside: \(String(cString: strerror(errno)))") }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            if layout == "bundle" {
                try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
                try tar(["-xf", artifact, "-C", scratch, "repository.bundle"])
                try git(["init", "-q", "--bare", path])
                try git(["--git-dir=" + path, "bundle", "unbundle", scratch + "/repository.bundle"])
                // Everything but the objects comes from the repository's own files, exactly as they were.
                for name in try FileManager.default.contentsOfDirectory(atPath: path) where name != "objects" {
                    try FileManager.default.removeItem(atPath: path + "/" + name)
                }
            }
            try tar(["-xf", artifact, "-C", path, "--strip-components=1", "git-dir"])
            // git needs these even when every ref is packed (an empty directory is not in the tar if git made none).
            for directory in ["refs/heads", "refs/tags", "objects/pack", "objects/info"] {
                try FileManager.default.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
            }
            try git(["--git-dir=" + path, "rev-parse", "--git-dir"])
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        unlink(artifact)
    }

    /// tar and git write the repository's many files without syncing them: one `syncfs` of the destination's file
    /// system makes all of them and their names durable before the repository is reported restored.
    static func syncFileSystem(of path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RestoreError(.localIO, "cannot open the restored repository to sync it: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        do { try POSIXFile.syncFileSystem(fd: descriptor) } catch let error as FileIOError {
            throw RestoreError(.localIO, "cannot sync the restored repository: \(String(cString: strerror(error.code)))")
        }
    }

    /// The directory at `path` is a repository (a restore made it already).
    static func looksRestored(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/HEAD") && FileManager.default.fileExists(atPath: path + "/objects")
    }

    private static func git(_ arguments: [String]) throws {
        let result = try GitProgram.run(arguments)
        guard result.status == 0 else {
            throw RestoreError(.localIO, "git \(arguments.first ?? "") failed: \(result.errorText.split(separator: "\n").first.map(String.init) ?? "exit status \(result.status)")")
        }
    }

    private static func tar(_ arguments: [String]) throws {
        let result = try CapturedProcess.run("tar", arguments.map { Array($0.utf8) }, environment: [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LC_ALL": "C",
        ])
        guard result.status == 0 else {
            throw RestoreError(.localIO, "tar failed: \(result.errorText.split(separator: "\n").first.map(String.init) ?? "exit status \(result.status)")")
        }
    }
}
