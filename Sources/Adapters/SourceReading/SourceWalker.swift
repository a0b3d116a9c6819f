#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SystemIO

/// A regular file found under the source root.
public struct SourceFile: Sendable, Hashable {
    /// Path relative to the root, `/`-separated, byte-exact.
    public let relativePath: RawPath
    /// Root + relative path, for opening (`ChunkedFileReader(path:)`).
    public let absolutePath: RawPath
    public let size: Int64
    public let modificationTime: Date
    /// `st_mode`: type and permission bits.
    public let mode: UInt32
    /// Device and inode: two paths with the same pair are hard links to one file (read it once).
    public let device: UInt64
    public let inode: UInt64
    public let linkCount: UInt64
    /// `st_mtim` and `st_ctim` exactly, in nanoseconds since 1970 (a `Date` rounds them): the uploader's local index
    /// compares them (`Upload/LocalIndex`). Zero for a stand-in, which the index never records.
    public var modificationNanoseconds: Int64 = 0
    public var changeNanoseconds: Int64 = 0

    /// The file name (last component).
    public var name: RawPath { relativePath.lastComponent }
}

/// A directory that was entered (reported so that empty directories are not lost from the record of a source).
public struct SourceDirectory: Sendable, Hashable {
    public let relativePath: RawPath
    public let modificationTime: Date
    public let mode: UInt32
}

/// Why an entry under the root was not taken. Every one of these is reported, never dropped silently.
public enum SkipReason: Sendable, Hashable, CustomStringConvertible {
    case symlink(target: RawPath)
    case socket
    case fifo
    case characterDevice
    case blockDevice
    /// A directory on another file system (a mount point inside the source), not entered.
    case otherFileSystem
    /// A directory that could not be opened or listed completely.
    case unreadableDirectory(errno: Int32, message: String)
    /// The entry vanished or could not be inspected between listing and `lstat`.
    case cannotInspect(errno: Int32, message: String)
    case unknownType(mode: UInt32)

    public var description: String {
        switch self {
        case .symlink(let target): "symbolic link to \(target.string)"
        case .socket: "socket"
        case .fifo: "FIFO (named pipe)"
        case .characterDevice: "character device"
        case .blockDevice: "block device"
        case .otherFileSystem: "mount point of another file system (not entered)"
        case .unreadableDirectory(_, let message): "directory not readable: \(message)"
        case .cannotInspect(_, let message): "cannot inspect: \(message)"
        case .unknownType(let mode): "unknown file type (mode \(String(mode, radix: 8)))"
        }
    }

    /// The walk could not see everything here: what lies in or behind this entry may be missing from the run, so
    /// the run is incomplete. The other reasons are entries that are deliberately not stored (and listed).
    public var isWalkProblem: Bool {
        switch self {
        case .unreadableDirectory, .cannotInspect: true
        case .symlink, .socket, .fifo, .characterDevice, .blockDevice, .otherFileSystem, .unknownType: false
        }
    }
}

public struct SkippedEntry: Sendable, Hashable {
    public let relativePath: RawPath
    public let reason: SkipReason
}

/// What the walk yields, in byte-wise order of the relative paths.
public enum SourceEntry: Sendable, Hashable {
    case file(SourceFile)
    case directory(SourceDirectory)
    case skipped(SkippedEntry)
    /// Matched an `--exclude` pattern; a directory is not entered.
    case excluded(RawPath, isDirectory: Bool)
    /// Git ignores it (in a git work tree found in the source, unless `--no-gitignore`); a directory is not entered.
    case gitIgnored(GitIgnoredEntry)
    /// A git work tree whose ignore rules git could not give: everything in it is kept.
    case gitRulesUnreadable(GitRulesProblem)
    /// A git repository (a `.git` directory or a bare repository), not entered: it is kept whole, as one file.
    case gitRepository(GitRepositoryEntry)
}



public struct WalkSummary: Sendable, Hashable {
    public var files = 0
    public var bytes: Int64 = 0
    public var directories = 0
    public var skipped = 0
    public var excludedFiles = 0
    public var excludedDirectories = 0
    public var gitIgnoredFiles = 0
    public var gitIgnoredBytes: Int64 = 0
    public var gitRepositories = 0
}

