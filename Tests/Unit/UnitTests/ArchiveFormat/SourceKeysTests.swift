import AgeEncryption
import ArchiveFormat
import Crypto
import Foundation
import PipelineCore
import SystemIO
import Testing

@Suite("encrypted sources: records, keys, sealed placements")
struct SourceKeysTests {
    static let source = SealedSource(label: "Tax papers", note: "the green folder", origin: "/media/usb", metadata: ["year": "2019"])

    @Test("a recipients source: the record holds no secret, resumes only with the same recipients and key, opens only with the identity")
    func recipientsSource() throws {
        let identity = AgeX25519Identity.generate()
        let other = AgeX25519Identity.generate()
        let key = SymmetricKey(size: .bits256)
        let keys = try SourceKeys.create(recipients: [identity.recipient, identity.recipient], dedupeKey: key, source: Self.source)
        let json = keys.record.encoded()
        let record = try SourceEncryptionRecord.decode(json)
        #expect(record.wrappedDedupeKey == keys.record.wrappedDedupeKey && record.dedupeKeyID == keys.record.dedupeKeyID && record.sealedSource == keys.record.sealedSource)
        #expect(record.recipients == [identity.recipient.description], "duplicates removed")
        #expect(!json.contains("Tax papers") && !json.contains("green folder") && !json.contains("/media/usb"))
        #expect(!json.contains(key.withUnsafeBytes { Data($0).base64EncodedString() }), "the dedupe key appears only wrapped")
        #expect(record.summary.hasPrefix("age, to 1 recipient (age1"))

        _ = try SourceKeys.resume(record, recipients: [identity.recipient], dedupeKey: key)
        #expect(throws: EncryptionError.self) { try SourceKeys.resume(record, recipients: [other.recipient], dedupeKey: key) }
        #expect(throws: EncryptionError.self) { try SourceKeys.resume(record, recipients: [identity.recipient], dedupeKey: SymmetricKey(size: .bits256)) }
        #expect(throws: EncryptionError.self) { try SourceKeys.resume(record, passphrase: "anything") }

        let unlock = try SourceUnlock.open(record, identities: [other, identity], passphrase: nil)
        #expect(unlock.dedupeKey == key)
        #expect(try SealedText.open(json: record.sealedSource, as: SealedSource.self, with: unlock.fileIdentities) == Self.source)
        do {
            _ = try SourceUnlock.open(record, identities: [other], passphrase: nil)
            Issue.record("a wrong identity opened the source")
        } catch let error as EncryptionError {
            #expect(error.code == .wrongIdentity)
            #expect(!error.description.contains("AGE-SECRET-KEY"))
        }
    }

    @Test("a passphrase source: its own identity sealed with the passphrase; the same keys come back with it, never with another")
    func passphraseSource() async throws {
        // Four scrypt runs at age's work factor (seconds of CPU in a debug build) on the thread pool: on the
        // cooperative pool they would stall every other test of the process, the watchdog's timing among them.
        try await blocking {
            let keys = try SourceKeys.create(passphrase: "correct horse", source: Self.source)
            let record = try SourceEncryptionRecord.decode(keys.record.encoded())
            #expect(record.scheme == .passphrase && record.sourceIdentity != nil)
            let again = try SourceKeys.resume(record, passphrase: "correct horse")
            #expect(again.dedupeKey == keys.dedupeKey && again.recipients == keys.recipients)
            do {
                _ = try SourceKeys.resume(record, passphrase: "wrong horse")
                Issue.record("a wrong passphrase opened the source")
            } catch let error as EncryptionError {
                #expect(error.code == .wrongPassphrase)
            }
            let unlock = try SourceKeyring(passphrase: "correct horse").unlock(record)
            #expect(unlock.dedupeKey == keys.dedupeKey)
        }
    }

    @Test("keyed content hashes: equal files equal under one key, unrelated under another and to SHA-256; seeds differ per staging key")
    func keyedHashes() throws {
        let one = try SourceKeys.create(recipients: [AgeX25519Identity.generate().recipient], dedupeKey: SymmetricKey(size: .bits256), source: Self.source)
        let two = try SourceKeys.create(recipients: [AgeX25519Identity.generate().recipient], dedupeKey: SymmetricKey(size: .bits256), source: Self.source)
        func keyed(_ keys: SourceKeys, _ text: String) -> String {
            var hasher = ContentHasher(dedupeKey: keys.dedupeKey)
            Array(text.utf8).withUnsafeBytes { hasher.update($0) }
            return hasher.finalize()
        }
        #expect(keyed(one, "a letter") == keyed(one, "a letter"))
        #expect(keyed(one, "a letter") != keyed(two, "a letter"))
        #expect(keyed(one, "a letter") != SHA256.hash(data: Array("a letter".utf8)).map { String(format: "%02x", $0) }.joined())
        #expect(one.encryptionSeed(forStagingKey: "sources/1/a.age") != one.encryptionSeed(forStagingKey: "sources/1/b.age"))
        #expect(one.encryptionSeed(forStagingKey: "sources/1/a.age") == one.encryptionSeed(forStagingKey: "sources/1/a.age"))
    }
}
