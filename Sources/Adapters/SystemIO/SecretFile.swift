#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

extension POSIXFile {
    /// Writes a new file readable by its owner only (mode 0600), refusing to replace one that exists, and makes it
    /// durable (file and directory synced) before returning: for keys, which must never be half-written or lost.
    public static func createSecretFile(_ path: String, contents: [UInt8]) throws {
        let fd = try createExclusive(path, mode: 0o600)
        do {
            // The mode asked for is filtered by the umask; a key file is 0600 whatever the umask says.
            guard fchmod(fd, 0o600) == 0 else { throw FileIOError(operation: "chmod", path: path, errno: errno) }
            try writeAll(fd: fd, ByteBuffer(bytes: contents), path: path)
            try sync(fd: fd)
            closeFile(fd)
        } catch {
            closeFile(fd)
            try? removeFile(path)
            throw error
        }
        try syncDirectory(parentDirectory(of: path))
    }
}
