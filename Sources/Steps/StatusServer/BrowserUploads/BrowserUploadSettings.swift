/// The status server's browser uploads (tus 1.0 on `/api/uploads`).
public struct BrowserUploadSettings: Sendable {
    /// Where the partial files of open uploads live (`<data dir>/browser-uploads` in the programs). It must survive
    /// a restart for uploads to resume across one: a partial file that is gone or shorter than the catalog says is
    /// noticed, and the client is told to send the missing bytes again. nil: uploads are off.
    public var directory: String?
    /// The largest upload accepted (`Tus-Max-Size`); a larger `Upload-Length` is refused with 413.
    public var maxSize: Int64
    /// Room kept free on the partial files' disk: an upload that would leave less is refused with 507.
    public var reserveBytes: Int64
    /// How many bytes of a request body are gathered before they are written (the memory one upload holds).
    public var writeBufferBytes: Int
    /// An upload that receives no byte for this long expires (tus `expiration`): its partial file and row go, and
    /// its client must start again. Abandoned uploads would otherwise hold disk space for ever.
    public var expireAfter: Duration
    /// `BACKUP_UPLOAD_CHUNK_MIB`: the size of the `PATCH` requests the upload page sends. Each chunk costs the server
    /// an fsync and a catalog commit and the browser a request, so small chunks are slow (docs/benchmarks.md); a
    /// connection that drops mid-chunk loses nothing that arrived (the server keeps and syncs it), so the size only
    /// bounds what a client that cannot tell sends again.
    public var chunkBytes: Int

    /// The default chunk: 64 MiB.
    public static let defaultChunkBytes = 64 << 20

    public init(
        directory: String? = nil, maxSize: Int64 = 1 << 40, reserveBytes: Int64 = 256 << 20, writeBufferBytes: Int = 1 << 20,
        expireAfter: Duration = .seconds(7 * 86_400), chunkBytes: Int = BrowserUploadSettings.defaultChunkBytes
    ) {
        self.chunkBytes = chunkBytes
        self.expireAfter = expireAfter
        self.directory = directory
        self.maxSize = maxSize
        self.reserveBytes = reserveBytes
        self.writeBufferBytes = writeBufferBytes
    }
}
