import Accounts
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineCore

/// Browser uploads over tus 1.0.0 (core protocol, `creation`, `termination`, `expiration`) on `/api/uploads`:
///
/// - `OPTIONS /api/uploads` — `Tus-Version`, `Tus-Extension`, `Tus-Max-Size`.
/// - `POST /api/uploads` with `Upload-Length` and `Upload-Metadata` (`source`: the source's name, `path` or
///   `filename`: where the file goes in it, optional `notes` for the source and `modified`: the file's time in ms)
///   — 201 with `Location: /api/uploads/<id>`.
/// - `HEAD /api/uploads/<id>` — `Upload-Offset`, `Upload-Length`, `Upload-Metadata`.
/// - `PATCH /api/uploads/<id>` with `Content-Type: application/offset+octet-stream` and `Upload-Offset` — 204 with
///   the new offset, once the bytes are synced to disk and the offset is in the catalog.
/// - `DELETE /api/uploads/<id>` — terminates an upload not yet complete.
/// - `GET /api/uploads` and `GET /api/uploads/<id>` (not tus): the caller's open uploads, one upload's state as JSON.
///
/// Every request but OPTIONS needs `Tus-Resumable: 1.0.0` (else 412) and a member: a personal token, or the session
/// cookie plus the session's CSRF token in `X-CSRF-Token` for anything that changes state. Another member's upload
/// is 404, exactly like one that does not exist.
struct TusRoutes: Sendable {
    let auth: FamilyAuth
    let catalog: BrowserUploadCatalog
    let partials: PartialUploads?
    let storer: BrowserUploadStorer?
    let settings: BrowserUploadSettings
    let locks = UploadLocks()
    let logger: Logger

    /// A request the routes answer with a refusal instead of going on.
    struct Refused: Error {
        let response: Response
    }

    func add(to router: Router<StatusRequestContext>) {
        router.on("/api/uploads", method: .options) { _, _ in options() }
        router.on("/api/uploads/:id", method: .options) { _, _ in options() }
        router.post("/api/uploads") { request, _ in await answer { try await create(request) } }
        router.head("/api/uploads/:id") { request, context in await answer { try await head(request, id: try context.parameters.require("id")) } }
        router.patch("/api/uploads/:id") { request, context in await answer { try await patch(request, id: try context.parameters.require("id")) } }
        router.delete("/api/uploads/:id") { request, context in await answer { try await terminate(request, id: try context.parameters.require("id")) } }
        // X-HTTP-Method-Override, for clients that cannot send PATCH or DELETE.
        router.post("/api/uploads/:id") { request, context in
            await answer {
                let id = try context.parameters.require("id")
                switch request.headers[Tus.methodOverride]?.uppercased() {
                case "PATCH": return try await patch(request, id: id)
                case "DELETE": return try await terminate(request, id: id)
                case "HEAD": return try await head(request, id: id)
                default: return Tus.refusal(.methodNotAllowed, "POST a new upload to /api/uploads; an upload takes HEAD, PATCH and DELETE")
                }
            }
        }
        router.get("/api/uploads") { request, _ in await answer { try await list(request) } }
        router.get("/api/uploads/:id") { request, context in await answer { try await status(request, id: try context.parameters.require("id")) } }
    }

    /// Runs a route, turning refusals and bad input into their one-line answers; anything else is a 500 whose
    /// details go to the log only.
    func answer(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let refused as Refused {
            return refused.response
        } catch let input as TusInputError {
            return Tus.refusal(.badRequest, input.line)
        } catch {
            logger.error("browser uploads: a request failed", metadata: ["error": "\(error)"])
            return Tus.refusal(.internalServerError, "the server could not complete this request; try again")
        }
    }

    func options() -> Response {
        Tus.response(.noContent, headers: [
            Tus.versionHeader: Tus.version, Tus.extensionHeader: Tus.extensions, Tus.maxSize: String(settings.maxSize),
        ])
    }

    // MARK: Who asks

