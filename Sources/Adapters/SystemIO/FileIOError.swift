#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A local file operation that failed, with the system's reason: the one error shape of SystemIO. Callers that
/// know more (which restored file, which staged object) wrap it in their own module's error.
public struct FileIOError: Error, Sendable, CustomStringConvertible {
    /// The system call or operation ("open", "write", "fsync").
    public let operation: String
    /// The file, where the caller knows it.
    public let path: String?
    public let code: Int32

    public init(operation: String, path: String? = nil, errno code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String {
        "cannot \(operation)\(path.map { " " + $0 } ?? ""): \(String(cString: strerror(code)))"
    }
}
