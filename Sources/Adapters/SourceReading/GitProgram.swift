import Foundation
import SystemIO

/// Debian's `git`, run on a repository found in a source: nothing of the uploader's machine or user (no system
/// or global config: their excludes and hooks are about other projects), nothing the repository's own config
/// could make it run (fsmonitor) or write (optional locks), and readable whoever owns the drive
/// (`safe.directory=*`). Blocks: call it on the thread pool.
public enum GitProgram {
    public static func run(_ arguments: [[UInt8]], ceiling: RawPath? = nil) throws -> CapturedProcess {
        let options = ["-c", "safe.directory=*", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false"].map { Array($0.utf8) }
        return try CapturedProcess.run("git", options + arguments, environment: environment(ceiling: ceiling))
    }

    public static func run(_ arguments: [String], ceiling: RawPath? = nil) throws -> CapturedProcess {
        try run(arguments.map { Array($0.utf8) }, ceiling: ceiling)
    }

    /// With a `ceiling` (a work tree's top), git does not look for a repository above it: a source's rules are
    /// its own.
    static func environment(ceiling: RawPath?) -> [String: String] {
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": "/nonexistent", "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0",
        ]
        if let ceiling {
            var path = ceiling.bytes
            while path.count > 1, path.last == UInt8(ascii: "/") { path.removeLast() }
            let parent = String(decoding: path[..<(path.lastIndex(of: UInt8(ascii: "/")) ?? 0)], as: UTF8.self)
            environment["GIT_CEILING_DIRECTORIES"] = parent.isEmpty ? "/" : parent
        }
        return environment
    }
}
