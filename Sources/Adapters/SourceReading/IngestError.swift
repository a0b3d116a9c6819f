#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong while reading a source, as one line naming the path (never file contents, never
/// a secret): `"/media/cdrom/a.vob: read failed at offset 1048576: Input/output error (after 4 attempts)"`.
public struct IngestError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The path could not be opened or inspected (missing, permission, not a directory…).
        case cannotOpen
        /// A read failed (EIO on a scratched disc) even after the retries.
        case readFailed
        /// The file changed size or content while it was read; the bytes read cannot be trusted.
        case sourceChanged
        /// libarchive could not read the image (not an ISO, truncated, corrupt).
        case archiveFailed
        /// An image's UDF file system is corrupt or of a kind the UDF reader does not handle (the image is then
        /// kept whole as a disc image, never ingested from its ISO 9660 view alone).
        case unreadableUDF
        /// A parameter is out of range (chunk size 0, sector size not a multiple of 512…).
        case invalidArgument
    }

    public let code: Code
    /// The file, directory, device or image the error is about (byte-exact paths are shown UTF-8-repaired).
    public let path: String
    /// The `errno` behind it, when a system call failed.
    public let errno: Int32?
    public let message: String

    public init(_ code: Code, path: String, errno: Int32? = nil, _ message: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.message = message
    }

    /// `message: strerror(errno)` for a failed system call.
    static func system(_ code: Code, path: String, errno value: Int32, _ what: String) -> IngestError {
        IngestError(code, path: path, errno: value, "\(what): \(errnoText(value))")
    }

    public var description: String { "\(path): \(message)" }
}

/// `strerror` text of an errno value ("Input/output error").
func errnoText(_ value: Int32) -> String {
    String(cString: strerror(value))
}

func closeDescriptor(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}
