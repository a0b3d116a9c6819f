import Foundation
import NIOCore
import Testing
import Synchronization
@testable import ObjectStore

/// Multipart uploads that die half-way and resume, against moto.
@Suite("multipart resume against moto")
struct MultipartResumeTests {
    static let part = 5 << 20
    static let options = PutOptions(multipartThreshold: part, partSize: part, maxPartsInFlight: 2)

    /// Starts an upload whose source stalls after `partsBeforeCrash` parts, waits until the journal holds them,
    /// and cancels it, as a killed process would leave things (minus the process).
    func crashedUpload(store: S3ObjectStore, key: String, bytes: [UInt8], partsBeforeCrash: Int,
                       journal: some MultipartUploadJournal) async throws {
        let stream = HangingStream(bytes: bytes, hangAfter: partsBeforeCrash * Self.part + 1000, chunkSize: 256 << 10)
        let upload = Task {
            try await store.put(key, from: .stream(stream, length: Int64(bytes.count)), options: Self.options,
                                journal: journal)
        }
        let reached = try await eventually {
            (try await journal.load()?.parts.count ?? 0) >= partsBeforeCrash
        }
        #expect(reached, "the first parts were never journaled")
        upload.cancel()
        let outcome = await upload.result
        #expect(throws: ObjectStoreError.self) { try outcome.get() }
    }

    @Test("an upload killed after 2 of 5 parts resumes and sends only the 3 missing parts")
    func resumeSendsOnlyMissingParts() async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try await moto.freshStore(label: "resume", counter: counter)
        let bytes = testBytes(4 * Self.part + 4321, seed: 11)
        let journal = InMemoryMultipartUploadJournal()

        try await crashedUpload(store: store, key: "video.dv", bytes: bytes, partsBeforeCrash: 2, journal: journal)
        let saved = try #require(await journal.state, "the journal must survive the crash")
        #expect(saved.parts.map(\.number).sorted() == [1, 2])
        #expect(try await store.listMultipartUploads(prefix: "").map(\.uploadID) == [saved.uploadID])
        #expect(try await store.head("video.dv") == nil, "nothing may be visible before completion")

