import Foundation

/// A presigned GET and when it stops working (`ObjectStorageFiles.signed_download_url` and its expiry).
public struct PresignedURL: Sendable, Hashable {
    public var url: String
    /// nil: it does not expire (a `file://` URL).
    public var expires: Date?

    public init(url: String, expires: Date?) {
        self.url = url
        self.expires = expires
    }
}
