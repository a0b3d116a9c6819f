/// Everything that can go wrong in the Catalog module, with a one-line message that never carries a secret.
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case postgresNotInstalled
        case embeddedClusterFailed
        case unreachable
        case migrationFailed
        case schemaTampered
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
