import SystemIO
import Catalog
import Foundation
import PipelineCore
import PostgresNIO
import Testing
import TestSupport

/// A randomized, model-based test of the archive promise: random sequences of uploads of overlapping sources, new
/// versions, deletes with the grace period expired, bundle rewrites (they follow from deletes), uploaders and
/// archivers killed with SIGKILL at random moments and, on S3, faults injected between the workers and moto by
/// `scripts/lib/fault_proxy.py` (5xx, resets, 200 answers holding an error or nothing), all through the real programs. After every step, every source
/// that `uploader sources` calls "archived" must pass `uploader audit` and restore byte for byte to what the
/// catalog says it holds, and what the catalog says must be what was uploaded.
///
/// Seeded and bounded in time: `PROMISE_TEST_SEED` replays a run, `PROMISE_TEST_SECONDS` (default 45) sets its
/// length. The seed and every step are printed on failure.
@Suite("the archive promise, randomized")
struct PromiseInvariantTests {
    typealias Generator = SplitMix

    /// What the test knows independently of the catalog: every content it ever wrote, and for each source and
    /// path the content of its last successful upload.
    struct Model {
        var blobs: [[UInt8]]
        /// Hashes ever written to each (label, path).
        var written: [String: Set<String>] = [:]
        /// The files each source directory holds now: path → blob index.
        var directories: [String: [String: Int]] = [:]
        /// What each source's directory held at the uploads that may be its last finished one: the last that exited
        /// 0, and every upload since that was killed or failed (a run SIGKILLed after it recorded its finish, while
        /// it saved its local index or closed its connections, exits 137 yet finished). When the source claims
        /// done, its restore must match one of them whole, except the paths a delete was asked for since.
        var completeCandidates: [String: [[String: Int]]] = [:]
        var deletedSince: [String: Set<String>] = [:]
    }

    static let labels = ["disc A", "disc B", "disc C"]

    @Test("random uploads, versions, deletes, rewrites and SIGKILLs: every source that claims done audits safe and restores byte for byte",
          arguments: [PipelineHarness.Staging.file, .s3])
    func randomSequences(_ storage: PipelineHarness.Staging) async throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["PROMISE_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(Int64.max))
        let seconds = environment["PROMISE_TEST_SECONDS"].flatMap(Double.init) ?? 40
        var random = Generator(seed: seed)
        var log: [String] = ["\(storage) buckets, seed \(seed) (replay with PROMISE_TEST_SEED=\(seed))"]
        print("promise test (\(storage)): seed \(seed)")

        try await PipelineHarness.with(storage) { harness in
            // Contents shared between sources: small ones for bundles, two above the 1 MiB threshold.
            var model = Model(blobs: (0..<10).map { index in
                PipelineHarness.bytes(count: index < 8 ? Int.random(in: 200...30_000, using: &random) : (1 << 20) + 4096 * index, seed: seed &+ UInt64(index))
            })
            let archiverOptions = ["--small-file-threshold", "64KiB", "--delete-grace-days", "0", "--lease-seconds", "3", "--poll-seconds", "0.2",
                                   "--bundle-size", "128KiB"]
            #expect(try await Program.run("uploader", ["migrate"], environment: harness.environment).status == 0)
            // On S3 the workers talk through a proxy that injects faults at random (seeded): 5xx, resets before and
            // after the server acted, 200 answers holding an error or nothing. A run may then fail; none may lie.
            let proxy: FaultProxy? = storage == .s3 ? try await FaultProxy() : nil
            defer { proxy?.stop() }
            let faults: [FaultProxy.Rule] = [
                .init("any", "500", probability: 0.04), .init("any", "reset-before", probability: 0.02),
                .init("any", "reset-after", probability: 0.02), .init("PutObject", "empty-200-after", probability: 0.05),
                .init("PutObject", "error-200-before", probability: 0.03), .init("DeleteObjects", "error-200-after", probability: 0.1),
                .init("CompleteMultipartUpload", "error-200-before", probability: 0.2),
                .init("CompleteMultipartUpload", "error-200-after", probability: 0.2),
                .init("UploadPart", "reset-after", probability: 0.05),
            ]
            try await proxy?.inject(faults, seed: seed)
            let started = ContinuousClock.now
            var step = 0
            while ContinuousClock.now - started < .seconds(seconds) {
                step += 1
                let action = Int.random(in: 0..<100, using: &random)
                let label = Self.labels.randomElement(using: &random)!
                var description: String
                switch action {
                case 0..<30:
                    Self.mutate(label, model: &model, random: &random)
                    let killAfter: Int? = Int.random(in: 0..<4, using: &random) == 0 ? Int.random(in: 20...400, using: &random) : nil
                    let (status, output) = try await Self.upload(harness, label: label, model: model, killAfterMilliseconds: killAfter, via: proxy)
                    description = "upload \(label) \(model.directories[label]!.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })"
                        + (killAfter.map { " killed after \($0) ms" } ?? "") + " → \(status)"
                    if killAfter == nil && proxy == nil {
                        #expect(status == 0, "\(log.joined(separator: "\n"))\n\(description)\n\(output)")
                    }
                    if status == 0 {
                        model.completeCandidates[label] = [model.directories[label]!]
                        model.deletedSince[label] = []
                    } else {
                        model.completeCandidates[label, default: []].append(model.directories[label]!)
                    }
                    // What the directory held is what may be catalogued for it (a killed upload may have done part).
                    for (path, blob) in model.directories[label]! {
                        model.written["\(label)/\(path)", default: []].insert(PipelineHarness.sha256(model.blobs[blob]))
                    }
                case 30..<70:
                    let killAfter: Int? = Int.random(in: 0..<3, using: &random) == 0 ? Int.random(in: 50...1500, using: &random) : nil
                    let (status, output) = try await Self.archive(harness, options: archiverOptions, killAfterMilliseconds: killAfter, via: proxy)
                    description = "archive" + (killAfter.map { " killed after \($0) ms" } ?? "") + " → \(status)"
                    if killAfter == nil && proxy == nil {
                        #expect(status == 0, "\(log.joined(separator: "\n"))\n\(description)\n\(output.suffix(3000))")
                    }
                default:
                    let deleted = try await Self.requestDelete(harness, label: label, random: &random)
                    if let deleted { model.deletedSince[label, default: []].insert(deleted.path) }
                    description = "delete \(deleted?.description ?? "nothing (no live file)") of \(label)"
                }
                log.append("step \(step): \(description)")
                try await Self.checkInvariant(harness, model: model, log: log)
            }
            // Finish without faults: drain everything; then every source claims done and must hold.
            if let proxy {
                let injected = try await proxy.injected().sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
                log.append("faults injected: \(injected)")
                print("promise test (\(storage)): faults injected: \(injected.joined(separator: ", "))")
            }
            try await proxy?.inject([])
            for label in Self.labels where model.directories[label] != nil {
                let (status, output) = try await Self.upload(harness, label: label, model: model, killAfterMilliseconds: nil, via: proxy)
                #expect(status == 0, "final upload of \(label): \(output.suffix(2000))")
                model.completeCandidates[label] = [model.directories[label]!]
                model.deletedSince[label] = []
            }
            let final = try await Self.archive(harness, options: archiverOptions, killAfterMilliseconds: nil, via: proxy)
            #expect(final.status == 0, "\(final.output.suffix(3000))")
            log.append("final: upload every source, archive → \(final.status)")
            let claims = try await Self.checkInvariant(harness, model: model, log: log)
            #expect(claims == model.directories.count, "after the final drain every source must claim done\n\(log.joined(separator: "\n"))")
            print("promise test (\(storage)): \(step) steps, seed \(seed)")
        }
    }

