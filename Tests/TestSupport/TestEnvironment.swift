import Catalog
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import SystemIO

/// The real servers `scripts/test` started, and helpers to use them in isolation.
///
/// Tests that need a server fail (never skip) when the server is not there: a suite that passes without its
/// servers would prove nothing.
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public let variable: String
        public init(variable: String) { self.variable = variable }
        public var description: String { "\(variable) is not set: run the tests with scripts/test, which starts PostgreSQL and moto" }
    }

    public static func required(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { throw Missing(variable: variable) }
        return value
    }

    /// The throwaway server's maintenance database (`TEST_DATABASE_URL`).
    public static func adminDatabaseURL() throws -> DatabaseURL {
        try DatabaseURL(parsing: try required("TEST_DATABASE_URL"))
    }

    public static let logger: Logger = {
        var logger = Logger(label: "tests")
        logger.logLevel = .warning
        return logger
    }()

    /// The directory holding the built executables (`.build/debug`), next to the test binary.
    public static var productsDirectory: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (executable as NSString).deletingLastPathComponent
        // On Linux the test binary may sit inside a `.xctest` bundle directory.
        while directory.hasSuffix(".xctest") || directory.hasSuffix("/Contents/MacOS") {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory
    }

    /// A unique name for a test's database, bucket or directory.
    /// A loopback TCP port nobody listens on now (bound, read and closed again).
    public static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw Missing(variable: "a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
    }
}

/// A fresh, empty database on the test server, dropped by `drop()`.
public struct TestDatabase: Sendable {
    public let url: DatabaseURL

    public static func create() async throws -> TestDatabase {
        let admin = try TestEnvironment.adminDatabaseURL()
        let name = TestEnvironment.uniqueName("t")
        try await CatalogDatabase.withClient(admin, logger: TestEnvironment.logger) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: TestEnvironment.logger).collect()
        }
        var url = admin
        url.database = name
        return TestDatabase(url: url)
    }

    public func drop() async throws {
        let admin = try TestEnvironment.adminDatabaseURL()
        try await CatalogDatabase.withClient(admin, logger: TestEnvironment.logger) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(url.database) WITH (FORCE)"), logger: TestEnvironment.logger).collect()
        }
    }

    /// Runs `body` with a client on this database, then drops the database whatever happened.
    public static func withFresh<Result: Sendable>(_ body: (TestDatabase, PostgresClient) async throws -> Result) async throws -> Result {
        let database = try await create()
        do {
            let result = try await CatalogDatabase.withClient(database.url, logger: TestEnvironment.logger) { client in
                try await body(database, client)
            }
            try await database.drop()
            return result
        } catch {
            try? await database.drop()
            throw error
        }
    }
}

/// Runs one of the built executables as a real child process.
public enum Program {
    /// Runs `name` (uploader, archiver, …) with exactly `environment` plus PATH and HOME from the test process.
    public static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> Subprocess.Result {
        try await start(name, arguments, environment: environment).wait()
    }

    /// Runs `name` with `input` (and a newline) on its standard input, through a pipe: not a terminal, as from a script.
    /// The input travels in the child's environment, never on a command line.
    public static func run(_ name: String, _ arguments: [String], standardInput input: String, environment: [String: String] = [:]) async throws -> Subprocess.Result {
        let path = TestEnvironment.productsDirectory + "/" + name
        var environment = environment
        environment["PB_TEST_STDIN"] = input
        return try await run("/bin/sh", ["-c", #"printf '%s\n' "$PB_TEST_STDIN" | PB_TEST_STDIN= exec "$0" "$@""#, path] + arguments, environment: environment)
    }

    /// Starts `name` and returns at once, for tests that signal or kill it.
    public static func start(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Subprocess.Running {
        let inherited = ProcessInfo.processInfo.environment
        var childEnvironment = environment
        for key in ["PATH", "HOME", "LANG"] where childEnvironment[key] == nil {
            childEnvironment[key] = inherited[key]
        }
        // No config file from the developer's home directory may leak into a test.
        childEnvironment["XDG_CONFIG_HOME"] = childEnvironment["XDG_CONFIG_HOME"] ?? "/nonexistent"
        let path = name.hasPrefix("/") ? name : TestEnvironment.productsDirectory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestEnvironment.Missing(variable: "the built executable \(path)")
        }
        return try Subprocess.spawn(path, arguments, environment: childEnvironment)
    }
}

extension Subprocess.Running {
    /// The child's state as `/proc/<pid>/stat` shows it (`R`, `S`, `T` stopped, `Z` exited but not yet waited
    /// for), nil once it has been waited for.
    public var processState: Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(processID)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // The state follows the command name's closing parenthesis (a name may hold spaces and parentheses).
        return stat[stat.index(after: close)...].first { $0 != " " }
    }

    /// Not exited yet (an exited child stays a zombie, answering kill(0), until it is waited for).
    public var isRunning: Bool { processState.map { $0 != "Z" } ?? false }
}

/// A temporary directory (mode 0755, so the `postgres` user can reach an embedded cluster in it when the tests
/// run as root), removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "pb") throws {
        // Short: an embedded cluster's socket path must stay under 108 bytes.
        path = "/tmp/\(TestEnvironment.uniqueName(prefix))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
