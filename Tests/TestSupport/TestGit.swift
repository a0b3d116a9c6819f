import Foundation
import SystemIO

/// Debian's git for tests that make repositories: none of this machine's configuration, a fixed identity.
public enum TestGit {
    public static let environment: [String: String] = [
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid", "GIT_AUTHOR_DATE": "2020-01-02T03:04:05Z",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid", "GIT_COMMITTER_DATE": "2020-01-02T03:04:05Z",
    ]

    /// Runs `git -C directory arguments…` (blocking: call it through `blocking`) and returns its standard output;
    /// throws with git's message when it fails.
    @discardableResult
    public static func run(_ arguments: [String], in directory: String) throws -> String {
        let result = try CapturedProcess.run("git", (["-C", directory] + arguments).map { Array($0.utf8) }, environment: environment)
        guard result.status == 0 else {
            throw Failure(description: "git \(arguments.joined(separator: " ")) in \(directory) exited \(result.status): \(result.errorText)")
        }
        return String(decoding: result.output, as: UTF8.self)
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }
}