    /// The member making the request: a personal token, or the session cookie (with the session's CSRF token in
    /// `X-CSRF-Token` when the request changes state).
    func caller(_ request: Request, changes: Bool) async throws -> AccountUser {
        if request.headers[.authorization] != nil {
            guard let user = try await auth.caller(request) else { throw Refused(response: unauthorized()) }
            return user
        }
        guard let (user, session) = try await auth.sessionUser(request) else { throw Refused(response: unauthorized()) }
        if changes {
            let sent = request.headers[Tus.csrfHeader] ?? ""
            guard !sent.isEmpty, SecretTokens.constantTimeEqual(sent, SecretTokens.csrfToken(forSession: session)) else {
                throw Refused(response: Tus.refusal(.forbidden, "missing or wrong X-CSRF-Token: reload the upload page and try again"))
            }
        }
        return user
    }

    func unauthorized() -> Response {
        var response = Tus.refusal(.unauthorized, "log in, or send Authorization: Bearer <personal token>")
        response.headers[.wwwAuthenticate] = "Bearer realm=\"family archive\""
        return response
    }

    /// The partial files, or 503 when this server takes no uploads.
    func enabled() throws -> (PartialUploads, BrowserUploadStorer) {
        guard let partials, let storer else {
            throw Refused(response: Tus.refusal(.serviceUnavailable, "this server takes no uploads (no upload directory or staging store configured)"))
        }
        return (partials, storer)
    }

    /// The caller's upload, or 404 (also for another member's).
    func owned(_ id: String, by user: AccountUser) async throws -> BrowserUpload {
        guard PartialUploads.isValidID(id), let upload = try await catalog.upload(id: id, ownerID: user.id) else {
            throw Refused(response: Tus.refusal(.notFound, "no such upload"))
        }
        return upload
    }

    static func refuse(_ status: HTTPResponse.Status, _ line: String) -> Refused { Refused(response: Tus.refusal(status, line)) }

    // MARK: tus

