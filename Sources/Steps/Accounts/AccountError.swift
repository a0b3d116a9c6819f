import PipelineCore

/// Why an account operation was refused, in one line that names what was wrong and never a password or token.
public typealias AccountError = CodedError<AccountErrorCode>

public enum AccountErrorCode: String, Sendable, Hashable {
    /// A user name outside `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
    case invalidName
    /// A password that is empty, too short or too long for bcrypt.
    case weakPassword
    /// The name is taken.
    case exists
    /// No enabled user has that name.
    case unknownUser
    /// No live token of that name.
    case unknownToken
    /// An invitation link that is unknown, used or expired.
    case invalidInvitation
    /// Self-registration is off.
    case registrationClosed
}
