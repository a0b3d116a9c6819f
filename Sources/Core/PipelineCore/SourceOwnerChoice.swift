/// Who new sources belong to: `--owner USER` (explicit) or the default (the only user, or `BACKUP_OWNER`).
/// An explicit owner is refused for a source that belongs to someone else; a default one leaves such a source alone.
public struct SourceOwnerChoice: Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var explicit: Bool

    public init(id: Int64, name: String, explicit: Bool) {
        (self.id, self.name, self.explicit) = (id, name, explicit)
    }

    /// The one line for an explicit `--owner` naming someone other than the source's owner.
    public static func refusal(label: String, currentOwner: String, requested: String) -> String {
        "\(label) belongs to \(currentOwner); --owner \(requested) cannot take it"
    }
}
