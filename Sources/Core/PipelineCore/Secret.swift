/// A value that must never appear in logs, errors or terminal output.
///
/// `description` is always redacted; read `revealed` only where the value is actually sent (a header, a socket).
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    public let revealed: String

    public init(_ value: String) { self.revealed = value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