        counter.reset()
        let result = try await store.put("video.dv", from: .bytes(bytes), options: Self.options, journal: journal)
        #expect(counter.uploadPartCount == 3)
        #expect(counter.requests.contains { $0.method == "GET" && $0.query.contains("uploadId=") }, "ListParts reconciles")
        #expect(!counter.requests.contains { $0.method == "POST" && $0.query.hasPrefix("uploads") },
                "no new upload is created")
        #expect(result.partCount == 5)
        #expect(result.partsUploaded == 3)
        #expect(result.sha256 == sha256Hex(bytes))
        #expect(try await store.getBytes("video.dv") == bytes)
        #expect(await journal.state == nil)
        #expect(try await store.listMultipartUploads(prefix: "").isEmpty)
    }

    @Test("an upload completed just before the crash (journal not yet cleared) is kept: nothing is sent again")
    func completedUploadIsAdopted() async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try await moto.freshStore(label: "adopt", counter: counter)
        let bytes = testBytes(3 * Self.part + 99, seed: 13)
        // The process died after CompleteMultipartUpload and before clearing its journal.
        let journal = InMemoryMultipartUploadJournal()
        _ = try await store.put("disc.iso", from: .bytes(bytes), options: Self.options, journal: KeepingJournal(journal))
        #expect(await journal.state?.parts.count == 4)

        counter.reset()
        let again = try await store.put("disc.iso", from: .bytes(bytes), options: Self.options, journal: journal)
        #expect(counter.uploadPartCount == 0)
        #expect(!counter.requests.contains { $0.method == "POST" }, "no new upload, no second completion")
        #expect(again.partsUploaded == 0 && again.bytesUploaded == 0 && again.partCount == 4)
        #expect(again.sha256 == sha256Hex(bytes))
        #expect(await journal.state == nil)

        // The same situation with local bytes that changed since: refused, journal cleared, the next run uploads anew.
        _ = try await store.put("other.iso", from: .bytes(bytes), options: Self.options, journal: KeepingJournal(journal))
        var changed = bytes
        changed[2 * Self.part + 1] ^= 0x01
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.put("other.iso", from: .bytes(changed), options: Self.options, journal: journal)
        }
        #expect(error?.kind == .sourceChanged)
        #expect(await journal.state == nil)
        counter.reset()
        let fresh = try await store.put("other.iso", from: .bytes(changed), options: Self.options, journal: journal)
        #expect(fresh.partsUploaded == 4 && counter.uploadPartCount == 4)
        #expect(try await store.getBytes("other.iso") == changed)
    }

    @Test("a stored part whose local bytes changed is sent again; the JSON journal survives a new process")
    func changedPartIsResent() async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try await moto.freshStore(label: "changed", counter: counter)
        let bytes = testBytes(3 * Self.part + 7, seed: 12)
        let path = NSTemporaryDirectory() + "journal-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }

        try await crashedUpload(store: store, key: "k", bytes: bytes, partsBeforeCrash: 2,
                                journal: JSONFileMultipartUploadJournal(path: path))
        var changed = bytes
        changed[Self.part + 5] ^= 0xFF  // inside part 2
        counter.reset()
        // A new journal object over the same file, as after a restart.
        let result = try await store.put("k", from: .bytes(changed), options: Self.options,
                                         journal: JSONFileMultipartUploadJournal(path: path))
        #expect(counter.uploadPartCount == 3)  // part 2 again, parts 3 and 4
        #expect(result.partsUploaded == 3)
        #expect(result.sha256 == sha256Hex(changed))
        #expect(try await store.getBytes("k") == changed)
        #expect(!FileManager.default.fileExists(atPath: path), "a finished upload clears its journal")
    }

    @Test("a part stored just before the crash, but not journaled, is verified by its MD5 ETag and reused")
    func unjournaledStoredPartIsReused() async throws {
        let moto = try MotoServer.fromEnvironment()
        let counter = CountingTransport()
        let store = try await moto.freshStore(label: "unjournaled", counter: counter)
        let bytes = testBytes(3 * Self.part + 1, seed: 13)
        let journal = InMemoryMultipartUploadJournal()
        try await crashedUpload(store: store, key: "k", bytes: bytes, partsBeforeCrash: 2, journal: journal)
        // Forget part 2 in the journal: the server has it, the journal does not (crash between the two writes).
        var state = try #require(await journal.state)
        state.parts.removeAll { $0.number == 2 }
        await journal.begin(state)

        counter.reset()
        let result = try await store.put("k", from: .bytes(bytes), options: Self.options, journal: journal)
        #expect(counter.uploadPartCount == 2)
        #expect(result.partsUploaded == 2)
        #expect(try await store.getBytes("k") == bytes)
    }

    @Test("without a journal a failed upload is aborted, not leaked")
    func failureWithoutJournalAborts() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "abort")
        let bytes = testBytes(3 * Self.part, seed: 14)
        let failing = FailingStream(bytes: bytes, failAfter: 2 * Self.part + 10)
        let error = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.put("k", from: .stream(failing, length: Int64(bytes.count)), options: Self.options)
        }
        #expect(error?.kind == .sourceUnreadable)
        #expect(try await store.listMultipartUploads(prefix: "").isEmpty)
    }

    @Test("a journal for other bytes (another size) is aborted and a fresh upload started")
    func mismatchedJournalIsAborted() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "mismatch")
        let journal = InMemoryMultipartUploadJournal()
        let first = testBytes(3 * Self.part, seed: 15)
        try await crashedUpload(store: store, key: "k", bytes: first, partsBeforeCrash: 1, journal: journal)
        let oldID = try #require(await journal.state?.uploadID)

        let second = testBytes(2 * Self.part + 9, seed: 16)
        let result = try await store.put("k", from: .bytes(second), options: Self.options, journal: journal)
        #expect(result.partsUploaded == 3)
        #expect(try await store.getBytes("k") == second)
        #expect(!(try await store.listMultipartUploads(prefix: "").map(\.uploadID).contains(oldID)))
    }

    @Test("unfinished uploads are listed and can be aborted")
    func listAndAbort() async throws {
        let moto = try MotoServer.fromEnvironment()
        // No '/' in the listing prefix: moto cannot verify signatures over one in a query value.
        let store = try await moto.freshStore(label: "uploads", prefix: "pre-")
        let journal = InMemoryMultipartUploadJournal()
        try await crashedUpload(store: store, key: "dir/k", bytes: testBytes(2 * Self.part + 1), partsBeforeCrash: 1,
                                journal: journal)
        let uploads = try await store.listMultipartUploads(prefix: "dir")
        #expect(uploads.count == 1)
        #expect(uploads.first?.key == "dir/k")
        #expect(uploads.first?.initiated != nil)
        let aborted = try await store.abortMultipartUploads(initiatedBefore: Date().addingTimeInterval(60))
        #expect(aborted == 1)
        #expect(try await store.listMultipartUploads(prefix: "").isEmpty)
        // Aborting again is harmless.
        try await store.abortMultipartUpload("dir/k", uploadID: try #require(uploads.first?.uploadID))
    }

    @Test("part sizes keep every object within 10,000 parts of at least 5 MiB")
    func partSizing() throws {
        #expect(try PartSizing.partSize(objectSize: 1 << 30, preferred: 16 << 20) == 16 << 20)
        #expect(try PartSizing.partSize(objectSize: 10, preferred: 1) == 5 << 20)
        for size: Int64 in [1 << 40, 5 << 40, 200_000_000_000, 163_840_000_001] {
            let partSize = try PartSizing.partSize(objectSize: size, preferred: 16 << 20)
            #expect(PartSizing.partCount(objectSize: size, partSize: partSize) <= 10_000)
            #expect(partSize % (1 << 20) == 0)
        }
        #expect(throws: ObjectStoreError.self) { try PartSizing.partSize(objectSize: (5 << 40) + 1, preferred: 0) }
    }
}

