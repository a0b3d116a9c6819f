import AgeEncryption
import Foundation
import PipelineCore
import SystemIO
import Testing
import TestSupport

/// Our age implementation against Debian's `age` and `age-keygen` (installed by scripts/test), both ways, and the
/// uploader's keygen, encrypt and decrypt commands as a person runs them.
@Suite("age interop with the age CLI")
struct AgeInteropTests {
    static let sizes = [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, (1 << 20) + 3]

    /// Runs `age`, `age-keygen` or `script` from PATH; its standard output and error come back together.
    static func tool(_ name: String, _ arguments: [String]) async throws -> Subprocess.Result {
        try await Subprocess.run("/usr/bin/env", [name] + arguments)
    }

    /// Feeds `lines` to `command` on a terminal: age reads passphrases from the terminal only.
    static func onTerminal(_ command: String, typing lines: [String]) async throws -> Subprocess.Result {
        let typed = lines.map { $0 + "\\n" }.joined()
        return try await Subprocess.run("/bin/sh", ["-c", "printf '\(typed)' | script -qec '\(command)' /dev/null"])
    }

    static func write(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws -> [UInt8] {
        var encryptor = try AgeEncryptor(recipients: recipients)
        var file = encryptor.header
        plaintext.withUnsafeBytes { encryptor.encrypt($0, into: &file) }
        encryptor.finish(into: &file)
        return file
    }

    static func decrypt(_ file: [UInt8], with identities: [AgeIdentity]) throws -> [UInt8] {
        var decryptor = AgeDecryptor(identities: identities)
        var plaintext: [UInt8] = []
        try file.withUnsafeBytes { try decryptor.decrypt($0, into: &plaintext) }
        try decryptor.finish(into: &plaintext)
        return plaintext
    }

    static func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }

    @Test("our encryption, our keygenFile: age -d -i decrypts every size")
    func ourEncryptionAgeDecrypts() async throws {
        let directory = try TemporaryDirectory("age")
        defer { directory.remove() }
        let identity = AgeX25519Identity.generate()
        let key = directory.path + "/key.txt"
        try Self.write(Array(AgeFiles.keygenFile(identity, created: Date()).utf8), key)
        for size in Self.sizes {
            let plaintext = Self.random(size)
            let file = try Self.encrypt(plaintext, to: [.x25519(AgeX25519Identity.generate().recipient), .x25519(identity.recipient)])
            try Self.write(file, directory.path + "/file.age")
            let out = directory.path + "/out"
            try? FileManager.default.removeItem(atPath: out)
            let result = try await Self.tool("age", ["-d", "-i", key, "-o", out, directory.path + "/file.age"])
            #expect(result.status == 0, "size \(size): \(result.output)")
            // age creates the output file at its first write: an empty plaintext leaves none.
            let written = FileManager.default.fileExists(atPath: out) ? try Self.read(out) : []
            #expect(written == plaintext, "size \(size)")
        }
    }

    @Test("age -r and age -R encrypt, we decrypt every size; age-keygen's file parses")
    func ageEncryptsWeDecrypt() async throws {
        let directory = try TemporaryDirectory("age")
        defer { directory.remove() }
        let key = directory.path + "/key.txt"
        let generated = try await Self.tool("age-keygen", ["-o", key])
        #expect(generated.status == 0, "\(generated.output)")
        let text = String(decoding: try Self.read(key), as: UTF8.self)
        let identities = try AgeFiles.parseIdentities(text)
        let publicKey = try #require(text.split(separator: "\n").first { $0.hasPrefix("# public key: ") }?.dropFirst("# public key: ".count))
        #expect(identities.map(\.recipient.description) == [String(publicKey)])
        #expect(generated.output == "Public key: \(publicKey)")
        try Self.write(Array("# ours\n\(publicKey)\n".utf8), directory.path + "/recipients.txt")
        for (index, size) in Self.sizes.enumerated() {
            let plaintext = Self.random(size)
            try Self.write(plaintext, directory.path + "/plain")
            let recipientFlags = index % 2 == 0 ? ["-r", String(publicKey)] : ["-R", directory.path + "/recipients.txt"]
            let result = try await Self.tool("age", recipientFlags + ["-o", directory.path + "/file.age", directory.path + "/plain"])
            #expect(result.status == 0, "size \(size): \(result.output)")
            #expect(try Self.decrypt(Self.read(directory.path + "/file.age"), with: identities.map { .x25519($0) }) == plaintext, "size \(size)")
        }
    }

