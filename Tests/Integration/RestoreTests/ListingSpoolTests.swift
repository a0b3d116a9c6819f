import Catalog
import Foundation
import Restore
import Testing

/// `uploader sources` for a source waiting in a spool (pure formatting; the real sender's states are in SpoolTests).
@Suite("uploader sources: a source waiting in a spool")
struct ListingSpoolTests {
    static let spool = UUID(uuidString: "5B1D7C6E-0D1F-4A43-9C55-3F7E2B8A9D10")!

    static func source(files: Int64, spooled: Int64, archived: Int64) -> SourceSummary {
        SourceSummary(
            id: 7, label: "DVD 12", metadataJSON: "{}", note: nil, startedAt: Date(), finishedAt: Date(), files: files, bytes: 1000, storedBytes: 0,
            archived: archived, duplicates: 0, inProgress: files - spooled - archived, failed: 0, unreadable: 0, deleted: 0, spooled: spooled)
    }

    @Test("the table says read, sent, archived and the sender's state under the source; the JSON has `sent` and `sender`; nothing for a source with no spooled file")
    func spoolProgressLines() throws {
        let sender = SpoolSenderStatus(
            spoolID: Self.spool, host: "nas", path: "/srv/spool", state: "paused", detail: "until 01:00: outside every transfer window",
            updatedAt: Date(), files: 40, bytes: 4096)
        let waiting: [Int64: [UUID: Int64]] = [7: [Self.spool: 40]]
        let table = Listing.sources([Self.source(files: 120, spooled: 40, archived: 30)], style: .table, waiting: waiting, spools: [sender])
        #expect(table.contains("DVD 12: read 120, sent 80, archived 30; 40 waiting in /srv/spool on nas: sender paused (until 01:00: outside every transfer window)"), "\(table)")
        #expect(table[1].contains("read, waiting to send (40 files in a spool)"), "\(table)")

        let json = Listing.sources([Self.source(files: 120, spooled: 40, archived: 30)], style: .jsonLines, waiting: waiting, spools: [])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json[0].utf8)) as? [String: Any])
        #expect(object["sent"] as? Int == 80)
        #expect(object["sender"] as? String == "read 120, sent 80, archived 30; 40 waiting in a spool no longer listed: no sender has run")

        let sent = Listing.sources([Self.source(files: 120, spooled: 0, archived: 120)], style: .table, waiting: [:], spools: [sender])
        #expect(!sent.contains { $0.contains("waiting in") }, "\(sent)")
    }
}
