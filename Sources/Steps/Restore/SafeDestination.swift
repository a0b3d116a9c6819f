#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PipelineCore
import Synchronization
import SystemIO

/// A relative path checked to stay inside the destination: no absolute path, no `..`, no NUL byte, not empty.
/// `.` and empty components (`a//b`) are dropped.
public struct SafeRelativePath: Sendable, Hashable, CustomStringConvertible {
    public let components: [[UInt8]]

    public init(bytes: [UInt8]) throws {
        let shown = String(decoding: bytes, as: UTF8.self)
        guard bytes.first != UInt8(ascii: "/") else { throw RestoreError(.unsafePath, "'\(shown)' is an absolute path") }
        guard !bytes.contains(0) else { throw RestoreError(.unsafePath, "'\(shown)' contains a NUL byte") }
        var parts: [[UInt8]] = []
        for part in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            guard !part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) else {
                throw RestoreError(.unsafePath, "'\(shown)' contains a '..' component")
            }
            guard part.count <= 255 else { throw RestoreError(.unsafePath, "'\(shown)' has a name longer than 255 bytes") }
            parts.append(Array(part))
        }
        guard !parts.isEmpty else { throw RestoreError(.unsafePath, "'\(shown)' names no file") }
        components = parts
    }

    public init(_ string: String) throws { try self.init(bytes: Array(string.utf8)) }

    /// `self` below a first component (the source label, with `/` made `_`).
    public func prefixed(by component: String) throws -> SafeRelativePath {
        let label = component.replacingOccurrences(of: "/", with: "_")
        return try SafeRelativePath(bytes: Array(label.utf8) + [UInt8(ascii: "/")] + components.joined(separator: [UInt8(ascii: "/")]))
    }

    /// The same path with `suffix` added to the file name (`~v2`, `.mp4`).
    public func appendingToName(_ suffix: String) -> SafeRelativePath {
        var copy = components
        copy[copy.count - 1] += Array(suffix.utf8)
        return SafeRelativePath(unchecked: copy)
    }

    private init(unchecked components: [[UInt8]]) { self.components = components }

    public var name: [UInt8] { components[components.count - 1] }

    public var description: String { String(decoding: Array(components.joined(separator: [UInt8(ascii: "/")])), as: UTF8.self) }
}

/// The directory files are restored into. Every file is written below it through directory descriptors opened one
/// component at a time with `O_NOFOLLOW`, so a symbolic link inside it (planted before or during the restore) can
/// never redirect a write elsewhere; files are written to `.name.partial`, synced, given their modification time
/// and renamed into place. The directories whose names changed are synced together by ``syncNames()``, which the
/// restore calls before it reports those files restored. Blocking: call from the thread pool.
public final class SafeDestination: @unchecked Sendable {
    public let root: String
    private let rootDescriptor: Int32
    /// Directories (relative components; `[]` is the root) holding a rename or a new directory not yet synced.
    private let unsyncedDirectories = Mutex<Set<[[UInt8]]>>([])