/// A journal that forgets to clear, as a process killed between completing an upload and clearing would leave it.
actor KeepingJournal: MultipartUploadJournal {
    let base: InMemoryMultipartUploadJournal
    init(_ base: InMemoryMultipartUploadJournal) { self.base = base }
    func load() async throws -> MultipartUploadState? { try await base.load() }
    func begin(_ state: MultipartUploadState) async throws { try await base.begin(state) }
    func recordPart(_ part: UploadedPart) async throws { try await base.recordPart(part) }
    func clear() async throws {}
}

/// Several multipart uploads at once share the process's budget of part buffers.
@Suite("multipart uploads within a shared buffer budget, against moto")
struct PartBufferBudgetUploadTests {
    @Test("four uploads of four parts at once, a budget of two parts: all stored byte for byte, never more held than the budget, all given back")
    func uploadsShareTheBudget() async throws {
        let moto = try MotoServer.fromEnvironment()
        let store = try await moto.freshStore(label: "budget")
        let part = MultipartResumeTests.part
        let budget = PartBufferBudget(bytes: 2 * part)
        let options = {
            var options = PutOptions(multipartThreshold: part, partSize: part, maxPartsInFlight: 3)
            options.partBuffers = budget
            return options
        }()
        let objects = (0..<4).map { testBytes(4 * part - 1000 * $0, seed: 70 + UInt64($0)) }
        let peak = Mutex(0)
        let sampler = Task {
            while !Task.isCancelled {
                let used = budget.used
                peak.withLock { $0 = max($0, used) }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        let results = try await withThrowingTaskGroup(of: (Int, PutResult).self) { group in
            for (index, bytes) in objects.enumerated() {
                group.addTask { (index, try await store.put("object-\(index)", from: .bytes(bytes), options: options)) }
            }
            return try await group.reduce(into: [Int: PutResult]()) { $0[$1.0] = $1.1 }
        }
        sampler.cancel()
        for (index, bytes) in objects.enumerated() {
            #expect(results[index]?.sha256 == sha256Hex(bytes))
            #expect(try await store.getBytes("object-\(index)") == bytes)
        }
        #expect(peak.withLock { $0 } <= 2 * part)
        #expect(peak.withLock { $0 } > 0)
        #expect(budget.used == 0)
    }
}
