import Catalog
import Foundation
import ObjectStore
import PostgresNIO
import SystemIO
import Testing
import TestSupport

/// `uploader upload --spool` and `uploader send` on the real stack (PostgreSQL, moto with SigV4): the disc is read
/// into a spool, the rows say `spooled` (never claimed, never safe), senders move them to staging.
@Suite("spool and sender", .serialized, .onOwnThreads)
struct SpoolTests {
    static let standard = ["BACKUP_ARCHIVE_STORAGE_CLASS": "STANDARD"]

    static func spoolPath(_ harness: PipelineHarness) -> String { harness.work.path + "/spool" }

    /// The files waiting in a spool directory (its `sources/` tree), by key.
    static func spoolFiles(_ spool: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: spool + "/sources") else { return [] }
        var keys: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: spool + "/sources/" + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue { keys.append("sources/" + relative) }
        }
        return keys.sorted()
    }

    static func send(_ harness: PipelineHarness, _ extra: [String] = []) async throws -> Subprocess.Result {
        try await Program.run("uploader", ["send", "--spool", spoolPath(harness), "--json", "--lease-seconds", "3"] + extra, environment: harness.environment)
    }

    static func startSend(_ harness: PipelineHarness, _ extra: [String] = []) throws -> Subprocess.Running {
        try Program.start("uploader", ["send", "--spool", spoolPath(harness), "--json", "--lease-seconds", "3"] + extra, environment: harness.environment)
    }

    /// The keys a sender's `--json` output says it sent.
    static func sentKeys(_ output: String) -> [String] {
        output.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["event"] as? String == "sent" else { return nil }
            return object["key"] as? String
        }
    }

    @Test("a disc read into the spool, drained by two senders at once: each file sent once, every row staged, spool empty, archived and restored byte for byte")
    func twoSendersDrainOneSpool() async throws {
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<14 { files["docs/file-\(index).bin"] = PipelineHarness.bytes(count: 1000 + index * 37_000, seed: UInt64(100 + index)) }
            files["video/big-1.bin"] = PipelineHarness.bytes(count: 20_000_000, seed: 7)
            files["video/big-2.bin"] = PipelineHarness.bytes(count: 18_000_000, seed: 8)
            files["copy/file-3.bin"] = files["docs/file-3.bin"]  // a duplicate on the same disc
            for (path, bytes) in files { try harness.write(path, bytes) }

            let upload = try await harness.upload(extra: ["--spool", Self.spoolPath(harness)])
            #expect(upload.status == 0, "\(upload.output)")
            #expect(upload.output.contains("DVD 12 is read; you may eject it. Do not destroy it until `uploader audit` says it is safe"))
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty, "nothing in staging before a sender ran")
            var rows = try await harness.rows()
            #expect(rows.count == files.count)
            #expect(rows.filter { $0.state == "spooled" }.count == files.count - 1, "\(rows.map(\.state))")
            #expect(rows.filter { $0.state == "duplicate" }.count == 1)
            #expect(rows.allSatisfy { $0.state != "spooled" || $0.storage == "spool" })
            let spooledKeys = Set(rows.compactMap { $0.state == "spooled" ? $0.storageKey : nil })
            #expect(Set(Self.spoolFiles(Self.spoolPath(harness))) == spooledKeys, "every spooled row has its file in the spool")
            #expect(try await harness.sourceState("DVD 12")?.hasPrefix("read, waiting to send") == true)

            // Workers never take spooled rows, and the audit does not call the source safe.
            #expect(try await harness.archiveOnce([], environment: Self.standard).status == 0)
            #expect(try await harness.rows().filter { $0.state == "spooled" }.count == files.count - 1)
            let audit = try await Program.run("uploader", ["audit", "--source", "DVD 12"], environment: harness.environment.merging(Self.standard) { $1 })
            #expect(audit.status == 1, "\(audit.output)")
            #expect(audit.output.contains("not sent yet"), "\(audit.output)")

            // Two senders at once, two files each at a time.
            let first = try Self.startSend(harness)
            let second = try Self.startSend(harness)
            let (a, b) = (try await first.wait(), try await second.wait())
            #expect(a.status == 0, "\(a.output)")
            #expect(b.status == 0, "\(b.output)")
            let sent = Self.sentKeys(a.output) + Self.sentKeys(b.output)
            #expect(sent.count == spooledKeys.count && Set(sent) == spooledKeys, "each file sent exactly once: \(sent.sorted())")
            rows = try await harness.rows()
            #expect(rows.filter { $0.state == "staged" }.count == files.count - 1, "\(rows.map(\.state))")
            #expect(rows.allSatisfy { $0.state != "staged" || $0.storage == "staging" })
            #expect(Self.spoolFiles(Self.spoolPath(harness)).isEmpty, "the spool is empty")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE spool_id IS NOT NULL OR send_state IS NOT NULL OR lease_owner IS NOT NULL", as: Int64.self) == 0)
            for row in rows where row.state == "staged" {
                #expect(try await harness.stagedHash(try #require(row.storageKey)) == row.hash, "\(row.path)")
            }
            #expect(try await harness.staging.listMultipartUploads(prefix: "").isEmpty)

            // Then the usual way to the archive, and back.
            let archived = try await harness.archiveOnce(["--small-file-threshold", "1MiB"], environment: Self.standard)
            #expect(archived.status == 0, "\(archived.output)")
            #expect(try await harness.rows().allSatisfy { $0.state == "archived" || $0.state == "duplicate" })
            let restore = try await harness.restoreSource("DVD 12", environment: Self.standard)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(restore.files.count == files.count)
            for (path, bytes) in files { #expect(restore.files["DVD 12/" + path] == bytes, "\(path) restored byte for byte") }
            let safe = try await Program.run("uploader", ["audit", "--source", "DVD 12"], environment: harness.environment.merging(Self.standard) { $1 })
            #expect(safe.status == 0, "\(safe.output)")
        }
    }

    @Test("an encrypted source (--encrypt-to) spools ciphertext only; sent, archived, restored byte for byte with the identity")
    func encryptedSourceSpoolsCiphertext() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let marker = "PLAINTEXT-MARKER-7f3a"
            var files: [String: [UInt8]] = [
                "letters/to-bank.txt": Array("\(marker) account 1234".utf8),
                "scans/passport.tiff": PipelineHarness.bytes(count: 20_000_000, seed: 91) + Array(marker.utf8),
            ]
            files["copy/to-bank.txt"] = files["letters/to-bank.txt"]
            for (path, bytes) in files { try harness.write(path, bytes) }
            let keyPath = harness.work.path + "/key.txt"
            let keygen = try await Subprocess.run("/usr/bin/age-keygen", ["-o", keyPath])
            #expect(keygen.status == 0, "\(keygen.output)")
            let recipient = try #require(try String(contentsOfFile: keyPath, encoding: .utf8).split(separator: "\n")
                .first { $0.hasPrefix("# public key: ") }.map { String($0.dropFirst("# public key: ".count)) })

            let upload = try await harness.upload(extra: ["--spool", Self.spoolPath(harness), "--encrypt-to", recipient])
            #expect(upload.status == 0, "\(upload.output)")
            let spool = Self.spoolPath(harness)
            let keys = Self.spoolFiles(spool)
            #expect(keys.count == 2, "the copy is a duplicate: \(keys)")
            var spooledHashes: [String: String] = [:]
            for key in keys {
                let bytes = try #require(FileManager.default.contents(atPath: spool + "/" + key))
                #expect(bytes.starts(with: Data("age-encryption.org/v1".utf8)), "\(key) is an age file")
                #expect(bytes.range(of: Data(marker.utf8)) == nil, "no plaintext in the spool")
                spooledHashes[key] = PipelineHarness.sha256(Array(bytes))
            }
            #expect(try await harness.scalar(
                "SELECT count(*) FROM objectstoragefiles WHERE state = 'spooled' AND storage_key LIKE '%.age' AND stored_hash IS NOT NULL", as: Int64.self) == 2)

            let sent = try await Self.send(harness)
            #expect(sent.status == 0, "\(sent.output)")
            for (key, hash) in spooledHashes { #expect(try await harness.stagedHash(key) == hash, "staging holds exactly the spooled bytes") }

            #expect(try await harness.archiveOnce(["--small-file-threshold", "1MiB"], environment: Self.standard).status == 0)
            let restore = try await harness.restoreSource("DVD 12", arguments: ["--identity", keyPath], environment: Self.standard)
            #expect(restore.status == 0, "\(restore.output)")
            for (path, bytes) in files { #expect(restore.files["DVD 12/" + path] == bytes, "\(path) restored byte for byte") }
        }
    }

    @Test("a sender SIGKILLed mid-file: the next one resumes and sends only the missing parts")
    func killedSenderResumes() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let big = PipelineHarness.bytes(count: 100_000_000, seed: 42)
            try harness.write("tape.dv", big)
            #expect(try await harness.upload(extra: ["--spool", Self.spoolPath(harness)]).status == 0)

            // A lease long enough that the sender started right after the kill surely meets it on a loaded machine:
            // with 3 s, and once (load 8 on 2 cores) with 20 s — renewed every third, so at least 13 s left at the
            // kill — a slow start let it expire first and the "early" sender rightly took the file over.
            let child = try Program.start(
                "uploader", ["send", "--spool", Self.spoolPath(harness), "--json", "--lease-seconds", "60", "--bwlimit", "8M"],
                environment: harness.environment)
            let parts = try await Self.waitForSentParts(harness, 2, of: child)
            child.signal(SIGKILL)
            let killed = try await child.wait()
            #expect(killed.status == 128 + SIGKILL, "the sender was killed, not finished: \(killed.output)")
            #expect(parts >= 2)
            #expect(try await harness.rows().map(\.state) == ["spooled"], "still spooled after the kill")
            #expect(Self.spoolFiles(Self.spoolPath(harness)).count == 1, "the spool copy stays")

            // A sender started at once finds the file still held by the dead one's lease and leaves it.
            let killedAt = ContinuousClock.now
            let early = try await Self.send(harness)
            #expect(early.status == 0 && Self.sentKeys(early.output).isEmpty, "\(early.output)")
            try await Task.sleep(until: killedAt + .seconds(61))
            let resumed = try await Self.send(harness)
            #expect(resumed.status == 0, "\(resumed.output)")
            let summary = PipelineHarness.summary(in: resumed.output)
            let uploaded = try #require(summary["bytes_uploaded"] as? Int)
            #expect(summary["files_sent"] as? Int == 1)
            #expect(uploaded <= max(0, big.count - Int(parts) * (16 << 20)) + 10, "sent \(uploaded) bytes after \(parts) parts were stored")
            #expect(uploaded < big.count)
            let row = try #require(try await harness.rows().first)
            #expect(row.state == "staged" && row.hash == PipelineHarness.sha256(big))
            #expect(try await harness.stagedHash(try #require(row.storageKey)) == row.hash)
            #expect(try await harness.staging.listMultipartUploads(prefix: "").isEmpty, "no multipart upload left behind")
            #expect(Self.spoolFiles(Self.spoolPath(harness)).isEmpty)
        }
    }

    @Test("the spool full during a read: reading pauses, a sender frees space, reading goes on; nothing dropped, the limit held")
    func spoolFullDuringRead() async throws {
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<8 { files["part-\(index).bin"] = PipelineHarness.bytes(count: 6_000_000, seed: UInt64(300 + index)) }
            for (path, bytes) in files { try harness.write(path, bytes) }
            let spool = Self.spoolPath(harness)
            let limit = 20_000_000
            let upload = try harness.startUpload(extra: ["--spool", spool, "--spool-limit", "\(limit)", "--concurrency", "4"])

            // The reader stops at the limit and waits.
            var maxUsed = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, !upload.outputSoFar().contains("spool full") {
                maxUsed = max(maxUsed, Self.usedBytes(spool))
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(upload.outputSoFar().contains("reading paused until `uploader send` frees space"), "\(upload.outputSoFar())")
            try await Task.sleep(for: .seconds(2))
            #expect(PipelineHarness.summary(in: upload.outputSoFar()).isEmpty, "the upload waits instead of finishing or dropping files")
            let spooledWhileFull = try await harness.rows().count
            #expect(spooledWhileFull < files.count, "not everything fit: \(spooledWhileFull)")

            // Senders free space until the reader is done.
            var sendRuns = 0
            // (A finished child stays a zombie until waited for, so its summary line says it is done, not kill(pid, 0).)
            while PipelineHarness.summary(in: upload.outputSoFar()).isEmpty || sendRuns == 0 {
                maxUsed = max(maxUsed, Self.usedBytes(spool))
                let sent = try await Self.send(harness)
                #expect(sent.status == 0, "\(sent.output)")
                sendRuns += 1
                if sendRuns > 200 { break }
            }
            let finished = try await upload.wait()
            #expect(finished.status == 0, "\(finished.output)")
            #expect(finished.output.contains("reading goes on"))
            #expect(try await Self.send(harness).status == 0)
            #expect(maxUsed <= limit + 65_536, "the spool held at most its limit: \(maxUsed)")
            let rows = try await harness.rows()
            #expect(rows.count == files.count && rows.allSatisfy { $0.state == "staged" }, "\(rows.map(\.state))")
            for row in rows { #expect(row.hash == PipelineHarness.sha256(try #require(files[row.path]))) }
            #expect(Self.spoolFiles(spool).isEmpty)
        }
    }

    @Test("send --watch, SIGTERM mid-part: exits 0 at once, the file given back with its journal; the next sender sends only the missing parts")
    func watchStopsGracefully() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let big = PipelineHarness.bytes(count: 100_000_000, seed: 44)
            try harness.write("tape.dv", big)
            #expect(try await harness.upload(extra: ["--spool", Self.spoolPath(harness)]).status == 0)

            let child = try Self.startSend(harness, ["--watch", "--bwlimit", "8M", "--poll-seconds", "0.5"])
            let parts = try await Self.waitForSentParts(harness, 2, of: child)
            let signalled = ContinuousClock.now
            child.signal(SIGTERM)
            let stopped = try await child.wait()
            #expect(stopped.status == 0, "\(stopped.output)")
            #expect(ContinuousClock.now - signalled < .seconds(10), "stopped without waiting for the file")
            #expect(parts >= 2)
            #expect(try await harness.rows().map(\.state) == ["spooled"])
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE lease_owner IS NULL AND jsonb_array_length(send_state->'parts') >= 2", as: Int64.self) == 1,
                    "given back with its journal")

            let resumed = try await Self.send(harness)  // no wait for a lease: it was given back
            #expect(resumed.status == 0, "\(resumed.output)")
            let summary = PipelineHarness.summary(in: resumed.output)
            let uploaded = try #require(summary["bytes_uploaded"] as? Int)
            #expect(summary["files_sent"] as? Int == 1)
            #expect(uploaded <= big.count - Int(parts) * (16 << 20) + 10, "sent \(uploaded) bytes after \(parts) parts were stored")
            let row = try #require(try await harness.rows().first)
            #expect(row.state == "staged")
            #expect(try await harness.stagedHash(try #require(row.storageKey)) == PipelineHarness.sha256(big))
        }
    }

    @Test("send --watch through a line that is cut for a while and comes back: backs off, resumes, nothing lost or doubled")
    func networkOutage() async throws {
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<3 { files["big-\(index).bin"] = PipelineHarness.bytes(count: 24_000_000, seed: UInt64(500 + index)) }
            for index in 0..<6 { files["small-\(index).txt"] = PipelineHarness.bytes(count: 10_000 + index, seed: UInt64(600 + index)) }
            for (path, bytes) in files { try harness.write(path, bytes) }
            #expect(try await harness.upload(extra: ["--spool", Self.spoolPath(harness)]).status == 0)

            let proxy = try await RateProxy()
            var environment = harness.environment
            environment["AWS_ENDPOINT_URL_S3"] = proxy.endpoint
            let child = try Program.start("uploader", [
                "send", "--spool", Self.spoolPath(harness), "--json", "--watch", "--lease-seconds", "3", "--bwlimit", "6M",
                "--poll-seconds", "0.5", "--max-backoff-seconds", "2",
            ], environment: environment)
            _ = try await Self.waitForSentParts(harness, 1, of: child)
            // Cut long enough for the S3 client's own retries (8 tries, backoff up to ~25 s) to give up, so the
            // sender's backoff is what carries it over the outage.
            proxy.cut()
            let cutDeadline = ContinuousClock.now + .seconds(90)
            while ContinuousClock.now < cutDeadline, !child.outputSoFar().contains("not sending") {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(child.outputSoFar().contains("not sending"), "the sender noticed the outage: \(child.outputSoFar())")
            try await Task.sleep(for: .seconds(4))  // and tried again, backing off, while the line was still cut
            let offline = try await harness.scalar("SELECT sender_state FROM spools", as: String.self)
            #expect(offline == "offline", "the sender's state is recorded")
            proxy.reconnect()

            // Until everything is sent and the sender has said so: a SIGTERM right after the last file is recorded
            // would end the pass before it can report that it is sending again.
            let deadline = ContinuousClock.now + .seconds(180)
            while ContinuousClock.now < deadline,
                try await harness.rows().contains(where: { $0.state == "spooled" }) || !child.outputSoFar().contains("sending again")
            {
                try await Task.sleep(for: .milliseconds(250))
            }
            child.signal(SIGTERM)
            let stopped = try await child.wait()
            _ = try await proxy.stop()
            #expect(stopped.status == 0, "\(stopped.output)")
            #expect(stopped.output.contains("sending again"))
            let rows = try await harness.rows()
            #expect(rows.count == files.count && rows.allSatisfy { $0.state == "staged" }, "\(rows.map(\.state))")
            let sent = Self.sentKeys(stopped.output)
            #expect(sent.count == files.count && Set(sent).count == files.count, "each file sent once: \(sent.count)")
            for row in rows {
                #expect(row.hash == PipelineHarness.sha256(try #require(files[row.path])))
                #expect(try await harness.stagedHash(try #require(row.storageKey)) == row.hash, "\(row.path)")
            }
            #expect(try await harness.staging.listMultipartUploads(prefix: "").isEmpty, "no multipart upload left behind")
            #expect(Self.spoolFiles(Self.spoolPath(harness)).isEmpty)
        }
    }

    @Test("outside every --window the sender claims nothing and says 'paused until HH:MM' (uploader sources shows it); SIGTERM ends the wait")
    func closedWindowPauses() async throws {
        try await PipelineHarness.with(.s3) { harness in
            try harness.write("notes.txt", "a file waiting for the night")
            #expect(try await harness.upload(extra: ["--spool", Self.spoolPath(harness)]).status == 0)
            // A window that opens two hours from now (UTC), so it is closed for the whole test.
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = TimeZone(identifier: "UTC")!
            let opens = utc.dateComponents([.year, .month, .day, .hour, .minute], from: Date().addingTimeInterval(7200))
            let closes = utc.dateComponents([.hour, .minute], from: Date().addingTimeInterval(7200 + 1800))
            let window = String(format: "%02d:%02d-%02d:%02d", opens.hour!, opens.minute!, closes.hour!, closes.minute!)
            let child = try Self.startSend(harness, ["--window", window, "--timezone", "UTC"])
            var state: String?
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, state != "paused" {
                state = try? await harness.scalar("SELECT sender_state FROM spools", as: String.self)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(state == "paused")
            let detail = try await harness.scalar("SELECT sender_detail FROM spools", as: String.self)
            // A time of another day carries its date ("until 2026-12-07 00:37"): a run in the two hours before midnight.
            let sameDay = utc.component(.day, from: Date()) == opens.day!
            let opening = (sameDay ? "" : String(format: "%04d-%02d-%02d ", opens.year!, opens.month!, opens.day!))
                + String(format: "%02d:%02d", opens.hour!, opens.minute!)
            #expect(detail?.hasPrefix("until " + opening) == true, "\(detail ?? "nil")")
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragefiles WHERE lease_owner IS NOT NULL", as: Int64.self) == 0, "nothing claimed")
            let sources = try await Program.run("uploader", ["sources", "--json"], environment: harness.environment)
            #expect(sources.output.contains(#""files_waiting":1"#) && sources.output.contains(#""sender_state":"paused""#), "\(sources.output)")
            // The source itself says what was read, sent and archived, and what its spool's sender is doing.
            let source = try #require(sources.output.split(separator: "\n").compactMap { line in
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            }.first { $0["label"] as? String == "DVD 12" }, "\(sources.output)")
            #expect(source["sent"] as? Int == 0 && source["files"] as? Int == 1, "\(source)")
            let sender = try #require(source["sender"] as? String, "\(source)")
            #expect(sender.hasPrefix("read 1, sent 0, archived 0; 1 waiting in \(Self.spoolPath(harness)) on ") && sender.contains(": sender paused (until "), "\(sender)")
            child.signal(SIGTERM)
            let stopped = try await child.wait()
            #expect(stopped.status == 130, "\(stopped.output)")
            #expect(try await harness.rows().map(\.state) == ["spooled"])
            #expect(try await PipelineHarness.allKeys(harness.staging).isEmpty)
        }
    }

    @Test("a delete requested while the content is spooled waits until it is sent and archived, then is processed as usual")
    func deleteOfSpooledContentWaits() async throws {
        try await PipelineHarness.with(.s3) { harness in
            let bytes = PipelineHarness.bytes(count: 50_000, seed: 77)
            try harness.write("a.bin", bytes)
            try harness.write("copy/a.bin", bytes)
            #expect(try await harness.upload(extra: ["--spool", Self.spoolPath(harness)]).status == 0)
            // Which of the two paths holds the content and which is its duplicate depends on which was recorded first.
            let holder = try #require(try await harness.rows().first { $0.state == "spooled" })
            let survivor = try #require(try await harness.rows().first { $0.id != holder.id }).path
            try await harness.execute("INSERT INTO objectstoragedeletelog (file_id, requested_at) VALUES (\(holder.id), now() - interval '1 second')")
            let options = ["--delete-grace-days", "0", "--small-file-threshold", "1MiB"]
            #expect(try await harness.archiveOnce(options, environment: Self.standard).status == 0)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragedeletelog WHERE processed_at IS NULL", as: Int64.self) == 1, "waits")
            #expect(try await harness.rows().first { $0.id == holder.id }?.state == "spooled")

            #expect(try await Self.send(harness).status == 0)
            #expect(try await harness.archiveOnce(options, environment: Self.standard).status == 0)
            #expect(try await harness.scalar("SELECT count(*) FROM objectstoragedeletelog WHERE processed_at IS NULL", as: Int64.self) == 0, "processed once sent")
            let restore = try await harness.restoreSource("DVD 12", environment: Self.standard)
            #expect(restore.files["DVD 12/" + survivor] == bytes, "the duplicate keeps the content: \(restore.output)")
            #expect(restore.files.count == 1, "the deleted file is not restored")
        }
    }

    @Test("randomized: senders killed (SIGKILL or SIGTERM) at random moments, round after round; at every pause each file is either spooled with its spool copy intact or staged with the right bytes; at the end all staged, nothing lost or doubled")
    func randomKillsLoseNothing() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["SPOOL_TEST_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        print("randomKillsLoseNothing seed \(seed) (SPOOL_TEST_SEED replays it)")
        var random = SplitMix(seed: seed)
        try await PipelineHarness.with(.s3) { harness in
            var files: [String: [UInt8]] = [:]
            for index in 0..<3 { files["large-\(index).bin"] = PipelineHarness.bytes(count: Int.random(in: 17_000_000...34_000_000, using: &random), seed: random.next()) }
            for index in 0..<9 { files["small-\(index).bin"] = PipelineHarness.bytes(count: Int.random(in: 0...300_000, using: &random), seed: random.next()) }
            files["small-dup.bin"] = files["small-1.bin"]
            for (path, bytes) in files { try harness.write(path, bytes) }
            #expect(try await harness.upload(extra: ["--spool", Self.spoolPath(harness)]).status == 0)
            let spool = Self.spoolPath(harness)

            /// The invariant: a spooled row's spool copy is there with the bytes the catalog expects; a staged
            /// row's object in staging is; no other state appears.
            func check(_ moment: String) async throws {
                let rows = try await harness.rows()
                #expect(rows.count == files.count, "\(moment): no row lost or added")
                for row in rows where row.state != "duplicate" {
                    let key = try #require(row.storageKey)
                    let expected = PipelineHarness.sha256(try #require(files[row.path]))
                    #expect(row.hash == expected, "\(moment): \(row.path)")
                    switch row.state {
                    case "spooled":
                        let bytes = FileManager.default.contents(atPath: spool + "/" + key).map(Array.init)
                        #expect(bytes.map(PipelineHarness.sha256) == expected, "\(moment): \(row.path) is spooled and its spool copy is intact")
                    case "staged":
                        #expect(try await harness.stagedHash(key) == expected, "\(moment): \(row.path) is staged with its bytes")
                    default:
                        Issue.record("\(moment): \(row.path) is \(row.state)")
                    }
                }
            }

            for round in 0..<5 {
                let senders = try (0..<2).map { _ in
                    try Self.startSend(harness, ["--bwlimit", "\(Int.random(in: 8...32, using: &random))M", "--concurrency", "\(Int.random(in: 1...3, using: &random))"])
                }
                for sender in senders {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 100...2500, using: &random)))
                    sender.signal(Bool.random(using: &random) ? SIGKILL : SIGTERM)
                }
                for sender in senders {
                    let result = try await sender.wait()
                    #expect([0, 130, 128 + SIGKILL].contains(result.status), "round \(round): \(result.output)")
                }
                try await check("after round \(round)")
            }

            // Leases of killed senders run out; then one sender finishes the job.
            try await Task.sleep(for: .seconds(4))
            let last = try await Self.send(harness)
            #expect(last.status == 0, "\(last.output)")
            try await check("at the end")
            let rows = try await harness.rows()
            #expect(rows.filter { $0.state == "staged" }.count == files.count - 1, "\(rows.map(\.state))")
            #expect(Self.spoolFiles(spool).isEmpty, "the spool is empty: \(Self.spoolFiles(spool))")
            let staged = try await PipelineHarness.allKeys(harness.staging)
            #expect(Set(staged) == Set(rows.compactMap { $0.state == "staged" ? $0.storageKey : nil }), "one object per staged row and no other: \(staged)")
        }
    }

    // MARK: helpers

    /// Bytes of the files in place in the spool (not the temporary files being written: a rename between two
    /// directories' listings would count one file twice).
    static func usedBytes(_ spool: String) -> Int {
        guard let enumerator = FileManager.default.enumerator(atPath: spool) else { return 0 }
        var total = 0
        while let relative = enumerator.nextObject() as? String {
            if relative.hasPrefix(".objectstore/tmp") { continue }
            if let attributes = try? FileManager.default.attributesOfItem(atPath: spool + "/" + relative),
               attributes[.type] as? FileAttributeType == .typeRegular {
                total += (attributes[.size] as? Int) ?? 0
            }
        }
        return total
    }

    /// Waits until a sender's journal in the catalog shows `parts` stored parts (or the process ended).
    static func waitForSentParts(_ harness: PipelineHarness, _ parts: Int32, of process: Subprocess.Running) async throws -> Int32 {
        try await CatalogDatabase.withClient(harness.database.url, logger: TestEnvironment.logger) { client in
            var seen: Int32 = 0
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline, kill(process.processID, 0) == 0 {
                for try await value in try await client.query(
                    "SELECT coalesce(max(jsonb_array_length(send_state->'parts')), 0)::int FROM objectstoragefiles",
                    logger: TestEnvironment.logger).decode(Int32.self) { seen = value }
                if seen >= parts { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            return seen
        }
    }
}
