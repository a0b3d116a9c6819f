import CLibAV

/// The one error the Media module throws: a kind the caller can switch on and a one-line message for people.
///
/// Messages name the file (by its last path component) and, when libav reported the failure, carry
/// `av_strerror`'s text and the numeric code. They never contain file contents.
public struct MediaError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Hashable {
        /// The input has zero bytes.
        case emptyFile
        /// The input could not be opened or recognised as a media file.
        case unreadable
        /// The input has no video stream (or no decodable video frame).
        case notVideo
        /// This libav build lacks a decoder, encoder or filter the job needs.
        case unsupported
        /// An unknown profile name or an invalid profile setting.
        case invalidProfile
        /// The per-job time limit passed.
        case timeLimitExceeded
        /// Writing the output failed (disk full, permissions, muxer refused a packet).
        case output
        /// Decoding, filtering or encoding failed in a way the pipeline could not skip.
        case processing
        /// The output did not pass verification.
        case verificationFailed
    }

    public let kind: Kind
    public let message: String
    /// The libav error code when libav reported the failure.
    public let code: Int32?

    public init(_ kind: Kind, _ message: String, code: Int32? = nil) {
        self.kind = kind
        self.code = code
        // One line, always.
        self.message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    public var description: String { message }

    /// An error that carries libav's text for `code`: "<what>: <av_strerror> (libav error <code>)".
    static func libav(_ kind: Kind, _ what: String, _ code: Int32) -> MediaError {
        MediaError(kind, "\(what): \(LibAV.errorText(code)) (libav error \(code))", code: code)
    }
}

/// Throws a `MediaError` when a libav call returned a negative code; passes non-negative results through.
@discardableResult
func check(_ result: Int32, _ kind: MediaError.Kind, _ what: @autoclosure () -> String) throws(MediaError) -> Int32 {
    if result < 0 { throw MediaError.libav(kind, what(), result) }
    return result
}

enum AVErrorCode {
    static let again = clibav_error_eagain()
    static let endOfFile = clibav_error_eof()
    static let invalidData = clibav_error_invaliddata()
    static let exit = clibav_error_exit()
    static let noMemory = clibav_error_enomem()
    static let invalidArgument = clibav_error_einval()
}

/// The last path component, for messages.
func fileName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
