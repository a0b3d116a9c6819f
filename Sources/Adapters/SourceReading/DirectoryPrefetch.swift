#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SystemIO

/// Lists a tree's directories and `lstat`s their entries on several threads, so that a walk of a cold tree finds
/// them in the kernel's caches. ``SourceWalker`` reads one directory at a time, in order, and waits for each read;
/// on a cold disk that leaves the device idle between requests, where several outstanding ones are served almost
/// as fast as one (rclone lists with 8 checkers for the same reason).
///
/// It only reads, keeps nothing and reports nothing: the walk decides what the source holds. Stopping it early (or
/// its failing to read a directory) costs nothing but the warming. It follows what the walk would enter: no
/// symlinks, not across file systems, not into excluded directories (and not into `.git` when those are kept whole).
public final class DirectoryPrefetch: Sendable {
    private let state: NSCondition
    private let shared: Shared

    /// The work list, guarded by `state`.
    private final class Shared: @unchecked Sendable {
        /// Relative paths still to list; the next one taken is the last (roughly the walk's order).
        var directories: [[UInt8]] = [[]]
        var busy = 0
        var stopped = false
        /// Readers not yet returned, and directories listed so far (for tests and logs).
        var running = 0
        var listed = 0
    }

    /// How many directories may wait to be listed; past that the prefetch just skips some (bounded memory on a
    /// tree with millions of directories).
    static let maximumWaiting = 20_000

    /// Starts `threads` readers below `root`.
    public init(root: RawPath, configuration: SourceWalkerConfiguration, threads: Int = 8) {
        state = NSCondition()
        shared = Shared()
        var rootStatus = stat()
        let rootDevice: UInt64? = root.withCString { lstat($0, &rootStatus) } == 0 ? UInt64(rootStatus.st_dev) : nil
        let work = Work(root: root, configuration: configuration, rootDevice: rootDevice)
        shared.running = max(1, threads)
        for _ in 0..<max(1, threads) {
            let thread = Thread { [state, shared] in Self.run(work, state: state, shared: shared) }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    /// Asks the readers to stop after the directory each is reading; does not wait for them.
    public func stop() {
        state.lock()
        shared.stopped = true
        state.broadcast()
        state.unlock()
    }

    /// Blocks until every reader has returned (the whole tree listed, or stopped); the directories listed.
    @discardableResult
    public func waitUntilFinished() -> Int {
        state.lock()
        defer { state.unlock() }
        while shared.running > 0 { state.wait() }
        return shared.listed
    }

    deinit { stop() }

    private struct Work: Sendable {
        let root: RawPath
        let configuration: SourceWalkerConfiguration
        /// Nil when the root could not be inspected (the walk reports that): then no device is compared.
        let rootDevice: UInt64?
    }

    private static func run(_ work: Work, state: NSCondition, shared: Shared) {
        while true {
            state.lock()
            while shared.directories.isEmpty && shared.busy > 0 && !shared.stopped { state.wait() }
            if shared.stopped || shared.directories.isEmpty {
                shared.running -= 1
                state.broadcast()  // the last reader to go idle wakes the others to finish
                state.unlock()
                return
            }
            let relative = shared.directories.removeLast()
            shared.busy += 1
            state.unlock()

            let subdirectories = list(relative, work: work)

            state.lock()
            let room = max(0, maximumWaiting - shared.directories.count)
            // Reversed: the first in name order is taken next.
            shared.directories.append(contentsOf: (subdirectories ?? []).sorted { $0.lexicographicallyPrecedes($1) }.prefix(room).reversed())
            shared.busy -= 1
            if subdirectories != nil { shared.listed += 1 }
            state.broadcast()
            state.unlock()
        }
    }

    /// Reads one directory and inspects each entry (what loads its inode); returns the subdirectories to enter, or
    /// nil when the directory cannot be opened.
    private static func list(_ relative: [UInt8], work: Work) -> [[UInt8]]? {
        let path = relative.isEmpty ? work.root : work.root.appending(RawPath(bytes: relative))
        let fd = path.withCString { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        guard let directory = fdopendir(fd) else {
            closeDescriptor(fd)
            return nil
        }
        defer { closedir(directory) }
        var subdirectories: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name: [UInt8] = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name == [46] || name == [46, 46] { continue }
            var status = stat()
            let inspected = RawPath(bytes: name).withCString { fstatat(dirfd(directory), $0, &status, AT_SYMLINK_NOFOLLOW) }
            guard inspected == 0, UInt32(status.st_mode) & typeMask == typeDirectory else { continue }
            if work.configuration.stayOnFileSystem, let rootDevice = work.rootDevice, UInt64(status.st_dev) != rootDevice { continue }
            if work.configuration.keepGitRepositoriesWhole && name == gitName { continue }
            let child = relative.isEmpty ? name : relative + [47] + name
            if work.configuration.excludes.contains(where: { $0.matches(RawPath(bytes: child), isDirectory: true) }) { continue }
            subdirectories.append(child)
        }
        return subdirectories
    }
}
