import Catalog
import Foundation
import ObjectStore

/// Keeps a multipart upload's progress in the catalog's `pending_uploads` row, so that a killed uploader resumes
/// the upload in its next run and sends only the parts that are missing.
actor CatalogUploadJournal: MultipartUploadJournal {
    private let catalog: IngestCatalog
    private let pendingID: Int64
    private var state: MultipartUploadState?

    init(catalog: IngestCatalog, pending: PendingUpload) throws {
        self.catalog = catalog
        self.pendingID = pending.id
        if let json = pending.multipartState {
            self.state = try JSONDecoder.journal.decode(MultipartUploadState.self, from: Data(json.utf8))
        }
    }

    func load() -> MultipartUploadState? { state }

    func begin(_ newState: MultipartUploadState) async throws {
        state = newState
        try await save()
    }

    func recordPart(_ part: UploadedPart) async throws {
        state?.parts.removeAll { $0.number == part.number }
        state?.parts.append(part)
        try await save()
    }

    func clear() async throws {
        state = nil
        try await save()
    }

    /// Keeps the saved state: the `pending_uploads` row goes in the transaction that records the file, and until
    /// then a crash leaves the completed upload findable (the next run keeps it instead of sending it again).
    func finished() async throws {
        state = nil
    }

    private func save() async throws {
        let json = try state.map { String(decoding: try JSONEncoder.journal.encode($0), as: UTF8.self) }
        try await catalog.saveMultipartState(pendingID: pendingID, json: json)
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
