import Foundation
import NIOCore
import PipelineCore
import SystemIO
import Testing
@testable import ObjectStore

@Suite("file:// object store")
struct FileSystemObjectStoreTests {
    func makeStore(chunkSize: Int = 4 << 20) async throws -> (FileSystemObjectStore, String) {
        let root = NSTemporaryDirectory() + "filestore-\(UUID().uuidString)"
        let store = try await FileSystemObjectStore(
            root: root, configuration: .init(chunkSize: chunkSize))
        return (store, root)
    }

    func temporaryFiles(_ store: FileSystemObjectStore) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.root + "/.objectstore/tmp")
    }

    @Test("round trip with SHA-256, metadata and ranges", arguments: [0, 1, 4095, 3 << 20 + 17])
    func roundTrip(size: Int) async throws {
        let (store, root) = try await makeStore(chunkSize: 1 << 20)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = testBytes(size, seed: UInt64(size))
        let result = try await store.put("a/b/c.bin", from: .bytes(bytes),
                                         options: PutOptions(contentType: "x/y", metadata: ["Label": "DVD 1"]))
        #expect(result.sha256 == sha256Hex(bytes))
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/a/b/c.bin")) == Data(bytes), "stored as a plain file")
        let info = try #require(try await store.head("a/b/c.bin"))
        #expect(info.size == Int64(size) && info.contentType == "x/y" && info.metadata == ["label": "DVD 1"])
        #expect(info.checksumSHA256 == Data(hexBytes(result.sha256)!).base64EncodedString())
        #expect(try await store.getBytes("a/b/c.bin") == bytes)
        if size > 10 {
            #expect(try await store.getBytes("a/b/c.bin", range: ByteRange(3...9)) == Array(bytes[3...9]))
            #expect(try await store.getBytes("a/b/c.bin", range: ByteRange(first: Int64(size - 2))) == Array(bytes.suffix(2)))
        }
        #expect(try temporaryFiles(store).isEmpty)
    }

    @Test("writers and deleters racing on the same prefixes: a delete's pruning of empty directories never fails a write (seen: `cannot mkdir …/sources/2` while a sender emptied the spool)")
    func writesSurvivePruning() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A fixed number of writes, not a time: each put syncs, and a loaded machine once managed only 62 in 4 s.
        let writesEach = 200
        // The deleter stops when the writers are done (a flag, not cancellation: a cancelled delete reports a failure).
        actor Flag { var isSet = false; func set() { isSet = true } }
        let writersDone = Flag()
        let (written, deleteRounds) = try await withThrowingTaskGroup(of: (writes: Int, deleteRounds: Int).self) { group in
            for writer in 0..<2 {
                group.addTask {
                    for count in 0..<writesEach {
                        // Few directories, each emptied again and again by the deleter below.
                        let key = "sources/\(Int.random(in: 0..<3))/w\(writer)-\(count)"
                        _ = try await store.put(key, bytes: Array("x".utf8))
                    }
                    return (writesEach, 0)
                }
            }
            group.addTask {
                var rounds = 0
                while await !writersDone.isSet {
                    var keys: [String] = []
                    for try await object in store.listAll(prefix: "sources/") { keys.append(object.key) }
                    let failures = await store.delete(keys: keys)
                    #expect(failures.isEmpty)
                    if !keys.isEmpty { rounds += 1 }
                    await Task.yield()
                }
                return (0, rounds)
            }
            var writes = 0, rounds = 0, finishedWriters = 0
            while let result = try await group.next() {
                writes += result.writes
                rounds += result.deleteRounds
                if result.writes > 0 { finishedWriters += 1 }
                if finishedWriters == 2 { await writersDone.set() }
            }
            return (writes, rounds)
        }
        #expect(written == 2 * writesEach)
        #expect(deleteRounds > 0, "the deleter ran while the writers wrote")
    }

    @Test("keys cannot escape the root", arguments: [
        "", "../escape", "a/../../escape", "/absolute", "a//b", "a/./b", "trailing/", ".objectstore/tmp/x", "nul\u{0}byte",
    ])
    func unsafeKeys(key: String) async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let error = await #expect(throws: ObjectStoreError.self) { _ = try await store.put(key, bytes: [1]) }
        #expect(error?.kind == .invalidKey)
        await #expect(throws: ObjectStoreError.self) { _ = try await store.get(key) }
        await #expect(throws: ObjectStoreError.self) { try await store.delete(key) }
        #expect(!FileManager.default.fileExists(atPath: root + "/../escape"))
        #expect(try await store.list(prefix: "").objects.isEmpty)
    }

    @Test("keys with spaces, unicode and '+' map to files of the same name")
    func unusualKeys() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = ["with space/a b.txt", "ünï/日本.bin", "a+b=c&d.txt", "...three dots"]
        for key in keys { _ = try await store.put(key, bytes: Array(key.utf8)) }
        for key in keys { #expect(try await store.getBytes(key) == Array(key.utf8)) }
        #expect(FileManager.default.fileExists(atPath: root + "/with space/a b.txt"))
        let url = try await store.presignedGetURL("with space/a b.txt", expiresIn: .seconds(60))
        #expect(url == "file://" + root + "/with%20space/a%20b.txt")
    }

    @Test("a write in progress is invisible, and the old object stays readable until the new one is complete")
    func atomicReplace() async throws {
        let (store, root) = try await makeStore(chunkSize: 64 << 10)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let old = testBytes(1000, seed: 1)
        _ = try await store.put("doc", bytes: old)
        let new = testBytes(2 << 20, seed: 2)
        let stream = HangingStream(bytes: new, hangAfter: 1 << 20, chunkSize: 64 << 10)

        let writer = Task { try await store.put("doc", from: .stream(stream, length: Int64(new.count))) }
        let fresh = Task { try await store.put("fresh", from: .stream(stream, length: Int64(new.count))) }
        // Wait until both temporary files hold the first MiB.
        let started = try await eventually {
            let files = try temporaryFiles(store)
            return files.count == 2 && files.allSatisfy {
                ((try? FileManager.default.attributesOfItem(atPath: store.root + "/.objectstore/tmp/" + $0)[.size])
                    as? Int ?? 0) >= 1 << 20
            }
        }
        #expect(started)
        #expect(try await store.getBytes("doc") == old)
        #expect(try await store.head("doc")?.size == 1000)
        #expect(try await store.head("fresh") == nil)
        #expect(try await store.list(prefix: "").objects.map(\.key) == ["doc"])

        writer.cancel()
        fresh.cancel()
        _ = await writer.result
        _ = await fresh.result
        #expect(try await store.getBytes("doc") == old, "a cancelled write leaves the old object")
        #expect(try await store.head("fresh") == nil)
        #expect(try temporaryFiles(store).isEmpty, "a cancelled write removes its temporary file")

        _ = try await store.put("doc", from: .bytes(new))
        #expect(try await store.getBytes("doc", limit: 4 << 20) == new)
    }

    @Test("leftovers of a crashed writer are not objects and are swept")
    func crashLeftovers() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: root + "/.objectstore/tmp/crashed-writer"))
        #expect(try await store.list(prefix: "").objects.isEmpty)
        #expect(try await store.removeStaleTemporaryFiles(olderThan: .seconds(3600)) == 0)
        #expect(try await store.removeStaleTemporaryFiles(olderThan: .zero) == 1)
        #expect(try temporaryFiles(store).isEmpty)
    }

    @Test("a sidecar that no longer matches its object is ignored, not trusted")
    func staleSidecar() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await store.put("v", from: .bytes([1, 2, 3]), options: PutOptions(storageClass: .deepArchive))
        // As if a crash came between renaming the new data into place and renaming its sidecar.
        let replacement = root + "/.objectstore/tmp/replacement"
        try Data([9, 9, 9, 9]).write(to: URL(fileURLWithPath: replacement))
        _ = rename(replacement, root + "/v")
        let info = try #require(try await store.head("v"))
        #expect(info.storageClassName == "STANDARD" && info.metadata.isEmpty && info.checksumSHA256 == nil)
        #expect(try await store.getBytes("v") == [9, 9, 9, 9])
    }

    @Test("a plain object keeps its size and checksum on its own inode: no sidecar file", arguments: [
        (5000, 1 << 20),  // whole in one piece: created, written and renamed in one call
        (5000, 1024),  // in several pieces
    ])
    func plainObjectAttribute(size: Int, chunkSize: Int) async throws {
        let (store, root) = try await makeStore(chunkSize: chunkSize)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = testBytes(size, seed: 3)
        let result = try await store.put("sources/1/a", from: .bytes(bytes))
        #expect(!FileManager.default.fileExists(atPath: root + "/.objectstore/meta/sources/1/a.json"))
        let attribute = try #require(POSIXFile.attribute(path: root + "/sources/1/a", name: ObjectSidecar.attributeName, capacity: 64))
        #expect(attribute.count == 40 && Array(attribute[8...]) == hexBytes(result.sha256))
        let checksum = Data(hexBytes(result.sha256)!).base64EncodedString()
        let info = try #require(try await store.head("sources/1/a"))
        #expect(info.checksumSHA256 == checksum && info.etag == "\"\(result.sha256)\"" && info.storageClassName == "STANDARD")
        #expect(try await store.get("sources/1/a").info.checksumSHA256 == checksum)
        #expect(try await store.list(prefix: "sources/").objects.map(\.etag) == [info.etag])
        #expect(try temporaryFiles(store).isEmpty)
        // An object with more to say (a class, a type, metadata) still gets its sidecar.
        _ = try await store.put("sources/1/b", from: .bytes(bytes), options: PutOptions(storageClass: .deepArchive))
        #expect(FileManager.default.fileExists(atPath: root + "/.objectstore/meta/sources/1/b.json"))
        #expect(POSIXFile.attribute(path: root + "/sources/1/b", name: ObjectSidecar.attributeName, capacity: 64) == nil)
        #expect(try await store.head("sources/1/b")?.storageClassName == "DEEP_ARCHIVE")
    }

    @Test("the attribute wins over a sidecar left by an earlier object, and is not trusted once the file changed size")
    func plainObjectAttributePrecedence() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try await store.put("k", from: .bytes([1, 2, 3]))
        // A sidecar naming this very inode and size (as an earlier object's could, once its inode number is reused).
        let status = try #require(try POSIXFile.status(path: root + "/k"))
        let stale = ObjectSidecar(inode: UInt64(status.st_ino), size: 3, sha256: String(repeating: "0", count: 64), storageClass: "DEEP_ARCHIVE",
                                  contentType: "x/y", metadata: ["old": "yes"], restoredUntil: nil)
        try FileManager.default.createDirectory(atPath: root + "/.objectstore/meta", withIntermediateDirectories: true)
        try ObjectSidecar.encoder.encode(stale).write(to: URL(fileURLWithPath: root + "/.objectstore/meta/k.json"))
        let info = try #require(try await store.head("k"))
        #expect(info.storageClassName == "STANDARD" && info.metadata.isEmpty && info.etag == "\"\(result.sha256)\"")
        // Bytes added by hand: the attribute (and the sidecar) describe 3 bytes, so neither is believed.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/k"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([4]))
        try handle.close()
        let changed = try #require(try await store.head("k"))
        #expect(changed.size == 4 && changed.checksumSHA256 == nil && changed.etag == nil && changed.storageClassName == "STANDARD")
    }

    @Test("archived classes need a restore, which completes at once")
    func archiveAndRestore() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await store.put("cold", from: .bytes([7]), options: PutOptions(storageClass: .deepArchive))
        _ = try await store.put("warm", bytes: [8])
        #expect(try await store.head("cold")?.restore == .archived)
        let error = await #expect(throws: ObjectStoreError.self) { _ = try await store.getBytes("cold") }
        #expect(error?.kind == .invalidObjectState)
        #expect(error?.description.contains("DEEP_ARCHIVE") == true)
        #expect(try await store.requestRestore("cold", days: 1, tier: .bulk) == .started)
        #expect(try await store.head("cold")?.restore.isReadable == true)
        #expect(try await store.getBytes("cold") == [7])
        #expect(try await store.requestRestore("cold", days: 2, tier: .bulk) == .alreadyRestored)
        let standard = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.requestRestore("warm", days: 1, tier: .bulk)
        }
        #expect(standard?.kind == .invalidObjectState)
        let missing = await #expect(throws: ObjectStoreError.self) {
            _ = try await store.requestRestore("nope", days: 1, tier: .bulk)
        }
        #expect(missing?.kind == .notFound)
    }

    @Test("list in UTF-8 order with paging; delete prunes empty directories")
    func listAndDelete() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = ["a/1", "a/2", "a-x", "b/c/d", "ab"]
        for key in keys { _ = try await store.put(key, bytes: Array(key.utf8)) }
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try await store.list(prefix: "a", continuationToken: token, maxKeys: 2)
            seen += page.objects.map(\.key)
            token = page.nextContinuationToken
        } while token != nil
        #expect(seen == ["a-x", "a/1", "a/2", "ab"])
        #expect(try await store.list(prefix: "b/c/").objects.map(\.key) == ["b/c/d"])

        try await store.delete("b/c/d")
        #expect(!FileManager.default.fileExists(atPath: root + "/b"))
        try await store.delete("b/c/d")
        #expect(try await store.head("b/c/d") == nil)
        let error = await #expect(throws: ObjectStoreError.self) { _ = try await store.get("b/c/d") }
        #expect(error?.kind == .notFound)
    }

    @Test("deleting many keys at once removes them all, prunes emptied directories and reports only what failed")
    func deleteMany() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = (0..<40).map { "sources/1/\($0 % 2 == 0 ? "even" : "odd")/file-\($0)" } + ["kept/one"]
        for key in keys { _ = try await store.put(key, bytes: Array(key.utf8)) }
        let doomed = keys.filter { $0.hasPrefix("sources/") }
        let failures = await store.delete(keys: doomed + ["sources/1/never-existed", "../outside"])
        #expect(Set(failures.keys) == ["../outside"], "only the invalid key fails: \(failures)")
        for key in doomed { #expect(try await store.head(key) == nil, "\(key)") }
        #expect(try await store.head("kept/one") != nil)
        #expect(!FileManager.default.fileExists(atPath: root + "/sources"), "emptied directories are pruned")
        var remaining: [String] = []
        for try await object in store.listAll() { remaining.append(object.key) }
        #expect(remaining == ["kept/one"])
    }

    @Test("a key cannot be both an object and a directory of keys")
    func fileDirectoryConflict() async throws {
        let (store, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await store.put("a", bytes: [1])
        let under = await #expect(throws: ObjectStoreError.self) { _ = try await store.put("a/b", bytes: [2]) }
        #expect(under?.kind == .conflict)
        _ = try await store.put("x/y", bytes: [3])
        let over = await #expect(throws: ObjectStoreError.self) { _ = try await store.put("x", bytes: [4]) }
        #expect(over?.kind == .conflict)
        #expect(try temporaryFiles(store).isEmpty)
    }

    @Test("copy keeps metadata and takes the new class; the factory opens file URLs")
    func copyAndFactory() async throws {
        let (_, root) = try await makeStore()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try await openObjectStore(url: try StorageURL(parsing: "file://\(root)"),
                                              settings: ObjectStoreSettings(environment: [:]))
        #expect(store is FileSystemObjectStore)
        _ = try await store.put("src", from: .bytes([1, 2, 3]), options: PutOptions(metadata: ["k": "v"]))
        let copy = try await store.copy(from: "src", to: "dst/copy", options: CopyOptions(storageClass: .glacier))
        #expect(copy.storageClassName == "GLACIER" && copy.metadata == ["k": "v"] && copy.size == 3)
        #expect(try await store.requestRestore("dst/copy", days: 1, tier: .standard) == .started)
        #expect(try await store.getBytes("dst/copy") == [1, 2, 3])
    }

    @Test("the JSON journal is rewritten atomically and survives a new instance")
    func jsonJournal() async throws {
        let directory = NSTemporaryDirectory() + "journal-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/upload.json"
        let journal = JSONFileMultipartUploadJournal(path: path)
        #expect(try await journal.load() == nil)
        try await journal.begin(MultipartUploadState(location: "s3://b/k", uploadID: "U", objectSize: 10, partSize: 5))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 1...20 {
                group.addTask {
                    try await journal.recordPart(UploadedPart(number: number, etag: "\"e\(number)\"",
                                                              checksumSHA256: "c", size: 5))
                }
            }
            try await group.waitForAll()
        }
        let reloaded = try #require(try await JSONFileMultipartUploadJournal(path: path).load())
        #expect(reloaded.uploadID == "U" && reloaded.parts.map(\.number).sorted() == Array(1...20))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["upload.json"])
        try await journal.clear()
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try await JSONFileMultipartUploadJournal(path: path).load() == nil)
    }
}