public struct SourceWalkerConfiguration: Sendable, Hashable {
    public var excludes: [ExcludePattern]
    /// Do not descend into other file systems mounted inside the source (reported as skipped). On by default:
    /// a drive's backup should not wander into whatever else is mounted below it.
    public var stayOnFileSystem: Bool
    /// Inside a git work tree found in the source (a directory holding `.git`), leave out what git ignores.
    public var respectGitIgnore: Bool
    /// Yield `.git` directories and bare repositories as `.gitRepository` instead of entering them.
    public var keepGitRepositoriesWhole: Bool
    /// Shared by the walks of one run, so each work tree's rules are asked of git once.
    public var gitRules: GitRulesCache?
    /// Entries fetched per trip to the thread pool.
    public var batchSize: Int

    public init(excludes: [ExcludePattern] = [], stayOnFileSystem: Bool = true, respectGitIgnore: Bool = false,
                keepGitRepositoriesWhole: Bool = false, gitRules: GitRulesCache? = nil, batchSize: Int = 256) {
        self.excludes = excludes
        self.stayOnFileSystem = stayOnFileSystem
        self.respectGitIgnore = respectGitIgnore
        self.keepGitRepositoriesWhole = keepGitRepositoriesWhole
        self.gitRules = gitRules
        self.batchSize = batchSize
    }
}

/// Walks a directory tree (a mounted disc or drive) without following symlinks.
///
/// Order: byte-wise by relative path, as if every path were sorted with `LC_ALL=C sort` (a directory's contents
/// come right after entries that sort before `dir/`), so two walks of the same tree give the same sequence and a
/// resumed run can merge it with the catalog.
///
/// Memory: one sorted listing per directory on the current path (the open directories from the root to the one
/// being read, plus the rare sibling directory reported but not yet entered, such as `a` while `a-c` and `a.b`
/// come before `a/…`), not the whole tree, so millions of files in a deep tree are fine; a single directory with
/// millions of entries is held in memory while it is being walked. One descriptor per level of depth is kept
/// open, and children are opened relative to it (`openat`), so paths longer than `PATH_MAX` are walked (opening
/// such a file by `absolutePath` later is limited by `PATH_MAX`, 4096 bytes on Linux).
public struct SourceWalker: Sendable {
    public let root: RawPath
    public let configuration: SourceWalkerConfiguration

    public init(root: RawPath, configuration: SourceWalkerConfiguration = .init()) {
        self.root = root
        self.configuration = configuration
    }

    /// Throws what ``walk(_:)`` would throw at once: the root cannot be opened.
    public func checkRoot() async throws {
        let root = self.root, configuration = self.configuration
        _ = try await blocking { try WalkState(root: root, configuration: configuration) }
    }

    /// Calls `body` for every entry in order; the walk waits for `body` (back-pressure). Throws if the root itself
    /// cannot be opened; problems below the root are `.skipped` entries.
    @discardableResult
    public func walk(_ body: (SourceEntry) async throws -> Void) async throws -> WalkSummary {
        let root = self.root, configuration = self.configuration
        let walk = try await blocking { try WalkState(root: root, configuration: configuration) }
        var summary = WalkSummary()
        while true {
            try Task.checkCancellation()
            let batch = try await blocking { walk.next(count: configuration.batchSize) }
            if batch.isEmpty { break }
            for entry in batch {
                switch entry {
                case .file(let file): summary.files += 1; summary.bytes += file.size
                case .directory: summary.directories += 1
                case .skipped: summary.skipped += 1
                case .excluded(_, let isDirectory):
                    if isDirectory { summary.excludedDirectories += 1 } else { summary.excludedFiles += 1 }
                case .gitIgnored(let ignored):
                    summary.gitIgnoredFiles += ignored.files
                    summary.gitIgnoredBytes += ignored.bytes
                case .gitRulesUnreadable:
                    break
                case .gitRepository:
                    summary.gitRepositories += 1
                }
                try await body(entry)
            }
        }
        return summary
    }

    /// Every entry in one array (small trees and tests).
    public func collect() async throws -> (entries: [SourceEntry], summary: WalkSummary) {
        var entries: [SourceEntry] = []
        let summary = try await walk { entries.append($0) }
        return (entries, summary)
    }
}

