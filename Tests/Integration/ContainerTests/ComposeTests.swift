import Foundation
import SystemIO
import Testing
import TestSupport

/// docker/compose.yml as the README runs it where no registry is reachable: podman-compose (PyPI) with
/// docker/compose.local.yml replacing only PostgreSQL and MinIO by images built here. Its own PostgreSQL and S3
/// server in containers, on a bridge network; the host's uploader and restore reach them on published loopback ports.
/// Part of the serialized container suite, so that it never runs beside the other container tests.
extension ContainerPipelineTests {
    static var composeProgram: String {
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        return cache + "/personal-backup/compose-venv/bin/podman-compose"
    }

    @Test("the sample disc through docker/compose.yml (+ compose.local.yml) under podman-compose; `down -v` leaves nothing behind")
    func sampleDiscThroughCompose() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.composeProgram), "podman-compose is installed by scripts/test at \(Self.composeProgram)")
        try await Podman.buildImage()
        let root = FaultProxy.repositoryRoot
        let project = "pb-compose-" + UUID().uuidString.prefix(8).lowercased()
        let (postgresPort, s3Port, statusPort) = (try TestEnvironment.freeLoopbackPort(), try TestEnvironment.freeLoopbackPort(), try TestEnvironment.freeLoopbackPort())
        let token = "compose-test-token-0123456789"
        var composeEnvironment = ProcessInfo.processInfo.environment
        composeEnvironment["CONTAINERS_CONF"] = root + "/docker/local/containers.conf"
        composeEnvironment["BACKUP_POSTGRES_PORT"] = String(postgresPort)
        composeEnvironment["BACKUP_S3_PORT"] = String(s3Port)
        composeEnvironment["BACKUP_S3_CONSOLE_PORT"] = String(try TestEnvironment.freeLoopbackPort())
        composeEnvironment["BACKUP_STATUS_PUBLISHED_PORT"] = String(statusPort)
        composeEnvironment["BACKUP_STATUS_TOKEN"] = token
        composeEnvironment["COMPOSE_PROJECT_NAME"] = project
        // docs/deploy.md's commands, run as they are written there (only the ports and the project name differ,
        // through the variables above).
        let document = try String(contentsOfFile: root + "/docs/deploy.md", encoding: .utf8)
        let block = try #require(Self.fencedBlock(in: document, after: "<!-- compose: tested by"), "docs/deploy.md lost its compose block")
        let setUp = block.split(separator: "\n").filter { $0.hasPrefix("export ") || $0.hasPrefix("compose=") }.joined(separator: "\n")
        func shell(_ script: String) async throws -> Subprocess.Result {
            try await Subprocess.run("/usr/bin/timeout", ["900", "/bin/bash", "-euo", "pipefail", "-c", "cd '\(root)'\n" + script], environment: composeEnvironment)
        }
        func compose(_ arguments: String) async throws -> Subprocess.Result { try await shell(setUp + "\n$compose " + arguments) }
        let source = try TemporaryDirectory("compose-src")
        let work = try TemporaryDirectory("compose-work")
        defer { source.remove(); work.remove() }
        // The S3 image installs moto from PyPI: it trusts what this machine trusts (a TLS-inspecting proxy's CA).
        let extraCAs = "/usr/local/share/ca-certificates"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: extraCAs)) ?? [] where name.hasSuffix(".crt") {
            let target = root + "/docker/local/ca/" + name
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: extraCAs + "/" + name, toPath: target)
        }
        do {
            let started = ContinuousClock.now
            let up = try await shell(block)
            try #require(up.status == 0, "docs/deploy.md's compose commands: \(up.output.suffix(3000))")

            // The host's uploader, set up as the README says (the ports moved to free ones).
            let environment = [
                "DATABASE_URL": "postgres://backup:backup@127.0.0.1:\(postgresPort)/backup?sslmode=disable",
                "BACKUP_STAGING_URL": "s3://staging/", "BACKUP_ARCHIVE_URL": "s3://archive/", "BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD",
                "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:\(s3Port)", "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "backup-local", "AWS_SECRET_ACCESS_KEY": "backup-local-secret", "BACKUP_DATA_DIR": work.path,
            ]
            let made = try await Subprocess.run(root + "/scripts/make-sample-disc", [source.path, "2"])
            try #require(made.status == 0, "\(made.output)")
            var upload = try await Program.run("uploader", ["upload", source.path, "--label", "Sample disc", "--keep-raw"], environment: environment)
            for _ in 0..<60 where upload.status != 0 {
                // The stack may still be starting (migrate, buckets); the upload is safe to repeat.
                try await Task.sleep(for: .seconds(2))
                upload = try await Program.run("uploader", ["upload", source.path, "--label", "Sample disc", "--keep-raw"], environment: environment)
            }
            if upload.status != 0 { print(try await compose("logs").output.suffix(3000)) }
            try #require(upload.status == 0, "upload: \(upload.output)")

            try await Self.waitUntil(.seconds(600), "the compose stack's status page reports the sample disc complete") {
                guard let json = try await Self.statusJSON(port: statusPort, token: token),
                      let sources = json["sources"] as? [[String: Any]] else { return false }
                return sources.first { $0["label"] as? String == "Sample disc" }?["complete"] as? Bool == true
            }
            print("compose: sample disc complete \(ContinuousClock.now - started) after `up`")
            let destination = work.path + "/restored"
            let restore = try await Program.run("uploader", ["restore", "--source", "Sample disc", "--to", destination], environment: environment)
            try #require(restore.status == 0, "restore: \(restore.output.suffix(3000))")
            let restored = try Self.files(under: destination + "/Sample disc")
            for (path, bytes) in try Self.files(under: source.path) {
                #expect(restored[path].map(PipelineHarness.sha256) == PipelineHarness.sha256(bytes), "\(path) did not come back byte for byte (restored: \(restored.keys.sorted()))")
            }
        } catch {
            print(try await compose("logs").output.suffix(6000))
            _ = try? await compose("down -v")
            throw error
        }
        let down = try await compose("down -v")
        #expect(down.status == 0, "compose down -v: \(down.output.suffix(2000))")
        for kind in ["ps -a", "volume ls", "network ls", "pod ps"] {
            let left = try await Podman.run(kind.split(separator: " ").map(String.init) + ["--filter", "label=io.podman.compose.project=\(project)", "-q"])
            #expect(left.output.isEmpty, "`podman \(kind)` still lists the project's: \(left.output)")
        }
    }

    /// The fenced code block that follows `marker` in a Markdown document.
    static func fencedBlock(in document: String, after marker: String) -> String? {
        guard let markerRange = document.range(of: marker), let open = document.range(of: "```\n", range: markerRange.upperBound..<document.endIndex),
              let close = document.range(of: "\n```", range: open.upperBound..<document.endIndex) else { return nil }
        return String(document[open.upperBound..<close.lowerBound])
    }
}