    /// Changes a source's directory: a new file, a file whose content changes (a new version), or one removed.
    static func mutate(_ label: String, model: inout Model, random: inout Generator) {
        var files = model.directories[label] ?? [:]
        let blobCount = model.blobs.count
        if files.isEmpty {
            for index in 0..<Int.random(in: 2...5, using: &random) { files["f\(index).bin"] = Int.random(in: 0..<blobCount, using: &random) }
        } else {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: files["f\(Int.random(in: 0..<8, using: &random)).bin"] = Int.random(in: 0..<blobCount, using: &random)
            case 1: if let path = files.keys.sorted().randomElement(using: &random) { files[path] = Int.random(in: 0..<blobCount, using: &random) }
            case 2: if files.count > 1, let path = files.keys.sorted().randomElement(using: &random) { files[path] = nil }
            default: break  // the same disc again
            }
        }
        model.directories[label] = files
    }

    static func directory(_ harness: PipelineHarness, _ label: String) -> String {
        harness.work.path + "/discs/" + label.replacingOccurrences(of: " ", with: "_")
    }

    static func upload(_ harness: PipelineHarness, label: String, model: Model, killAfterMilliseconds: Int?, via proxy: FaultProxy?) async throws -> (status: Int32, output: String) {
        // The directory is rewritten from the model each time (new mtimes: every file is read and hashed again).
        let root = directory(harness, label)
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (path, blob) in model.directories[label] ?? [:] {
            guard FileManager.default.createFile(atPath: root + "/" + path, contents: Data(model.blobs[blob])) else {
                throw TestEnvironment.Missing(variable: "a writable \(root)")
            }
        }
        return try await run(harness, "uploader", ["upload", root, "--label", label, "--json"], killAfterMilliseconds: killAfterMilliseconds, via: proxy)
    }

    static func archive(_ harness: PipelineHarness, options: [String], killAfterMilliseconds: Int?, via proxy: FaultProxy?) async throws -> (status: Int32, output: String) {
        try await run(harness, "archiver", ["run", "--once"] + options, killAfterMilliseconds: killAfterMilliseconds, via: proxy)
    }

    /// Runs a worker program; with a proxy, its S3 traffic goes through it (and its faults). The checks never do.
    static func run(_ harness: PipelineHarness, _ program: String, _ arguments: [String], killAfterMilliseconds: Int?, via proxy: FaultProxy?) async throws -> (status: Int32, output: String) {
        var environment = harness.environment.merging(["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]) { $1 }
        if let proxy { environment["AWS_ENDPOINT_URL_S3"] = proxy.endpoint }
        let running = try Program.start(program, arguments, environment: environment)
        if let killAfterMilliseconds {
            try await Task.sleep(for: .milliseconds(killAfterMilliseconds))
            running.signal(SIGKILL)
        }
        let result = try await running.wait()
        return (result.status, result.output)
    }

    /// Asks for the deletion of one random live file of the source (its grace period already over).
    static func requestDelete(_ harness: PipelineHarness, label: String, random: inout Generator) async throws -> (path: String, description: String)? {
        let candidates = try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var result: [(Int64, String, Int)] = []
            let query: PostgresQuery = """
                SELECT f.id, f.path, f.version FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE s.label = \(label) AND f.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM objectstoragedeletelog d WHERE d.file_id = f.id)
                ORDER BY f.id
                """
            for try await row in try await client.query(query, logger: TestEnvironment.logger).decode((Int64, String, Int).self) { result.append(row) }
            return result
        }
        guard let (id, path, version) = candidates.randomElement(using: &random) else { return nil }
        try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(id), now() - interval '1 second')")
        return (path, "\(path) v\(version) (file \(id))")
    }

    /// For every source that `uploader sources` calls archived: the audit says safe, and a restore gives back, for
    /// each path, the newest live version's content, which must be content the test wrote there. Returns how many
    /// sources claimed done.
    @discardableResult
    static func checkInvariant(_ harness: PipelineHarness, model: Model, log: [String]) async throws -> Int {
        let listing = try await Program.run("uploader", ["sources", "--json"], environment: harness.environment)
        var claims = 0
        for line in listing.output.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let label = object["label"] as? String, object["state"] as? String == "archived" else { continue }
            claims += 1
            let context = "\(log.joined(separator: "\n"))\n\(label) claims archived"
            let audit = try await Program.run("uploader", ["audit", "--source", label, "--json"], environment: harness.environment)
            #expect(audit.status == 0, "\(context); the audit says:\n\(audit.output)")

            let expected = try await newestLiveContent(harness, label: label)
            let destination = harness.work.path + "/restore-" + UUID().uuidString.prefix(8)
            defer { try? FileManager.default.removeItem(atPath: destination) }
            let restore = try await Program.run(
                "uploader", ["restore", "--source", label, "--to", destination, "--json"], environment: harness.environment)
            #expect(restore.status == 0, "\(context); restore:\n\(restore.output.suffix(3000))")
            // The originals: every file of the last finished upload that no delete was asked for since. Which upload
            // finished last is known only up to the killed ones, so one candidate must match whole (never a mix).
            let candidates = model.completeCandidates[label] ?? []
            var mismatches: [String] = []
            for (index, candidate) in candidates.enumerated() {
                let wrong = candidate.sorted { $0.key < $1.key }.filter { path, blob in
                    guard !(model.deletedSince[label]?.contains(path) ?? false) else { return false }
                    let restored = FileManager.default.contents(atPath: destination + "/" + label + "/" + path).map { PipelineHarness.sha256(Array($0)) }
                    return restored != PipelineHarness.sha256(model.blobs[blob])
                }.map(\.key)
                if wrong.isEmpty { mismatches = []; break }
                mismatches.append("upload candidate \(index + 1) of \(candidates.count): \(wrong.joined(separator: ", ")) not restored to its bytes")
            }
            #expect(mismatches.isEmpty, "\(context): the restore matches no upload that may have finished last:\n\(mismatches.joined(separator: "\n"))")
            for (path, hash) in expected {
                #expect(model.written["\(label)/\(path)"]?.contains(hash) == true, "\(context): \(path) holds content never written there")
                let restored = FileManager.default.contents(atPath: destination + "/" + label + "/" + path).map { PipelineHarness.sha256(Array($0)) }
                #expect(restored == hash, "\(context): \(path) restored as \(restored ?? "nothing"), the catalog says \(hash)")
            }
        }
        return claims
    }

    /// Per path of the source, the SHA-256 of its newest version that is not deleted.
    static func newestLiveContent(_ harness: PipelineHarness, label: String) async throws -> [String: String] {
        try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var result: [String: String] = [:]
            let query: PostgresQuery = """
                SELECT DISTINCT ON (f.path) f.path, f.hash FROM objectstoragefiles f JOIN sources s ON s.id = f.source_id
                WHERE s.label = \(label) AND f.deleted_at IS NULL AND f.hash IS NOT NULL
                ORDER BY f.path, f.version DESC
                """
            for try await (path, hash) in try await client.query(query, logger: TestEnvironment.logger).decode((String, String).self) { result[path] = hash }
            return result
        }
    }
}