let typeMask: UInt32 = 0o170000
private let typeRegular: UInt32 = 0o100000
let typeDirectory: UInt32 = 0o040000
private let typeSymlink: UInt32 = 0o120000
private let typeSocket: UInt32 = 0o140000
private let typeFIFO: UInt32 = 0o010000
private let typeCharacter: UInt32 = 0o020000
private let typeBlock: UInt32 = 0o060000
let gitName: [UInt8] = Array(".git".utf8)


/// The walk's position: a stack of open directories, each with its sorted remaining children. Used by one walk
/// at a time, each step on the thread pool, hence `@unchecked Sendable`.
private final class WalkState: @unchecked Sendable {
    struct Child {
        let name: [UInt8]
        let sortKey: [UInt8]
        let status: stat?
        let statErrno: Int32
        /// A directory appears twice in its parent's list: as itself (key "name", where it is reported) and as
        /// the point where its contents start (key "name/"), so the whole walk is in byte order of full paths.
        var isEnterMarker = false
    }

    final class Frame {
        let directory: OpaquePointer
        let relativePath: RawPath
        var children: [Child]
        var index = 0
        /// Directories reported but not yet entered (their contents start at their "name/" marker).
        var opened: [[UInt8]: Frame] = [:]
        /// The innermost git work tree this directory is in, when its rules apply.
        let gitScope: GitScope?
        init(directory: OpaquePointer, relativePath: RawPath, children: [Child], gitScope: GitScope?) {
            self.directory = directory
            self.relativePath = relativePath
            self.children = children
            self.gitScope = gitScope
        }
        var fd: Int32 { dirfd(directory) }
        func closeAll() {
            for child in opened.values { child.closeAll() }
            opened = [:]
            closedir(directory)
        }
    }

    let root: RawPath
    let configuration: SourceWalkerConfiguration
    let rootDevice: UInt64
    var stack: [Frame] = []
    var pending: [SourceEntry] = []