    func create(_ request: Request) async throws -> Response {
        if let refusal = Tus.versionRefusal(request) { return refusal }
        let user = try await caller(request, changes: true)
        let (partials, storer) = try enabled()
        if request.headers[Tus.deferLength] != nil {
            throw Self.refuse(.badRequest, "Upload-Defer-Length is not supported: send Upload-Length, the file's size in bytes")
        }
        guard let length = try Tus.integer(request, Tus.uploadLength).get() else {
            throw Self.refuse(.badRequest, "missing Upload-Length: the file's size in bytes")
        }
        guard length <= settings.maxSize else {
            throw Self.refuse(.contentTooLarge, "the upload (\(length) bytes) is larger than this server takes (Tus-Max-Size \(settings.maxSize))")
        }
        if let sent = request.headers[.contentLength], sent != "0" {
            throw Self.refuse(.badRequest, "send the file's bytes with PATCH: creation-with-upload is not offered")
        }
        let header = request.headers[Tus.uploadMetadata] ?? ""
        let metadata = try Tus.metadata(header).get()
        let label = try Tus.checkLabel(metadata["source"]).get()
        let path = try Tus.checkPath(metadata["path"] ?? metadata["relativePath"] ?? metadata["filename"] ?? metadata["name"]).get()
        let note = metadata["notes"].flatMap { $0.isEmpty ? nil : $0 }
        if let note, note.count > 4000 { throw Self.refuse(.badRequest, "the notes are longer than 4000 characters") }
        var modified: Date?
        if let text = metadata["modified"] {
            guard let milliseconds = Int64(text), (0...253_402_300_799_000).contains(milliseconds) else {
                throw Self.refuse(.badRequest, "Upload-Metadata 'modified' must be the file's time in milliseconds since 1970")
            }
            modified = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
        let free = try await partials.availableBytes()
        guard free - length >= settings.reserveBytes else {
            throw Self.refuse(Tus.insufficientStorage, "not enough room on the server for this upload: \(length) bytes needed, \(max(0, free - settings.reserveBytes)) free")
        }
        let id = PartialUploads.newID()
        try await partials.create(id)
        let created: BrowserUploadCreation
        do {
            created = try await catalog.create(
                id: id, ownerID: user.id, label: label, note: note, path: path, length: length, metadata: header, modifiedAt: modified)
        } catch {
            try? await partials.remove(id)
            throw error
        }
        switch created {
        case .created(let upload):
            if upload.state == .storing { storer.wake() }
            logger.info("browser upload created", metadata: ["upload.id": "\(id)", "upload.length": "\(length)", "source.id": "\(upload.sourceID)"])
            return Tus.response(.created, headers: [.location: "/api/uploads/\(id)", Tus.uploadExpires: expires(from: Date())])
        case .sourceTaken:
            try await partials.remove(id)
            throw Self.refuse(.conflict, "the source name '\(label)' is taken by another member: choose another name")
        case .sourceEncrypted:
            try await partials.remove(id)
            throw Self.refuse(.conflict, "the source '\(label)' is encrypted by its uploader: the server holds no key to add files to it")
        }
    }

    func head(_ request: Request, id: String) async throws -> Response {
        if let refusal = Tus.versionRefusal(request) { return refusal }
        let user = try await caller(request, changes: false)
        _ = try enabled()
        let upload = try await owned(id, by: user)
        var headers: HTTPFields = [Tus.uploadOffset: String(try await settledOffset(upload)), Tus.uploadLength: String(upload.length)]
        if !upload.metadata.isEmpty { headers[Tus.uploadMetadata] = upload.metadata }
        if upload.state == .receiving { headers[Tus.uploadExpires] = expires(from: upload.updatedAt) }
        return Tus.response(.ok, headers: headers)
    }

    /// The offset as the bytes really are: the partial file reconciled with the catalog, unless a request holds the
    /// upload right now (then the acknowledged offset, which is all a client may build on).
    func settledOffset(_ upload: BrowserUpload) async throws -> Int64 {
        guard upload.state == .receiving else { return upload.length }
        return try await locks.withLock(upload.id) {
            // Read again under the lock: a PATCH that finished after `upload` was read has advanced the row, and
            // reconciling with the stale offset would cut the bytes it just acknowledged.
            guard let current = try await catalog.upload(id: upload.id, ownerID: upload.ownerID) else {
                throw Self.refuse(.notFound, "no such upload")
            }
            guard current.state == .receiving else { return current.length }
            return try await reconcile(current)
        } ?? upload.received
    }

    /// Cuts bytes written but never acknowledged; rewinds the catalog when the file lost acknowledged ones.
    /// `upload` must be the row as read while holding the upload's lock: an older one may name an offset a PATCH has
    /// since passed, and the file would be cut below what that PATCH acknowledged.
    func reconcile(_ upload: BrowserUpload) async throws -> Int64 {
        let (partials, _) = try enabled()
        let kept = try await partials.reconcile(upload.id, received: upload.received)
        if kept < upload.received {
            try await catalog.rewind(id: upload.id, to: kept)
            logger.warning("browser uploads: a partial file held less than acknowledged; its client is asked for the rest again", metadata: [
                "upload.id": "\(upload.id)", "upload.received": "\(upload.received)", "upload.kept": "\(kept)",
            ])
        }
        return kept
    }

    func patch(_ request: Request, id: String) async throws -> Response {
        if let refusal = Tus.versionRefusal(request) { return refusal }
        let user = try await caller(request, changes: true)
        _ = try enabled()
        let mediaType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaType == Tus.contentType else {
            throw Self.refuse(.unsupportedMediaType, "PATCH needs Content-Type: \(Tus.contentType)")
        }
        guard let offset = try Tus.integer(request, Tus.uploadOffset).get() else {
            throw Self.refuse(.badRequest, "missing Upload-Offset: the offset this chunk starts at (ask it with HEAD)")
        }
        let declared = try Tus.integer(request, .contentLength).get()
        let upload = try await owned(id, by: user)
        guard let response = try await locks.withLock(id, { try await write(request.body, to: upload, at: offset, declared: declared) }) else {
            throw Self.refuse(Tus.locked, "another request is writing to this upload: ask its offset with HEAD and go on from there")
        }
        return response
    }

    /// Appends a chunk, holding the upload's lock.
    func write(_ body: RequestBody, to found: BrowserUpload, at offset: Int64, declared: Int64?) async throws -> Response {
        let (partials, storer) = try enabled()
        guard let upload = try await catalog.upload(id: found.id, ownerID: found.ownerID) else { throw Self.refuse(.notFound, "no such upload") }
        guard upload.state == .receiving else {
            if offset == upload.length, (declared ?? 0) == 0 { return Tus.response(.noContent, headers: [Tus.uploadOffset: String(upload.length)]) }
            throw Self.refuse(.conflict, "the upload is complete (\(upload.length) bytes): nothing more to send")
        }
        let current = try await reconcile(upload)
        guard offset == current else {
            throw Self.refuse(.conflict, "Upload-Offset \(offset) is not the upload's offset \(current): ask it with HEAD and send from there")
        }
        let remaining = upload.length - current
        if let declared, declared > remaining {
            throw Self.refuse(.contentTooLarge, "the chunk (\(declared) bytes at offset \(offset)) goes past the declared Upload-Length \(upload.length)")
        }
        switch try await partials.append(upload.id, at: offset, limit: remaining, body: body) {
        case .tooLong:
            throw Self.refuse(.contentTooLarge, "the chunk goes past the declared Upload-Length \(upload.length): none of it was kept")
        case .brokeOff(let written, let error):
            if written > 0 { _ = try await catalog.advance(id: upload.id, from: offset, to: offset + written) }
            logger.info("browser uploads: a chunk broke off; what arrived is kept", metadata: [
                "upload.id": "\(upload.id)", "upload.kept": "\(written)", "error": "\(error)",
            ])
            throw Self.refuse(.badRequest, "the chunk ended early: \(written) bytes of it were kept (ask the offset with HEAD)")
        case .complete(let written):
            guard try await catalog.advance(id: upload.id, from: offset, to: offset + written) else {
                throw Self.refuse(.conflict, "the upload changed while this chunk was written: ask its offset with HEAD")
            }
            if offset + written == upload.length {
                storer.wake()
                return Tus.response(.noContent, headers: [Tus.uploadOffset: String(offset + written)])
            }
            return Tus.response(.noContent, headers: [Tus.uploadOffset: String(offset + written), Tus.uploadExpires: expires(from: Date())])
        }
    }

    /// When an upload last touched at `touched` expires if no byte comes (tus `expiration`).
    func expires(from touched: Date) -> String {
        Tus.httpDate(touched.addingTimeInterval(Double(settings.expireAfter.components.seconds)))
    }

    func terminate(_ request: Request, id: String) async throws -> Response {
        if let refusal = Tus.versionRefusal(request) { return refusal }
        let user = try await caller(request, changes: true)
        let (partials, _) = try enabled()
        let upload = try await owned(id, by: user)
        let result = try await locks.withLock(id) { () async throws -> Response in
            switch try await catalog.terminate(id: upload.id, ownerID: user.id) {
            case .notFound: throw Self.refuse(.notFound, "no such upload")
            case .busy: throw Self.refuse(.conflict, "every byte of this upload is here and it is being stored: it can no longer be terminated")
            case .terminated:
                try await partials.remove(upload.id)
                return Tus.response(.noContent)
            }
        }
        guard let result else { throw Self.refuse(Tus.locked, "another request is writing to this upload: try again in a moment") }
        return result
    }

    // MARK: JSON (not tus)

    func list(_ request: Request) async throws -> Response {
        let user = try await caller(request, changes: false)
        let uploads = try await catalog.openUploads(ownerID: user.id).map(Self.describe)
        return try FamilyRoutes.json(["uploads": uploads])
    }

    func status(_ request: Request, id: String) async throws -> Response {
        let user = try await caller(request, changes: false)
        return try FamilyRoutes.json(Self.describe(try await owned(id, by: user)))
    }

    static func describe(_ upload: BrowserUpload) -> [String: Any] {
        [
            "id": upload.id, "source": upload.sourceLabel, "path": upload.path, "length": upload.length,
            "offset": upload.state == .receiving ? upload.received : upload.length, "state": upload.state.rawValue,
            "error": upload.error ?? NSNull(), "outcome": upload.outcome ?? NSNull(), "file_id": upload.fileID ?? NSNull(),
            "download": upload.fileID.map { "/files/\($0)/download" } ?? NSNull(), "url": "/api/uploads/\(upload.id)",
        ]
    }
}
