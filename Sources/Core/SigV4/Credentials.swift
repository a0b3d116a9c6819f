import Foundation

/// An AWS access key pair, optionally temporary (STS) with a session token and an expiry.
///
/// Printing, interpolating, `dump`ing or mirroring a value never reveals the secret or the token:
/// credentials end up in logs through error messages and debug output far too easily.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-lived keys.
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String {
        var text = "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>"
        if sessionToken != nil { text += ", sessionToken: <redacted>" }
        if let expiration { text += ", expiration: \(SigV4Timestamp(expiration).iso8601)" }
        return text + ")"
    }

    public var debugDescription: String { description }

    /// Without this, `dump(credentials)` and debuggers would walk the stored properties and print the secret.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "accessKeyID": accessKeyID as Any,
                "secretAccessKey": "<redacted>" as Any,
                "sessionToken": (sessionToken == nil ? "nil" : "<redacted>") as Any,
                "expiration": expiration as Any,
            ],
            displayStyle: .struct
        )
    }
}