    init(root: RawPath, configuration: SourceWalkerConfiguration) throws {
        self.root = root
        self.configuration = configuration
        let fd = root.withCString { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw IngestError.system(.cannotOpen, path: root.string, errno: errno, "cannot open the source directory") }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            closeDescriptor(fd)
            throw IngestError.system(.cannotOpen, path: root.string, errno: code, "cannot inspect the source directory")
        }
        rootDevice = UInt64(status.st_dev)
        guard let directory = fdopendir(fd) else {
            let code = errno
            closeDescriptor(fd)
            throw IngestError.system(.cannotOpen, path: root.string, errno: code, "cannot open the source directory")
        }
        let (children, failure) = Self.list(directory)
        if let failure {
            closedir(directory)
            throw IngestError.system(.cannotOpen, path: root.string, errno: failure, "cannot list the source directory")
        }
        let scope = gitScope(for: RawPath(bytes: []), children: children, inherited: nil)
        stack.append(Frame(directory: directory, relativePath: RawPath(bytes: []), children: children, gitScope: scope))
    }

    /// A directory holding `.git` is the top of a work tree: its rules (and only its) apply below it. Nested
    /// repositories and submodules have their own; a failure to read them keeps everything and is reported.
    private func gitScope(for relative: RawPath, children: [Child], inherited: GitScope?) -> GitScope? {
        guard configuration.respectGitIgnore, children.contains(where: { $0.name == gitName && !$0.isEnterMarker }) else { return inherited }
        let workTree = root.appending(relative)
        switch configuration.gitRules?.rules(for: workTree) ?? GitIgnoredPaths.read(workTree: workTree) {
        case .success(let ignored):
            return ignored.isEmpty ? nil : GitScope(prefixCount: relative.bytes.isEmpty ? 0 : relative.bytes.count + 1, ignored: ignored)
        case .failure(let problem):
            pending.append(.gitRulesUnreadable(GitRulesProblem(workTree: relative, message: problem.message)))
            return nil
        }
    }

    deinit {
        for frame in stack { frame.closeAll() }
    }

    /// Reads all names of a directory, `lstat`s each and sorts them; the errno if listing stopped early.
    static func list(_ directory: OpaquePointer) -> ([Child], Int32?) {
        var children: [Child] = []
        let fd = dirfd(directory)
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                let code = errno
                return (sorted(children), code == 0 ? nil : code)
            }
            let name: [UInt8] = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            if name == [46] || name == [46, 46] { continue }
            var status = stat()
            let result = name.withUnsafeBufferPointer { buffer -> Int32 in
                var terminated = Array(buffer)
                terminated.append(0)
                return terminated.withUnsafeBufferPointer {
                    $0.withMemoryRebound(to: CChar.self) { fstatat(fd, $0.baseAddress!, &status, AT_SYMLINK_NOFOLLOW) }
                }
            }
            if result == 0 {
                children.append(Child(name: name, sortKey: name, status: status, statErrno: 0))
                if UInt32(status.st_mode) & typeMask == typeDirectory {
                    children.append(Child(name: name, sortKey: name + [47], status: status, statErrno: 0, isEnterMarker: true))
                }
            } else {
                children.append(Child(name: name, sortKey: name, status: nil, statErrno: errno))
            }
        }
    }

    static func sorted(_ children: [Child]) -> [Child] {
        children.sorted { $0.sortKey.lexicographicallyPrecedes($1.sortKey) }
    }

    func next(count: Int) -> [SourceEntry] {
        var out: [SourceEntry] = []
        while out.count < count {
            if !pending.isEmpty { out.append(pending.removeFirst()); continue }
            guard let frame = stack.last else { break }
            guard frame.index < frame.children.count else {
                frame.closeAll()
                stack.removeLast()
                continue
            }
            let child = frame.children[frame.index]
            frame.index += 1
            if child.isEnterMarker {
                if let opened = frame.opened.removeValue(forKey: child.name) { stack.append(opened) }
                continue
            }
            if let entry = visit(child, in: frame) { out.append(entry) }
        }
        return out
    }

    private func visit(_ child: Child, in frame: Frame) -> SourceEntry? {
        let relative = frame.relativePath.appending(RawPath(bytes: child.name))
        guard let status = child.status else {
            return .skipped(SkippedEntry(relativePath: relative, reason: .cannotInspect(errno: child.statErrno, message: errnoText(child.statErrno))))
        }
        let mode = UInt32(status.st_mode)
        let modified = Date(timeIntervalSince1970: Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9)
        switch mode & typeMask {
        case typeRegular:
            if configuration.excludes.contains(where: { $0.matches(relative, isDirectory: false) }) {
                return .excluded(relative, isDirectory: false)
            }
            if let scope = frame.gitScope, scope.ignores(relative, isDirectory: false) {
                return .gitIgnored(GitIgnoredEntry(relativePath: relative, isDirectory: false, files: 1, bytes: Int64(status.st_size)))
            }
            return .file(SourceFile(
                relativePath: relative, absolutePath: root.appending(relative), size: Int64(status.st_size),
                modificationTime: modified, mode: mode, device: UInt64(status.st_dev), inode: UInt64(status.st_ino),
                linkCount: UInt64(status.st_nlink),
                modificationNanoseconds: Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec),
                changeNanoseconds: Int64(status.st_ctim.tv_sec) * 1_000_000_000 + Int64(status.st_ctim.tv_nsec)))
        case typeDirectory:
            if configuration.excludes.contains(where: { $0.matches(relative, isDirectory: true) }) {
                return .excluded(relative, isDirectory: true)
            }
            if let scope = frame.gitScope, scope.ignores(relative, isDirectory: true) {
                let (files, bytes) = usage(ofDirectory: child.name, in: frame.fd)
                return .gitIgnored(GitIgnoredEntry(relativePath: relative, isDirectory: true, files: files, bytes: bytes))
            }
            if configuration.stayOnFileSystem && UInt64(status.st_dev) != rootDevice {
                return .skipped(SkippedEntry(relativePath: relative, reason: .otherFileSystem))
            }
            if configuration.keepGitRepositoriesWhole && child.name == gitName {
                return .gitRepository(GitRepositoryEntry(relativePath: relative, isBare: false))
            }
            let fd = child.name.withUnsafeBufferPointer { buffer -> Int32 in
                var terminated = Array(buffer)
                terminated.append(0)
                return terminated.withUnsafeBufferPointer {
                    $0.withMemoryRebound(to: CChar.self) { openat(frame.fd, $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                }
            }
            guard fd >= 0 else {
                let code = errno
                return .skipped(SkippedEntry(relativePath: relative, reason: .unreadableDirectory(errno: code, message: errnoText(code))))
            }
            guard let directory = fdopendir(fd) else {
                let code = errno
                closeDescriptor(fd)
                return .skipped(SkippedEntry(relativePath: relative, reason: .unreadableDirectory(errno: code, message: errnoText(code))))
            }
            let (children, failure) = Self.list(directory)
            if configuration.keepGitRepositoriesWhole && failure == nil && Self.looksLikeBareRepository(children) {
                closedir(directory)
                return .gitRepository(GitRepositoryEntry(relativePath: relative, isBare: true))
            }
            let scope = gitScope(for: relative, children: children, inherited: frame.gitScope)
            frame.opened[child.name] = Frame(directory: directory, relativePath: relative, children: children, gitScope: scope)
            if let failure {
                // Walk what could be listed, and say that the listing is incomplete.
                let listed = children.filter { !$0.isEnterMarker }.count
                pending.append(.skipped(SkippedEntry(
                    relativePath: relative,
                    reason: .unreadableDirectory(errno: failure, message: "listing stopped after \(listed) entries: \(errnoText(failure))"))))
            }
            return .directory(SourceDirectory(relativePath: relative, modificationTime: modified, mode: mode))
        case typeSymlink:
            return .skipped(SkippedEntry(relativePath: relative, reason: .symlink(target: readLink(child.name, in: frame.fd))))
        case typeSocket: return .skipped(SkippedEntry(relativePath: relative, reason: .socket))
        case typeFIFO: return .skipped(SkippedEntry(relativePath: relative, reason: .fifo))
        case typeCharacter: return .skipped(SkippedEntry(relativePath: relative, reason: .characterDevice))
        case typeBlock: return .skipped(SkippedEntry(relativePath: relative, reason: .blockDevice))
        default: return .skipped(SkippedEntry(relativePath: relative, reason: .unknownType(mode: mode)))
        }
    }

    /// What git itself checks before it calls a directory a repository: `HEAD`, `objects/` and `refs/`. (A
    /// false match is harmless: keeping it whole fails and its files are then stored one by one.)
    static func looksLikeBareRepository(_ children: [Child]) -> Bool {
        func has(_ name: String, _ type: UInt32) -> Bool {
            children.contains { !$0.isEnterMarker && $0.name == Array(name.utf8) && $0.status.map { UInt32($0.st_mode) & typeMask == type } == true }
        }
        return has("HEAD", typeRegular) && has("objects", typeDirectory) && has("refs", typeDirectory)
    }

    /// Regular files and their bytes under a directory left out, for the summary (metadata only, no symlink
    /// followed; what cannot be listed is not counted).
    private func usage(ofDirectory name: [UInt8], in parent: Int32) -> (files: Int, bytes: Int64) {
        let fd = (name + [0]).withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { openat(parent, $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        }
        guard fd >= 0 else { return (0, 0) }
        guard let directory = fdopendir(fd) else {
            closeDescriptor(fd)
            return (0, 0)
        }
        defer { closedir(directory) }
        var files = 0, bytes: Int64 = 0
        while let entry = readdir(directory) {
            let child: [UInt8] = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if child == [46] || child == [46, 46] { continue }
            var status = stat()
            let found = (child + [0]).withUnsafeBufferPointer {
                $0.withMemoryRebound(to: CChar.self) { fstatat(dirfd(directory), $0.baseAddress!, &status, AT_SYMLINK_NOFOLLOW) }
            }
            guard found == 0 else { continue }
            switch UInt32(status.st_mode) & typeMask {
            case typeRegular: files += 1; bytes += Int64(status.st_size)
            case typeDirectory:
                let inner = usage(ofDirectory: child, in: dirfd(directory))
                files += inner.files
                bytes += inner.bytes
            default: break
            }
        }
        return (files, bytes)
    }

    private func readLink(_ name: [UInt8], in fd: Int32) -> RawPath {
        var terminated = name
        terminated.append(0)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = terminated.withUnsafeBufferPointer { namePointer in
            namePointer.withMemoryRebound(to: CChar.self) { cName in
                buffer.withUnsafeMutableBufferPointer { out in
                    out.withMemoryRebound(to: CChar.self) { readlinkat(fd, cName.baseAddress!, $0.baseAddress!, $0.count) }
                }
            }
        }
        return RawPath(bytes: count > 0 ? Array(buffer[0..<count]) : [])
    }
}