    public init(root: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw RestoreError(.localIO, "cannot create the destination \(root): \(error.localizedDescription)")
        }
        let descriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RestoreError(.localIO, "cannot open the destination \(root): \(String(cString: strerror(errno)))") }
        self.root = root
        rootDescriptor = descriptor
    }

    deinit { close(rootDescriptor) }

    /// Where one file goes: its directory (opened, created as needed) and its name.
    public struct Target: @unchecked Sendable {
        public let path: SafeRelativePath
        let directory: Int32
        let name: [UInt8]
        let partialName: [UInt8]

        public func close() { Glibc.close(directory) }
    }

    /// Opens (creating) every parent directory of `path` without following links. A link or a file where a
    /// directory should be is refused, naming the component.
    public func target(_ path: SafeRelativePath, partialTag: String) throws -> Target {
        var descriptor = dup(rootDescriptor)
        guard descriptor >= 0 else { throw RestoreError(.localIO, "cannot open the destination \(root): \(String(cString: strerror(errno)))") }
        var walked: [UInt8] = []
        for component in path.components.dropLast() {
            walked += (walked.isEmpty ? [] : [UInt8(ascii: "/")]) + component
            let next = Self.withCString(component) { name -> Int32 in
                if mkdirat(descriptor, name, 0o755) != 0, errno != EEXIST { return -1 }
                return openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let code = errno
            Glibc.close(descriptor)
            guard next >= 0 else {
                let shown = String(decoding: walked, as: UTF8.self)
                if code == ELOOP || code == ENOTDIR {
                    throw RestoreError(.unsafePath, "\(path): '\(shown)' in the destination is a symbolic link or a file, not a directory; nothing is written through it")
                }
                throw RestoreError(.localIO, "\(path): cannot create or open the directory '\(shown)': \(String(cString: strerror(code)))")
            }
            descriptor = next
        }
        let name = path.name
        var partial = Array(".".utf8) + name + Array(".partial".utf8)
        if partial.count > 255 { partial = Array(".restore-\(partialTag).partial".utf8) }
        return Target(path: path, directory: descriptor, name: name, partialName: partial)
    }

    /// What is at the target now (not following a link), or nil.
    public func existing(_ target: Target) -> stat? {
        var info = stat()
        let result = Self.withCString(target.name) { fstatat(target.directory, $0, &info, AT_SYMLINK_NOFOLLOW) }
        return result == 0 ? info : nil
    }

    /// Opens the existing regular file at the target for reading (not following links), or returns -1.
    public func openExisting(_ target: Target) -> Int32 {
        Self.withCString(target.name) { openat(target.directory, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
    }

    /// Opens the target's `.partial` file, keeping what it holds unless `fresh`; returns it and its size.
    public func openPartial(_ target: Target, fresh: Bool) throws -> (descriptor: Int32, size: Int64) {
        let descriptor = Self.withCString(target.partialName) {
            openat(target.directory, $0, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0o644)
        }
        guard descriptor >= 0 else {
            throw RestoreError(.localIO, "\(target.path): cannot open its partial file: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(descriptor)
            throw RestoreError(.unsafePath, "\(target.path): its partial file is not a regular file")
        }
        return (descriptor, Int64(info.st_size))
    }

    /// Removes the file at the target (not following a link).
    public func remove(_ target: Target) {
        _ = Self.withCString(target.name) { unlinkat(target.directory, $0, 0) }
    }

    public func removePartial(_ target: Target) {
        _ = Self.withCString(target.partialName) { unlinkat(target.directory, $0, 0) }
    }

    /// Cuts or extends the finished partial file to `length` (when given), sets its modification time, syncs it
    /// and renames it over the target (replacing a link there, never following it); closes the descriptor. The
    /// new name is durable after the next ``syncNames()``: until then a crash may leave the synced `.partial`
    /// file instead, which the next run checks or writes again.
    public func commit(_ descriptor: Int32, to target: Target, modifiedAt: Double?, length: Int64? = nil) throws {
        defer { Glibc.close(descriptor) }
        // A file written sparsely (``SparseWrite``) that ends in zeros was not written to its end.
        if let length, ftruncate(descriptor, off_t(length)) != 0 {
            throw RestoreError(.localIO, "\(target.path): cannot set its length: \(String(cString: strerror(errno)))")
        }
        if let modifiedAt {
            let seconds = modifiedAt.rounded(.down)
            let times = [
                timespec(tv_sec: 0, tv_nsec: (1 << 30) - 1),  // UTIME_NOW: the access time becomes now
                timespec(tv_sec: Int(seconds), tv_nsec: Int(((modifiedAt - seconds) * 1_000_000).rounded()) * 1000),
            ]
            guard futimens(descriptor, times) == 0 else {
                throw RestoreError(.localIO, "\(target.path): cannot set its modification time: \(String(cString: strerror(errno)))")
            }
        }
        guard fsync(descriptor) == 0 else { throw RestoreError(.localIO, "\(target.path): cannot sync it: \(String(cString: strerror(errno)))") }
        if let existing = existing(target), (existing.st_mode & S_IFMT) == S_IFDIR {
            throw RestoreError(.exists, "\(target.path): a directory of that name is in the way")
        }
        let renamed = Self.withCString(target.partialName) { from in
            Self.withCString(target.name) { to in renameat(target.directory, from, target.directory, to) }
        }
        guard renamed == 0 else { throw RestoreError(.localIO, "\(target.path): cannot move it into place: \(String(cString: strerror(errno)))") }
        // The file's directory and every one above it: any of them may have been created for it.
        let directories = target.path.components.dropLast()
        unsyncedDirectories.withLock { pending in
            for depth in 0...directories.count { pending.insert(Array(directories.prefix(depth))) }
        }
    }

    /// Syncs every directory that a commit changed since the last call, once each (one fsync per directory rather
    /// than one per file: restoring thousands of small files into a few directories paid a journal commit for each
    /// name). Call before reporting the committed files restored.
    public func syncNames() throws {
        let directories = unsyncedDirectories.withLock { pending in
            defer { pending.removeAll() }
            return pending.sorted { $0.count > $1.count }  // deepest first: a parent's entry after its child's
        }
        for components in directories {
            var descriptor = dup(rootDescriptor)
            for component in components where descriptor >= 0 {
                let next = Self.withCString(component) { openat(descriptor, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                Glibc.close(descriptor)
                descriptor = next
            }
            let shown = components.isEmpty ? "." : String(decoding: Array(components.joined(separator: [UInt8(ascii: "/")])), as: UTF8.self)
            guard descriptor >= 0 else {
                throw RestoreError(.localIO, "cannot open the restored directory '\(shown)' to sync it: \(String(cString: strerror(errno)))")
            }
            defer { Glibc.close(descriptor) }
            guard fsync(descriptor) == 0 else {
                throw RestoreError(.localIO, "cannot sync the restored directory '\(shown)': \(String(cString: strerror(errno)))")
            }
        }
    }

    static func withCString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var terminated = bytes
        terminated.append(0)
        return try terminated.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}

/// Writes all of `bytes` at `offset`.
func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
    do {
        try POSIXFile.writeAll(fd: descriptor, bytes, at: offset)
    } catch let error as FileIOError {
        throw RestoreError(.localIO, "cannot write a restored file: \(String(cString: strerror(error.code)))")
    }
}

/// ``writeAll(_:_:at:)`` into a partial file's new region, leaving aligned runs of zeros as holes (``SparseWrite``):
/// the region reads as zeros already, and the commit gives the file its full length.
func writeSkippingZeros(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
    try SparseWrite.writeSkippingZeros(bytes, at: offset) { stretch, position in try writeAll(descriptor, stretch, at: position) }
}
