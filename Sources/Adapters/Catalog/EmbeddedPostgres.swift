#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import PipelineCore
import PostgresNIO
import SystemIO

/// A private PostgreSQL cluster under the data directory, reachable only through a unix socket in it.
///
/// Several processes may call `ensureRunning` at once: a file lock makes one of them initialise and start the
/// cluster and the others reuse it. The cluster keeps running after the process exits, so the next program
/// starts instantly; `stop()` (the `database stop` command) shuts it down.
public struct EmbeddedPostgres: Sendable {
    public static let superuser = "backup"
    public static let databaseName = "backup"
    /// Only names the socket file (`.s.PGSQL.5432`); the cluster listens on no TCP port.
    static let socketPort = 5432

    public let clusterDirectory: String
    let logger: Logger
    let environment: [String: String]

    public init(clusterDirectory: String, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.clusterDirectory = clusterDirectory
        self.logger = logger
        self.environment = environment
    }

    var pgdata: String { clusterDirectory + "/data" }
    var socketDirectory: String { clusterDirectory + "/run" }
    var logFile: String { clusterDirectory + "/postgres.log" }
    var lockFile: String { clusterDirectory + ".lock" }

    public var url: DatabaseURL {
        DatabaseURL(
            endpoint: .unixSocket(directory: socketDirectory, port: Self.socketPort),
            user: Self.superuser, password: nil, database: Self.databaseName, sslMode: .disable)
    }

