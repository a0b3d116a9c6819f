import Foundation

// What the walker yields and keeps about git repositories found in a source.

/// An entry left out because git ignores it, with what it holds (for the run's summary).
public struct GitIgnoredEntry: Sendable, Hashable {
    public let relativePath: RawPath
    public let isDirectory: Bool
    /// Regular files in it (1 for a file) and their bytes.
    public let files: Int
    public let bytes: Int64
}

/// A repository the walker did not enter, to be kept whole (`git bundle` and what a bundle cannot carry).
public struct GitRepositoryEntry: Sendable, Hashable {
    /// The `.git` directory or the bare repository, relative to the root.
    public let relativePath: RawPath
    public let isBare: Bool
}

/// The ignored paths of one git work tree, and where that tree starts in the source.
final class GitScope: Sendable {
    /// Bytes of the work tree's path in the source plus its `/` (0 at the source's root).
    let prefixCount: Int
    let ignored: GitIgnoredPaths

    init(prefixCount: Int, ignored: GitIgnoredPaths) {
        self.prefixCount = prefixCount
        self.ignored = ignored
    }

    func ignores(_ relative: RawPath, isDirectory: Bool) -> Bool {
        let local = Array(relative.bytes.dropFirst(prefixCount))
        return isDirectory ? ignored.directories.contains(local) : ignored.files.contains(local)
    }
}

extension SourceFile {
    /// A file that stands for something the walker found (a repository kept whole as one file made elsewhere):
    /// stored under `relativePath`, read from `absolutePath`.
    public static func standIn(relativePath: RawPath, absolutePath: RawPath, size: Int64, modificationTime: Date) -> SourceFile {
        SourceFile(relativePath: relativePath, absolutePath: absolutePath, size: size, modificationTime: modificationTime,
                   mode: 0o100644, device: 0, inode: 0, linkCount: 1)
    }

    /// The same file, its relative path under `prefix` (a directory walked on its own, as part of the source).
    public func relocated(under prefix: RawPath) -> SourceFile {
        SourceFile(relativePath: prefix.appending(relativePath), absolutePath: absolutePath, size: size, modificationTime: modificationTime,
                   mode: mode, device: device, inode: inode, linkCount: linkCount,
                   modificationNanoseconds: modificationNanoseconds, changeNanoseconds: changeNanoseconds)
    }
}
