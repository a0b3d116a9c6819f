import Catalog
import Foundation
import ObjectStore

/// Keeps a multipart upload's progress in a catalog row, so that a killed process's successor resumes the upload
/// and sends only the parts that are missing: the uploader's `pending_uploads` row, or a spooled file's
/// `send_state` (the sender's, written only under its lease). `save` writes the journal (nil: none).
actor CatalogUploadJournal: MultipartUploadJournal {
    private let save: @Sendable (String?) async throws -> Void
    private var state: MultipartUploadState?

    init(savedJSON: String?, save: @escaping @Sendable (String?) async throws -> Void) throws {
        self.save = save
        if let json = savedJSON {
            self.state = try JSONDecoder.journal.decode(MultipartUploadState.self, from: Data(json.utf8))
        }
    }

    /// The journal of a pending upload (`pending_uploads.multipart_state`).
    init(catalog: IngestCatalog, pending: PendingUpload) throws {
        let pendingID = pending.id
        try self.init(savedJSON: pending.multipartState) { json in
            try await catalog.saveMultipartState(pendingID: pendingID, json: json)
        }
    }

    func load() -> MultipartUploadState? { state }

    func begin(_ newState: MultipartUploadState) async throws {
        state = newState
        try await write()
    }

    func recordPart(_ part: UploadedPart) async throws {
        state?.parts.removeAll { $0.number == part.number }
        state?.parts.append(part)
        try await write()
    }

    func clear() async throws {
        state = nil
        try await write()
    }

    /// Keeps the saved state: the row is cleared in the transaction that records the file (the pending upload is
    /// dropped, or the spooled row becomes `staged`), and until then a crash leaves the completed upload findable
    /// (the next attempt keeps it instead of sending it again).
    func finished() async throws {
        state = nil
    }

    private func write() async throws {
        let json = try state.map { String(decoding: try JSONEncoder.journal.encode($0), as: UTF8.self) }
        try await save(json)
    }
}

extension JSONEncoder {
    static var journal: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}

extension JSONDecoder {
    static var journal: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
