import Catalog
import Testing
@testable import Upload

/// The local index's file format and its trust rules (racy-git), without a file system or a catalog.
@Suite struct UploadIndexTests {
    static let second: Int64 = 1_000_000_000
    static let token = UploadIndexToken(catalogIdentity: "0b1e5c9e-8f7a-4c4e-9d0a-2a5e6b7c8d9e", epoch: 3, rows: 120, maxRowID: 4567)

    static func index(runStarted: Int64 = 1_000 * second, entries: [String: UploadIndexEntry] = [:]) -> UploadIndex {
        UploadIndex(
            header: UploadIndexHeader(sourceID: 7, token: token, root: Array("/media/cdrom".utf8), fileSystemID: 99, fileSystemType: "ext4",
                                      runStarted: runStarted, written: runStarted + 5 * second),
            entries: entries)
    }

    static let entry = UploadIndexEntry(device: 2049, inode: 77, size: 4096, modified: 500 * second + 123, changed: 600 * second + 456, rowID: 42)

    @Test func roundTripAndEveryDefectIsNoIndex() throws {
        let original = Self.index(entries: ["a/b.txt": Self.entry, "x\\xff.bin": UploadIndexEntry(device: 1, inode: 2, size: 3, modified: 4, changed: 5, rowID: 6)])
        let bytes = original.encoded()
        let decoded = try #require(UploadIndex.decode(bytes))
        #expect(decoded.header == original.header && decoded.entries == original.entries)
        // Any flipped byte, any cut, anything appended: not an index.
        for position in stride(from: 0, to: bytes.count, by: 7) {
            var damaged = bytes
            damaged[position] ^= 0x10
            #expect(UploadIndex.decode(damaged) == nil, "byte \(position) flipped")
        }
        for length in [0, 1, 8, 40, bytes.count - 33, bytes.count - 1] { #expect(UploadIndex.decode(Array(bytes.prefix(length))) == nil) }
        #expect(UploadIndex.decode(bytes + [0]) == nil)
    }

    @Test func trustedOnlyWhenEverythingMatchesAndTheFileIsOlderThanTheRecordingRunByTheGranularity() {
        let policy = UploadIndexPolicy(index: Self.index(entries: ["f": Self.entry]), trustable: true)
        let e = Self.entry
        func verdict(device: UInt64 = e.device, inode: UInt64 = e.inode, size: Int64 = e.size, modified: Int64 = e.modified, changed: Int64 = e.changed,
                     path: String = "f", policy: UploadIndexPolicy = policy) -> UploadIndexVerdict {
            policy.verdict(device: device, inode: inode, size: size, modified: modified, changed: changed, path: path)
        }
        #expect(verdict() == .trusted(rowID: 42))
        #expect(verdict(path: "g") == .unknown)
        #expect(verdict(size: 4097) == .unknown, "another size: the catalog sees the change")
        #expect(verdict(device: 2050) == .unknown, "another device: never trusted")
        #expect(verdict(inode: 78) == .recheck, "replaced by rename")
        #expect(verdict(changed: e.changed + 1) == .recheck, "touched, time put back")
        #expect(verdict(modified: e.modified - 1) == .recheck)
        #expect(verdict(policy: UploadIndexPolicy(index: Self.index(entries: ["f": e]), trustable: false)) == .recheck, "catalog changed: nothing trusted")
        // Racy: modified or changed less than the granularity (2 s) before the recording run started.
        let justBefore = 1_000 * Self.second - UploadIndexPolicy.granularityNanoseconds
        for (modified, changed) in [(justBefore, justBefore - 1), (justBefore - 10, justBefore), (999 * Self.second, 999 * Self.second)] {
            let racy = UploadIndexEntry(device: e.device, inode: e.inode, size: e.size, modified: modified, changed: changed, rowID: 1)
            let policy = UploadIndexPolicy(index: Self.index(entries: ["f": racy]), trustable: true)
            #expect(verdict(modified: modified, changed: changed, policy: policy) == .recheck, "\(modified) \(changed)")
        }
        let settled = UploadIndexEntry(device: e.device, inode: e.inode, size: e.size, modified: justBefore - 1, changed: justBefore - 1, rowID: 1)
        #expect(verdict(modified: justBefore - 1, changed: justBefore - 1, policy: UploadIndexPolicy(index: Self.index(entries: ["f": settled]), trustable: true))
                == .trusted(rowID: 1))
    }

    @Test func whenAnIndexIsIgnoredOrOnlyPointsAtFilesToRecheck() {
        let index = Self.index()
        let fileSystem: (id: UInt64, type: String) = (99, "ext4")
        let root = Array("/media/cdrom".utf8)
        let now = 2_000 * Self.second
        func check(_ index: UploadIndex?, token: UploadIndexToken = Self.token, root: [UInt8] = root, fileSystem: (id: UInt64, type: String) = fileSystem,
                   now: Int64 = now, sourceID: Int64 = 7) -> (used: Bool, trusted: Bool, status: String) {
            let result = UploadIndexSession.policy(for: index, sourceID: sourceID, token: token, root: root, fileSystem: fileSystem, now: now)
            return (result.policy != nil, result.policy?.trustable ?? false, result.status)
        }
        #expect(check(index) == (true, true, "local index used"))
        #expect(check(nil).used == false)
        #expect(check(index, sourceID: 8).used == false)
        #expect(check(index, root: Array("/media/other".utf8)).used == false)
        #expect(check(index, fileSystem: (100, "ext4")).used == false)
        #expect(check(index, now: 1_004 * Self.second).status.contains("clock went back"), "written after now")
        #expect(check(index, now: 1_004 * Self.second).used == false)
        var other = Self.token
        other.catalogIdentity = "1b1e5c9e-8f7a-4c4e-9d0a-2a5e6b7c8d9e"
        #expect(check(index, token: other).used == false, "another catalog")
        for changed in [UploadIndexToken(catalogIdentity: Self.token.catalogIdentity, epoch: 4, rows: 120, maxRowID: 4567),
                        UploadIndexToken(catalogIdentity: Self.token.catalogIdentity, epoch: 3, rows: 121, maxRowID: 4567),
                        UploadIndexToken(catalogIdentity: Self.token.catalogIdentity, epoch: 3, rows: 120, maxRowID: 4568)] {
            #expect(check(index, token: changed) == (true, false, check(index, token: changed).status), "the catalog changed: re-check hints only")
        }
        #expect(check(index, fileSystem: (99, "nfs4")).trusted == false, "NFS: times from another clock")
    }
}