    /// Starts the cluster unless it is already running, creates the catalog database, connects to it once, and
    /// returns its URL.
    public func ensureRunning() async throws -> DatabaseURL {
        // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
        let socketPath = "\(socketDirectory)/.s.PGSQL.\(Self.socketPort)"
        guard socketPath.utf8.count < 108 else {
            throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: the socket path \(socketPath) is longer than the 107 bytes unix sockets allow; choose a shorter BACKUP_DATA_DIR")
        }
        if await catalogAnswers(socketPath: socketPath) {
            logger.info("reusing the embedded PostgreSQL cluster", metadata: ["catalog.cluster": "\(clusterDirectory)"])
            return url
        }
        let owner = try ClusterOwner.current()
        let binaries = try PostgresBinaries.locate(environment: environment, clusterVersion: existingClusterVersion())

        try FileManager.default.createDirectory(atPath: (clusterDirectory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let lock = try await ClusterLock.acquire(path: lockFile)
        defer { lock.release() }

        try owner.prepareDirectory(clusterDirectory)
        try owner.prepareDirectory(socketDirectory)
        if !FileManager.default.fileExists(atPath: pgdata + "/PG_VERSION") {
            try await initialise(binaries: binaries, owner: owner)
        }
        try writeSettings(owner: owner)

        let status = try await owner.run(binaries.pgCtl, ["status", "-D", pgdata])
        if status.status == 0 {
            logger.info("reusing the embedded PostgreSQL cluster", metadata: ["catalog.cluster": "\(clusterDirectory)"])
        } else {
            logger.info("starting the embedded PostgreSQL cluster", metadata: ["catalog.cluster": "\(clusterDirectory)"])
            let start = try await owner.run(binaries.pgCtl, ["start", "-D", pgdata, "-l", logFile, "-w", "-t", "60", "-s"])
            guard start.status == 0 else {
                throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL did not start (pg_ctl exit \(start.status)): \(lastLine(ofFile: logFile) ?? start.output); full log in \(logFile)")
            }
        }
        try await createCatalogDatabase()
        // Either way the catalog database has answered one connection: callers need not check it again.
        try await CatalogDatabase.checkReachable(url, logger: logger)
        return url
    }

    /// The common case, a cluster already running with its catalog database: one connection to that database
    /// answers it, where the full check spawns `runuser` and `pg_ctl status` and connects to `postgres` (about a
    /// third of an unchanged second run's wall time on a cold cache). Any failure means "not known to run": the
    /// locked path below then looks, starts and creates as needed.
    private func catalogAnswers(socketPath: String) async -> Bool {
        guard FileManager.default.fileExists(atPath: pgdata + "/PG_VERSION"), FileManager.default.fileExists(atPath: socketPath) else {
            return false
        }
        return (try? await CatalogDatabase.checkReachable(url, logger: logger)) != nil
    }

    /// Stops the cluster if it runs (fast shutdown: open transactions are rolled back, committed data is safe).
    /// Returns false when it was not running.
    @discardableResult
    public func stop() async throws -> Bool {
        guard FileManager.default.fileExists(atPath: pgdata + "/PG_VERSION") else { return false }
        let owner = try ClusterOwner.current()
        let binaries = try PostgresBinaries.locate(environment: environment, clusterVersion: existingClusterVersion())
        let status = try await owner.run(binaries.pgCtl, ["status", "-D", pgdata])
        guard status.status == 0 else { return false }
        let stop = try await owner.run(binaries.pgCtl, ["stop", "-D", pgdata, "-m", "fast", "-w", "-t", "60", "-s"])
        guard stop.status == 0 else {
            throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL did not stop (pg_ctl exit \(stop.status)): \(stop.output)")
        }
        return true
    }

    /// The server's process id from `postmaster.pid`, when the cluster runs.
    public func serverProcessID() -> Int32? {
        guard let text = try? String(contentsOfFile: pgdata + "/postmaster.pid", encoding: .utf8),
              let firstLine = text.split(separator: "\n").first else { return nil }
        return Int32(firstLine)
    }

    private func existingClusterVersion() -> String? {
        (try? String(contentsOfFile: pgdata + "/PG_VERSION", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// initdb into a side directory and rename it into place, so a crash mid-initdb never leaves a half cluster.
    private func initialise(binaries: PostgresBinaries, owner: ClusterOwner) async throws {
        let staging = clusterDirectory + "/data.initialising"
        try? FileManager.default.removeItem(atPath: staging)
        if FileManager.default.fileExists(atPath: pgdata) {
            throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: \(pgdata) exists but is not a PostgreSQL data directory; move it away")
        }
        logger.info("creating the embedded PostgreSQL cluster", metadata: ["catalog.cluster": "\(clusterDirectory)"])
        let result = try await owner.run(binaries.initdb, [
            "-D", staging, "-U", Self.superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
        ])
        guard result.status == 0 else {
            try? FileManager.default.removeItem(atPath: staging)
            throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: initdb failed (exit \(result.status)): \(result.output.split(separator: "\n").last.map(String.init) ?? "")")
        }
        let configuration = try String(contentsOfFile: staging + "/postgresql.conf", encoding: .utf8)
        try (configuration + "\n# Settings written by personal-backup at every start.\ninclude_if_exists = 'personal-backup.conf'\n")
            .write(toFile: staging + "/postgresql.conf", atomically: true, encoding: .utf8)
        try owner.chown(staging + "/postgresql.conf")
        try FileManager.default.moveItem(atPath: staging, toPath: pgdata)
    }

    /// Rewritten at every start so that a moved data directory still gets the right socket path.
    private func writeSettings(owner: ClusterOwner) throws {
        let quotedSocketDirectory = socketDirectory.replacingOccurrences(of: "'", with: "''")
        let settings = """
            listen_addresses = ''
            unix_socket_directories = '\(quotedSocketDirectory)'
            unix_socket_permissions = 0700

            """
        let path = pgdata + "/personal-backup.conf"
        try settings.write(toFile: path, atomically: true, encoding: .utf8)
        try owner.chown(path)
    }

    private func createCatalogDatabase() async throws {
        var maintenance = url
        maintenance.database = "postgres"
        try await CatalogError.wrapping("create the catalog database", code: .embeddedClusterFailed) {
            try await CatalogDatabase.withClient(maintenance, logger: logger) { client in
                let rows = try await client.query("SELECT 1 FROM pg_database WHERE datname = \(Self.databaseName)", logger: logger).collect()
                if rows.isEmpty {
                    _ = try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(Self.databaseName)"), logger: logger).collect()
                }
            }
        }
    }

    private func lastLine(ofFile path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").last.map(String.init)
    }
}

/// The PostgreSQL server programs the embedded cluster needs.
public struct PostgresBinaries: Sendable, Hashable {
    public let directory: String
    public var initdb: String { directory + "/initdb" }
    public var pgCtl: String { directory + "/pg_ctl" }

    /// The setting that names a directory holding initdb and pg_ctl, for unusual installations.
    public static let overrideSetting = "BACKUP_POSTGRES_BIN_DIR"

    /// Finds initdb and pg_ctl: the override, then the version that created an existing cluster, then PATH,
    /// then Debian's /usr/lib/postgresql/<version>/bin (highest version first).
    public static func locate(
        environment: [String: String], clusterVersion: String? = nil, debianRoot: String = "/usr/lib/postgresql"
    ) throws -> PostgresBinaries {
        let isUsable: (String) -> Bool = { directory in
            FileManager.default.isExecutableFile(atPath: directory + "/initdb")
                && FileManager.default.isExecutableFile(atPath: directory + "/pg_ctl")
        }
        if let override = environment[overrideSetting], !override.isEmpty {
            guard isUsable(override) else {
                throw CatalogError(.postgresNotInstalled, "\(overrideSetting): no initdb and pg_ctl in \(override)")
            }
            return PostgresBinaries(directory: override)
        }
        if let version = clusterVersion, isUsable("\(debianRoot)/\(version)/bin") {
            return PostgresBinaries(directory: "\(debianRoot)/\(version)/bin")
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":").map(String.init) where isUsable(directory) {
            return PostgresBinaries(directory: directory)
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debianRoot)) ?? [])
            .compactMap { Int($0) }
            .sorted(by: >)
        for version in versions where isUsable("\(debianRoot)/\(version)/bin") {
            return PostgresBinaries(directory: "\(debianRoot)/\(version)/bin")
        }
        throw CatalogError(.postgresNotInstalled, "embedded PostgreSQL: initdb and pg_ctl not found on PATH or in \(debianRoot)/*/bin; install the Debian package 'postgresql' (apt-get install postgresql) or set DATABASE_URL")
    }
}

/// Who runs the cluster. PostgreSQL refuses to run as root, so root hands it to the `postgres` user.
struct ClusterOwner: Sendable {
    /// nil: the current user.
    let user: (name: String, uid: uid_t, gid: gid_t)?

    static func current() throws -> ClusterOwner {
        guard geteuid() == 0 else { return ClusterOwner(user: nil) }
        guard let entry = getpwnam("postgres") else {
            throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: running as root needs a 'postgres' user to run the server (apt-get install postgresql creates it), or run as a normal user")
        }
        return ClusterOwner(user: ("postgres", entry.pointee.pw_uid, entry.pointee.pw_gid))
    }

    func run(_ executable: String, _ arguments: [String]) async throws -> Subprocess.Result {
        guard let user else { return try await Subprocess.run(executable, arguments) }
        return try await Subprocess.run("/usr/sbin/runuser", ["-u", user.name, "--", executable] + arguments)
    }

    /// Creates the directory (owner-only) and hands it to the owner; checks the owner can reach it.
    func prepareDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try chown(path)
        guard let user else { return }
        // Every parent must be searchable by the postgres user, or the server cannot open its files.
        var parent = (path as NSString).deletingLastPathComponent
        while parent != "/" && !parent.isEmpty {
            var info = stat()
            if stat(parent, &info) == 0, info.st_mode & S_IXOTH == 0, info.st_uid != user.uid {
                throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: the '\(user.name)' user cannot enter \(parent) (no search permission for others); choose another BACKUP_DATA_DIR or run chmod o+x \(parent)")
            }
            parent = (parent as NSString).deletingLastPathComponent
        }
    }

    func chown(_ path: String) throws {
        guard let user else { return }
        guard Glibc.chown(path, user.uid, user.gid) == 0 else {
            throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: cannot give \(path) to the '\(user.name)' user: \(String(cString: strerror(errno)))")
        }
    }
}

/// An exclusive `flock` on a file next to the cluster, held while the cluster is checked, created or started.
struct ClusterLock: Sendable {
    let descriptor: Int32

    static func acquire(path: String) async throws -> ClusterLock {
        try await blocking {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: cannot open the lock file \(path): \(String(cString: strerror(errno)))")
            }
            while flock(descriptor, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    close(descriptor)
                    throw CatalogError(.embeddedClusterFailed, "embedded PostgreSQL: cannot lock \(path): \(String(cString: strerror(errno)))")
                }
            }
            return ClusterLock(descriptor: descriptor)
        }
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
