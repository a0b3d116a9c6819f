import AgeEncryption
import ArgumentParser
import ArchiveFormat
import Foundation
import SystemIO
import Upload

/// `uploader upload`, `uploader image` and `pipeline run`: how to encrypt the source (age). Secrets never come as flag values: a passphrase is
/// asked on the terminal (twice) or read from a file.
public struct EncryptionOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("encrypt-to"), help: ArgumentHelp(
        "Encrypt the source's files to this age recipient (age1…) before they leave this machine (repeatable).", valueName: "recipient"))
    var recipients: [String] = []

    @Option(name: .customLong("encrypt-to-file"), help: ArgumentHelp(
        "Encrypt to the recipients in this file, one per line (the format of 'age -R').", valueName: "file"))
    var recipientsFile: String?

    @Flag(help: "Encrypt with a passphrase, asked twice on the terminal.")
    var passphrase = false

    @Option(help: ArgumentHelp("Encrypt with the passphrase in this file (its first line).", valueName: "file"))
    var passphraseFile: String?

    @Option(name: .customLong("identity"), help: ArgumentHelp(
        "An age identity file, only to recover an encrypted source's dedupe key on a machine that did not write it (repeatable).",
        valueName: "file"))
    var identityFiles: [String] = []

    public func validate() throws {
        let recipientMode = !recipients.isEmpty || recipientsFile != nil
        let passphraseMode = passphrase || passphraseFile != nil
        if recipientMode && passphraseMode { throw ValidationError("--encrypt-to and --passphrase cannot be combined: choose one") }
        if passphrase && passphraseFile != nil { throw ValidationError("--passphrase and --passphrase-file cannot be combined") }
    }

    /// The settings for the run (nil request: not asked to encrypt; an encrypted source then refuses the upload).
    public func settings(keyDirectory: String) throws -> UploadEncryptionSettings {
        var request: EncryptionRequest?
        if !recipients.isEmpty || recipientsFile != nil {
            var parsed: [AgeX25519Recipient] = []
            for text in recipients {
                do { parsed.append(try AgeX25519Recipient(parsing: text)) } catch {
                    throw ValidationError("--encrypt-to \(text.prefix(70)): not an age X25519 recipient (age1…): \(error)")
                }
            }
            if let recipientsFile {
                let text = try SecretInput.readFile(recipientsFile, what: "--encrypt-to-file")
                do { parsed += try AgeFiles.parseRecipients(text) } catch {
                    throw ValidationError("--encrypt-to-file \(recipientsFile): \(error)")
                }
            }
            guard !parsed.isEmpty else { throw ValidationError("--encrypt-to-file \(recipientsFile ?? ""): no recipient in it") }
            request = .recipients(parsed)
        } else if let passphraseFile {
            request = .passphrase(try SecretInput.passphrase(fromFile: passphraseFile))
        } else if passphrase {
            request = .passphrase(try SecretInput.askNewPassphrase())
        }
        // Encrypting frees and allocates 64-128 KiB per chunk: keep that memory instead of faulting it in again.
        if request != nil { HeapTuning.keepFreedMemory() }
        return UploadEncryptionSettings(
            request: request, identities: try IdentityOptions.loadIdentities(identityFiles), keyStore: DedupeKeyStore(directory: keyDirectory))
    }
}

/// `restore`, `verify`, `rebuild-catalog`: what opens encrypted sources.
public struct IdentityOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("identity"), help: ArgumentHelp(
        "An age identity file (age-keygen's format) that opens encrypted sources (repeatable).", valueName: "file"))
    var identityFiles: [String] = []

    @Flag(help: "Ask on the terminal for the passphrase of sources encrypted with one.")
    var passphrase = false

    @Option(help: ArgumentHelp("Read the passphrase of sources encrypted with one from this file (its first line).", valueName: "file"))
    var passphraseFile: String?

    public func keys() throws -> SourceKeyring {
        var passphraseText: String?
        if let passphraseFile {
            passphraseText = try SecretInput.passphrase(fromFile: passphraseFile)
        } else if passphrase {
            passphraseText = try SecretInput.askPassphrase("Passphrase: ")
        }
        let keyring = SourceKeyring(identities: try Self.loadIdentities(identityFiles), passphrase: passphraseText)
        if !keyring.isEmpty { HeapTuning.keepFreedMemory() }  // decrypting allocates and frees per chunk, as above
        return keyring
    }

    public static func loadIdentities(_ files: [String]) throws -> [AgeX25519Identity] {
        var identities: [AgeX25519Identity] = []
        for file in files {
            let text = try SecretInput.readFile(file, what: "--identity")
            do {
                let parsed = try AgeFiles.parseIdentities(text)
                guard !parsed.isEmpty else { throw ValidationError("--identity \(file): no AGE-SECRET-KEY-1… line in it") }
                identities += parsed
            } catch let error as ValidationError {
                throw error
            } catch {
                // The parser's message never quotes the key material.
                throw ValidationError("--identity \(file): \(error)")
            }
        }
        return identities
    }
}

/// Reading secrets: from a file, or from the terminal without echo (never from a flag's value).
public enum SecretInput {
    public static func readFile(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(what) \(path): cannot be read")
        }
        return String(decoding: data, as: UTF8.self)
    }

    public static func passphrase(fromFile path: String) throws -> String {
        let text = try readFile(path, what: "--passphrase-file")
        let line = String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        guard !line.isEmpty else { throw ValidationError("--passphrase-file \(path): its first line is empty") }
        return line
    }

    public static func askNewPassphrase() throws -> String {
        let first = try askPassphrase("Passphrase for this source: ")
        guard !first.isEmpty else { throw ValidationError("the passphrase must not be empty") }
        let second = try askPassphrase("The same passphrase again: ")
        guard first == second else { throw ValidationError("the two passphrases differ; nothing was uploaded") }
        return first
    }

    /// Asks on the controlling terminal with echo off, like `age -p` and ssh.
    public static func askPassphrase(_ prompt: String) throws -> String {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { throw ValidationError("no terminal to ask the passphrase on: use --passphrase-file") }
        defer { close(tty) }
        _ = prompt.withCString { write(tty, $0, strlen($0)) }
        var saved = termios()
        let haveTerminal = tcgetattr(tty, &saved) == 0
        if haveTerminal {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(tty, TCSANOW, &quiet)  // not TCSAFLUSH: that would drop what was typed ahead
        }
        defer {
            if haveTerminal { tcsetattr(tty, TCSANOW, &saved) }
            _ = write(tty, "\n", 1)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(tty, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
    }
}
