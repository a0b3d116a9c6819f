import Foundation
import SystemIO
import Testing
import TestSupport

/// The cloud image as users run it: built by docker/build (the command the deploy workflow and the README use), run
/// with podman against the PostgreSQL and moto that scripts/test started on the host's loopback.
enum Podman {
    /// The image under test: docker/build's default tag, or BACKUP_TEST_IMAGE.
    static let image = ProcessInfo.processInfo.environment["BACKUP_TEST_IMAGE"] ?? "localhost/personal-backup:local"

    /// runc where crun cannot start containers (a cgroup v1 host), as docker/build chooses.
    static let engineFlags: [String] = {
        let cgroupV2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        let runc = ["/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        return !cgroupV2 && runc ? ["--runtime", "runc"] : []
    }()

    /// What every container here gets: the host's network (PostgreSQL, moto and the webhook receiver listen on its
    /// loopback) and the lowered ulimits these machines need (runc cannot raise them: "error setting rlimit").
    static let hostNetwork = ["--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    /// Deployed as docs/deploy.md and infra/ecs.tf run it: a read-only root file system with no tmpfs, every
    /// capability dropped, no privilege gain; the work directory is the only writable place.
    static let hardened = ["--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]

    static func run(_ arguments: [String]) async throws -> Subprocess.Result {
        try await Subprocess.run("/usr/bin/env", ["podman"] + engineFlags + arguments)
    }

    /// podman, failing the test with podman's own output when it fails.
    @discardableResult
    static func must(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let result = try await run(arguments)
        try #require(result.status == 0, "podman \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.output)", sourceLocation: sourceLocation)
        return result.output
    }

    /// docker/build, once per test process: a no-op when the image is up to date (every step cached), an
    /// incremental release build when the sources changed (the build folder is a cache mount).
    static func buildImage() async throws {
        try await ImageBuild.shared.ensure()
    }

    actor ImageBuild {
        static let shared = ImageBuild()
        private var built = false

        func ensure() async throws {
            if built { return }
            let tag = image.hasPrefix("localhost/") ? String(image.dropFirst("localhost/".count)) : image
            let result = try await Subprocess.run(FaultProxy.repositoryRoot + "/docker/build", ["--engine", "podman", "--tag", tag])
            try #require(result.status == 0, "docker/build failed: \(result.output.suffix(4000))")
            built = true
        }
    }
}

/// One container of the image (a worker, the status server or a one-off command), removed with its volume at the end.
struct ImageContainer: Sendable {
    let name: String
    let volume: String

    /// Starts `arguments` (for example ["archiver", "run"]) detached, hardened, with `environmentFile` and a fresh
    /// named volume as the work directory. The host name is the container's name, so `<program> health` inside it
    /// finds its own worker row.
    static func start(
        _ arguments: [String], name prefix: String, environmentFile: String, extra: [String] = []
    ) async throws -> ImageContainer {
        let name = "pb-test-\(prefix)-" + UUID().uuidString.prefix(8).lowercased()
        let volume = name + "-work"
        try await Podman.must(["volume", "create", volume])
        try await Podman.must(
            ["run", "-d", "--name", name, "--hostname", name, "--env-file", environmentFile, "-v", "\(volume):/var/lib/personal-backup"]
                + Podman.hostNetwork + Podman.hardened + extra + [Podman.image] + arguments)
        return ImageContainer(name: name, volume: volume)
    }

    /// `podman run --rm` of a one-off command (migrate, health), with the same hardening and no volume at all.
    static func once(_ arguments: [String], environmentFile: String, extra: [String] = []) async throws -> Subprocess.Result {
        try await Podman.run(
            ["run", "--rm", "--no-healthcheck", "--env-file", environmentFile] + Podman.hostNetwork + Podman.hardened + extra + [Podman.image] + arguments)
    }

    func logs() async throws -> String { try await Podman.must(["logs", name]) }

    func state(_ field: String) async throws -> String {
        try await Podman.must(["inspect", "--format", "{{.State.\(field)}}", name]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `podman stop -t 30` (SIGTERM, SIGKILL after 30 s, as ECS's stopTimeout): expects exit 0 well within the 30 s,
    /// and returns how long the stop took.
    @discardableResult
    func expectGracefulStop(sourceLocation: SourceLocation = #_sourceLocation) async throws -> Duration {
        let started = ContinuousClock.now
        try await Podman.must(["stop", "-t", "30", name])
        let took = ContinuousClock.now - started
        let exitCode = try await state("ExitCode")
        let log = try await logs()
        #expect(exitCode == "0", "\(name) exited \(exitCode): \(log.suffix(2000))", sourceLocation: sourceLocation)
        #expect(took < .seconds(30), "\(name) took \(took) to stop", sourceLocation: sourceLocation)
        return took
    }

    /// Removes the container (killing it if it still runs) and its volume; errors ignored (clean-up).
    func remove() async {
        _ = try? await Podman.run(["rm", "-f", "-t", "0", name])
        _ = try? await Podman.run(["volume", "rm", "-f", volume])
    }
}

/// The containers a test started, all removed (with their volumes) when the test ends, passed or failed.
actor ContainerSet {
    private var started: [ImageContainer] = []

    func start(_ arguments: [String], name: String, environmentFile: String, extra: [String] = []) async throws -> ImageContainer {
        let container = try await ImageContainer.start(arguments, name: name, environmentFile: environmentFile, extra: extra)
        started.append(container)
        return container
    }

    static func with<T: Sendable>(_ body: (ContainerSet) async throws -> T) async throws -> T {
        let set = ContainerSet()
        do {
            let result = try await body(set)
            await set.removeAll()
            return result
        } catch {
            await set.removeAll()
            throw error
        }
    }

    private func removeAll() async {
        for container in started { await container.remove() }
        started = []
    }
}

/// Writes the containers' environment to a file only the test can read (podman --env-file), so no secret is on a
/// command line.
func writeEnvironmentFile(_ environment: [String: String], to path: String) throws {
    let text = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o600)
}
