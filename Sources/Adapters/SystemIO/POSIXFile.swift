#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CXattr
import NIOCore

/// Moves a buffer into a `@Sendable` closure without keeping a second reference, so the closure owns the only one
/// and can write into it without a copy. Handed from one task to the next, never shared.
public final class BufferHandoff: @unchecked Sendable {
    private var buffer: ByteBuffer?
    public init(_ buffer: ByteBuffer?) { self.buffer = buffer }
    public func take() -> ByteBuffer? {
        defer { buffer = nil }
        return buffer
    }
}

/// Thin wrappers over POSIX file calls. Every function blocks: call them through ``blocking(_:)``.
public enum POSIXFile {
    public static func openForReading(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(operation: "open", path: path, errno: errno) }
        return fd
    }

    /// Creates a new file that must not exist yet (the temporary half of an atomic write).
    public static func createExclusive(_ path: String, mode: mode_t = 0o644) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileIOError(operation: "create", path: path, errno: errno) }
        return fd
    }

    /// Opens a file for writing at chosen offsets (`pwrite`), creating it (empty) when it is missing.
    public static func openForWriting(_ path: String, mode: mode_t = 0o600) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileIOError(operation: "open for writing", path: path, errno: errno) }
        return fd
    }

    /// Cuts (or extends with zeros) the file to `length` bytes.
    public static func truncate(fd: Int32, to length: Int64, path: String? = nil) throws {
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileIOError(operation: "truncate", path: path, errno: errno) }
    }

    /// The bytes an unprivileged writer may still put on the file system that holds `path`.
    public static func availableBytes(onFileSystemOf path: String) throws -> Int64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { throw FileIOError(operation: "statvfs", path: path, errno: errno) }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    public static func status(fd: Int32) throws -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileIOError(operation: "fstat", errno: errno) }
        return info
    }

    /// nil when the path does not exist.
    public static func status(path: String) throws -> stat? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw FileIOError(operation: "lstat", path: path, errno: errno)
        }
        return info
    }

    public static func isRegularFile(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFREG }
    public static func isDirectory(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFDIR }

    /// Reads exactly `count` bytes at `offset` unless the file ends first; returns what was read. A range in a hole
    /// comes back as shared zeros without a read (``SparseRead``).
    public static func read(fd: Int32, offset: Int64, count: Int, reusing spare: BufferHandoff? = nil) throws -> ByteBuffer {
        if SparseRead.isHole(fd: fd, offset: offset, count: count) { return SparseRead.zeros(count) }
        var buffer = spare?.take() ?? ByteBufferAllocator().buffer(capacity: count)
        if buffer.capacity < count { buffer = ByteBufferAllocator().buffer(capacity: count) }
        buffer.clear()
        var total = 0
        while total < count {
            let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - total) { pointer in
                var result: Int
                repeat {
                    result = pread(fd, pointer.baseAddress, count - total, off_t(offset) + off_t(total))
                } while result < 0 && errno == EINTR
                guard result >= 0 else { throw FileIOError(operation: "read", errno: errno) }
                return result
            }
            if got == 0 { break }
            total += got
        }
        return buffer
    }

    public static func writeAll(fd: Int32, _ buffer: ByteBuffer, path: String? = nil) throws {
        try buffer.withUnsafeReadableBytes { try writeAll(fd: fd, $0, path: path) }
    }

    /// Writes every byte of `bytes`, at `offset` (pwrite) or at the file position (write), through short writes
    /// and EINTR. `retry` may repair the cause of an error (and return true to try the same write again).
    public static func writeAll(
        fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64? = nil, path: String? = nil, retry: (Int32) -> Bool = { _ in false }
    ) throws {
        guard let base = bytes.baseAddress else { return }
        var written = 0
        while written < bytes.count {
            let result =
                if let offset { pwrite(fd, base + written, bytes.count - written, off_t(offset) + off_t(written)) }
                else { write(fd, base + written, bytes.count - written) }
            if result < 0 {
                let code = errno
                if code == EINTR || retry(code) { continue }
                throw FileIOError(operation: "write", path: path, errno: code)
            }
            written += result
        }
    }

    /// Asks the kernel to start writing `length` bytes at `offset` to the disk now, without waiting (Linux only;
    /// advisory). A later fsync then has less left to wait for: a writer that must sync before it answers (a chunk
    /// of an upload) lets the disk work while more bytes arrive, instead of all at the end.
    public static func startWriteback(fd: Int32, offset: Int64, length: Int64) {
        _ = cxattr_start_writeback(fd, offset, length)
    }

    /// Writes out and syncs the whole file system that holds `fd` (`syncfs`): for a tree written by another program
    /// (tar, git) that synced none of its files.
    public static func syncFileSystem(fd: Int32) throws {
        guard cxattr_sync_file_system(fd) == 0 else { throw FileIOError(operation: "syncfs", errno: errno) }
    }

    /// Advises the kernel that the file's cached pages will not be needed (advisory; Linux only).
    public static func dropCachedPages(fd: Int32) {
        #if os(Linux)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        #endif
    }

    /// Sets the extended attribute `name` on the open file `fd`. False where the file system keeps none (or not
    /// this one: `ENOTSUP`, a value too large, a read-only mount…); the caller then keeps the value elsewhere.
    public static func setAttribute(fd: Int32, name: String, value: [UInt8]) -> Bool {
        value.withUnsafeBytes { cxattr_fset(fd, name, $0.baseAddress, $0.count) } == 0
    }

    /// The extended attribute `name` of the open file `fd`, or of the file at `path` (a symbolic link is not
    /// followed); nil when it has none (or the file system keeps none) or its value is longer than `capacity`.
    public static func attribute(fd: Int32? = nil, path: String? = nil, name: String, capacity: Int) -> [UInt8]? {
        var value = [UInt8](repeating: 0, count: capacity)
        let length = value.withUnsafeMutableBytes { bytes -> Int in
            if let fd { return cxattr_fget(fd, name, bytes.baseAddress, capacity) }
            guard let path else { return -1 }
            return cxattr_lget(path, name, bytes.baseAddress, capacity)
        }
        guard length >= 0 else { return nil }
        value.removeLast(capacity - length)
        return value
    }

    public static func sync(fd: Int32) throws {
        guard fsync(fd) == 0 else { throw FileIOError(operation: "fsync", errno: errno) }
    }

    /// Makes a rename or unlink in `directory` durable.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(operation: "open the directory", path: directory, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileIOError(operation: "fsync the directory", path: directory, errno: errno) }
    }

    public static func closeFile(_ fd: Int32) { _ = close(fd) }

    public static func renameFile(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else { throw FileIOError(operation: "rename", path: from, errno: errno) }
    }

    /// Removes a file; a missing file is not an error.
    public static func removeFile(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw FileIOError(operation: "unlink", path: path, errno: errno) }
    }

    /// Removes an empty directory; returns false when it is not empty or missing.
    public static func removeEmptyDirectory(_ path: String) -> Bool { rmdir(path) == 0 }

    /// Runs `body` again, up to five times, when it fails with ENOENT: a store's delete removes directories it leaves
    /// empty, so one can vanish between a writer's `mkdir -p` and the file it then creates there. Once that file is
    /// in it, the directory is not empty and stays; a file that is really missing fails all five times.
    public static func retryingVanishedDirectories<Result>(_ body: () throws -> Result) throws -> Result {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let error as FileIOError where error.code == ENOENT && attempt < 5 {
                attempt += 1
            }
        }
    }

    /// `mkdir -p`, syncing each parent that gained an entry so the new path survives a crash.
    public static func makeDirectories(_ path: String) throws {
        if let info = try status(path: path) {
            guard isDirectory(info) else { throw FileIOError(operation: "mkdir", path: path, errno: ENOTDIR) }
            return
        }
        let parent = parentDirectory(of: path)
        if parent != path { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0, errno != EEXIST { throw FileIOError(operation: "mkdir", path: path, errno: errno) }
        try syncDirectory(parent)
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Names in a directory, without `.` and `..`.
    public static func directoryEntries(_ path: String) throws -> [(name: String, isDirectory: Bool)] {
        guard let dir = opendir(path) else { throw FileIOError(operation: "opendir", errno: errno) }
        defer { closedir(dir) }
        var entries: [(String, Bool)] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            var isDirectory = Int32(entry.pointee.d_type) == Int32(DT_DIR)
            if Int32(entry.pointee.d_type) == Int32(DT_UNKNOWN), let info = try status(path: path + "/" + name) {
                isDirectory = POSIXFile.isDirectory(info)
            }
            entries.append((name, isDirectory))
        }
        return entries
    }
}