    @Test("passphrases both ways, through a terminal for age")
    func passphrase() async throws {
        let directory = try TemporaryDirectory("age")
        defer { directory.remove() }
        let plaintext = Self.random(70_000)
        try Self.write(plaintext, directory.path + "/plain")
        // age -p: work factor 18, as age chooses it.
        let encrypted = try await Self.onTerminal("age -p -o \(directory.path)/theirs.age \(directory.path)/plain", typing: ["hunter2", "hunter2"])
        #expect(encrypted.status == 0, "\(encrypted.output)")
        let theirs = try Self.read(directory.path + "/theirs.age")
        #expect(try Self.decrypt(theirs, with: [.passphrase("hunter2")]) == plaintext)
        #expect(theirs.starts(with: Array("age-encryption.org/v1\n-> scrypt ".utf8)))
        // Ours, with a small work factor to keep the test quick; age accepts any up to 22.
        try Self.write(try Self.encrypt(plaintext, to: [.passphrase("correct horse", workFactor: 12)]), directory.path + "/ours.age")
        let decrypted = try await Self.onTerminal("age -d -o \(directory.path)/out \(directory.path)/ours.age", typing: ["correct horse"])
        #expect(decrypted.status == 0, "\(decrypted.output)")
        #expect(try Self.read(directory.path + "/out") == plaintext)
    }

    @Test("uploader keygen, encrypt and decrypt with age on the other side")
    func uploaderCommands() async throws {
        let directory = try TemporaryDirectory("age")
        defer { directory.remove() }
        let key = directory.path + "/key.txt"
        let keygen = try await Program.run("uploader", ["keygen", "-o", key])
        #expect(keygen.status == 0, "\(keygen.output)")
        let info = try #require(try POSIXFile.status(path: key))
        #expect(info.st_mode & 0o777 == 0o600)
        let text = String(decoding: try Self.read(key), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 3 && lines[0].hasPrefix("# created: ") && lines[1].hasPrefix("# public key: age1") && lines[2].hasPrefix("AGE-SECRET-KEY-1"))
        let publicKey = String(lines[1].dropFirst("# public key: ".count))
        #expect(keygen.output == "Public key: \(publicKey)")
        let again = try await Program.run("uploader", ["keygen", "-o", key])
        let unchanged = String(decoding: try Self.read(key), as: UTF8.self)
        #expect(again.status == 1 && unchanged == text, "\(again.output)")

        let plaintext = Self.random(200_000)
        try Self.write(plaintext, directory.path + "/plain")
        // age encrypts to the key uploader keygen made; uploader decrypt opens it.
        _ = try await Self.tool("age", ["-r", publicKey, "-o", directory.path + "/theirs.age", directory.path + "/plain"])
        let decrypt = try await Program.run("uploader", ["decrypt", "-i", key, "-o", directory.path + "/out", directory.path + "/theirs.age"])
        #expect(decrypt.status == 0 && decrypt.output.isEmpty, "\(decrypt.output)")
        #expect(try Self.read(directory.path + "/out") == plaintext)
        // uploader encrypt; age -d -i with the same key file.
        let encrypt = try await Program.run("uploader", ["encrypt", "-r", publicKey, "-o", directory.path + "/ours.age", directory.path + "/plain"])
        #expect(encrypt.status == 0, "\(encrypt.output)")
        let result = try await Self.tool("age", ["-d", "-i", key, "-o", directory.path + "/out2", directory.path + "/ours.age"])
        #expect(result.status == 0, "\(result.output)")
        #expect(try Self.read(directory.path + "/out2") == plaintext)
    }

    @Test("uploader decrypt: a wrong key or a damaged file is one line, exit 1, and no output file")
    func uploaderDecryptFailures() async throws {
        let directory = try TemporaryDirectory("age")
        defer { directory.remove() }
        let identity = AgeX25519Identity.generate()
        let other = AgeX25519Identity.generate()
        try Self.write(Array(AgeFiles.keygenFile(other, created: Date()).utf8), directory.path + "/other.txt")
        try Self.write(Array(AgeFiles.keygenFile(identity, created: Date()).utf8), directory.path + "/key.txt")
        let file = try Self.encrypt(Self.random(300_000), to: [.x25519(identity.recipient)])
        try Self.write(file, directory.path + "/file.age")
        try Self.write(Array(file.dropLast(100)), directory.path + "/truncated.age")
        var damaged = file
        damaged[damaged.count - 70_000] ^= 0x20
        try Self.write(damaged, directory.path + "/damaged.age")
        let cases = [("other.txt", "file.age", "none of the 1 identities"), ("key.txt", "truncated.age", "failed authentication"),
                     ("key.txt", "damaged.age", "chunk 3 of the age payload failed authentication")]
        for (key, input, message) in cases {
            let out = directory.path + "/out-\(input)"
            let result = try await Program.run("uploader", ["decrypt", "-i", directory.path + "/" + key, "-o", out, directory.path + "/" + input])
            #expect(result.status == 1, "\(input): \(result.output)")
            #expect(result.output.hasPrefix("error: ") && result.output.contains(message) && !result.output.contains("\n"), "\(input): \(result.output)")
            #expect(!result.output.contains(identity.secretKeyString) && !result.output.contains(other.secretKeyString))
            #expect(try POSIXFile.status(path: out) == nil, "\(input): an output file was left")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { !$0.contains("partial") })
    }
}
