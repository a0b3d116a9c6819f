import AgeEncryption
import ArgumentParser
import CommandSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PipelineCore
import SystemIO

/// `uploader keygen`: an age X25519 key pair in age-keygen's format.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an age X25519 key pair, written exactly as age-keygen writes it (readable by age -i).",
        discussion: """
            The file holds the secret key: with -o it is created with mode 0600 and never overwrites an existing file. \
            The public key (age1…) is printed to standard error when the output is not a terminal, as age-keygen does.
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the key to this new file instead of standard output.", valueName: "file"))
    var output: String?

    func run() throws {
        let identity = AgeX25519Identity.generate()
        let text = Array(AgeFiles.keygenFile(identity, created: Date()).utf8)
        let fd: Int32
        if let output {
            do {
                try POSIXFile.createSecretFile(output, contents: text)  // 0600, never over an existing file, synced
            } catch let error as FileIOError where error.code == EEXIST {
                CommandRunner.printToStandardError("error: \(output) exists; not overwriting a key file")
                throw ExitCode(1)
            }
            fd = -1
        } else {
            fd = STDOUT_FILENO
            try text.withUnsafeBytes { try POSIXFile.writeAll(fd: fd, $0, path: nil) }
        }
        if fd < 0 || isatty(fd) == 0 { CommandRunner.printToStandardError("Public key: \(identity.recipient)") }
    }
}

/// `uploader encrypt`: a file to age X25519 recipients.
struct EncryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract: "Encrypt a file (or standard input) to age X25519 recipients, as age -r does.",
        discussion: "With -o the output appears only when complete (written to a temporary file, then renamed).")

    @Option(name: [.short, .customLong("recipient")], help: ArgumentHelp("A recipient (age1…); may be repeated.", valueName: "age1…"))
    var recipients: [String] = []

    @Option(name: [.customShort("R"), .customLong("recipients-file")], help: ArgumentHelp("A file of recipients, one per line (age -R's format); may be repeated.", valueName: "file"))
    var recipientsFiles: [String] = []

    @OptionGroup var files: StreamFiles

    func validate() throws {
        guard !recipients.isEmpty || !recipientsFiles.isEmpty else { throw ValidationError("say whom to encrypt to: -r age1… or -R FILE") }
    }

    func run() throws {
        try withAgeErrors {
            var keys = try recipients.map { try AgeX25519Recipient(parsing: $0) }
            for file in recipientsFiles { keys += try AgeFiles.parseRecipients(try readKeyFile(file)) }
            var encryptor = try AgeEncryptor(recipients: keys.map { .x25519($0) })
            try transform(files, start: encryptor.header) { bytes, out in
                if let bytes { encryptor.encrypt(bytes, into: &out) } else { encryptor.finish(into: &out) }
            }
        }
    }
}

/// `uploader decrypt`: an age file with X25519 identities.
struct DecryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Decrypt an age file (or standard input) with age identity files, as age -d -i does.",
        discussion: """
            Only authenticated plaintext is written. With -o the output appears only when the whole file decrypted \
            (written to a temporary file, then renamed): a wrong key, a damaged or truncated file leaves nothing. To \
            standard output, what was written before an error stays written. Exit codes: 0 decrypted, 1 it could not be.
            """)

    @Option(name: [.short, .customLong("identity")], help: ArgumentHelp("An identity file (age-keygen's format); may be repeated.", valueName: "file"))
    var identities: [String] = []

    @OptionGroup var files: StreamFiles

    func validate() throws {
        guard !identities.isEmpty else { throw ValidationError("say which key opens the file: -i FILE") }
    }

    func run() throws {
        try withAgeErrors {
            var keys: [AgeIdentity] = []
            for file in identities { keys += try AgeFiles.parseIdentities(try readKeyFile(file)).map { .x25519($0) } }
            var decryptor = AgeDecryptor(identities: keys)
            try transform(files, start: []) { bytes, out in
                if let bytes { try decryptor.decrypt(bytes, into: &out) } else { try decryptor.finish(into: &out) }
            }
        }
    }
}

/// Where `encrypt` and `decrypt` read and write.
struct StreamFiles: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("Write here instead of standard output.", valueName: "file"))
    var output: String?

    @Argument(help: ArgumentHelp("The file to read (default: standard input).", valueName: "input"))
    var input: String?
}

/// Turns an `AgeError` or a file error into one line on standard error and exit code 1.
private func withAgeErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as AgeError {
        CommandRunner.printToStandardError("error: \(error)")
        throw ExitCode(1)
    } catch let error as FileIOError {
        CommandRunner.printToStandardError("error: \(error)")
        throw ExitCode(1)
    }
}

/// A key file's text; an error names the file, never its content.
private func readKeyFile(_ path: String) throws -> String {
    let fd = try POSIXFile.openForReading(path)
    defer { POSIXFile.closeFile(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let count = try readSome(fd, into: &buffer, path: path)
        if count == 0 { break }
        bytes += buffer[..<count]
        guard bytes.count <= 16 << 20 else { throw AgeError(.badKey, "\(path) is larger than 16 MiB: not a key file") }
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func readSome(_ fd: Int32, into buffer: inout [UInt8], path: String?) throws -> Int {
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count >= 0 { return count }
        guard errno == EINTR else { throw FileIOError(operation: "read", path: path, errno: errno) }
    }
}

/// Streams the input (a path, or standard input) through `step` into the output: `step` gets each block read, then
/// nil at the end, and appends what to write. Memory stays at one read block and what it yields.
private func transform(_ files: StreamFiles, start: [UInt8], _ step: (UnsafeRawBufferPointer?, inout [UInt8]) throws -> Void) throws {
    HeapTuning.keepFreedMemory()  // 64-128 KiB freed per chunk would otherwise be returned to the kernel each time
    let input = files.input
    let inputFD = try input.map { try POSIXFile.openForReading($0) } ?? STDIN_FILENO
    defer { if input != nil { POSIXFile.closeFile(inputFD) } }
    let sink = try OutputFile(path: files.output)
    do {
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var out = start
        out.reserveCapacity(block.count + (64 << 10))
        while true {
            let count = try readSome(inputFD, into: &block, path: input)
            if count == 0 { break }
            try block.withUnsafeBytes { try step(UnsafeRawBufferPointer(rebasing: $0[..<count]), &out) }
            try sink.write(out)
            out.removeAll(keepingCapacity: true)
        }
        try step(nil, &out)
        try sink.write(out)
        try sink.commit()
    } catch {
        sink.abandon()
        throw error
    }
}

/// Where the result goes: standard output, a device or pipe as it is (/dev/null in benchmarks), or a regular file
/// through a temporary file beside it that is renamed into place only when everything was written.
private struct OutputFile {
    let fd: Int32
    let path: String?
    let temporary: String?

    init(path: String?) throws {
        guard let path else {
            (fd, self.path, temporary) = (STDOUT_FILENO, nil, nil)
            return
        }
        self.path = path
        if let info = try POSIXFile.status(path: path), !POSIXFile.isRegularFile(info) {
            fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileIOError(operation: "open", path: path, errno: errno) }
            temporary = nil
            return
        }
        let directory = POSIXFile.parentDirectory(of: path)
        let name = String(path.split(separator: "/").last ?? Substring(path))
        let temporary = "\(directory)/.\(name).partial-\(getpid())"
        fd = try POSIXFile.createExclusive(temporary, mode: 0o666)
        self.temporary = temporary
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try POSIXFile.writeAll(fd: fd, $0, path: temporary ?? path) }
    }

    /// No fsync: like age, a decrypt that a crash interrupted is simply run again; the rename only keeps a failed
    /// run from leaving a partial file.
    func commit() throws {
        guard let path else { return }
        POSIXFile.closeFile(fd)
        if let temporary { try POSIXFile.renameFile(temporary, path) }
    }

    func abandon() {
        guard path != nil else { return }
        POSIXFile.closeFile(fd)
        if let temporary { try? POSIXFile.removeFile(temporary) }
    }
}
