import ArchiveFormat
import Crypto
import Foundation
import PipelineCore
import SystemIO

/// The dedupe keys of encrypted sources that this machine holds (`<data dir>/keys/dedupe-<id>.key`, mode 0600).
///
/// The uploader never has the identity, so it cannot read a key back from the catalog (where it is stored only
/// encrypted to the recipients): it keeps its own copy here. Losing this directory loses no data; a later upload
/// of the same source then needs `--identity` once to recover the key from the catalog.
public struct DedupeKeyStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    func path(forKeyID id: String) -> String { directory + "/dedupe-\(id).key" }

    func load(keyID id: String) throws -> SymmetricKey? {
        let path = path(forKeyID: id)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }),
              let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw EncryptionError(.localKeyStore, "\(path) is not a dedupe key (32 bytes, base64)")
        }
        let key = SymmetricKey(data: bytes)
        guard SourceKeys.keyID(of: key) == id else { throw EncryptionError(.localKeyStore, "\(path) holds another key than its name says") }
        return key
    }

    /// Saves a key (a new one, or one recovered with the identity); an existing copy is kept as it is.
    func save(_ key: SymmetricKey) throws {
        let id = SourceKeys.keyID(of: key)
        if try load(keyID: id) != nil { return }
        do {
            try POSIXFile.makeDirectories(directory)
            _ = chmod(directory, 0o700)
            let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
            try POSIXFile.createSecretFile(path(forKeyID: id), contents: Array(text.utf8))
        } catch {
            throw EncryptionError(.localKeyStore, "cannot save the dedupe key in \(directory): \(error)")
        }
    }
}
