import AgeEncryption
import Crypto
import Foundation
import PipelineCore
import Testing

/// One file of the C2SP age test vectors (Vectors/age-test-vectors, see the NOTICE there).
struct AgeVector: CustomStringConvertible {
    enum Skip: String { case armor, hybrid }

    let name: String
    let expect: String
    let payloadSHA256: String?
    let fileKey: String?
    let identities: [String]
    let passphrases: [String]
    let armored: Bool
    let compressed: Bool
    let body: [UInt8]

    var description: String { name }

    /// Features this project does not implement: ASCII armor and the ML-KEM hybrid (post-quantum) recipient.
    var skip: Skip? {
        if armored { return .armor }
        if identities.contains(where: { $0.hasPrefix("AGE-SECRET-KEY-PQ-") }) { return .hybrid }
        return nil
    }

    static let directory: URL = Bundle.module.url(forResource: "Vectors", withExtension: nil)!
        .appendingPathComponent("age-test-vectors/testdata", isDirectory: true)

    static func all() throws -> [AgeVector] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map { try AgeVector(name: $0) }
    }

    init(name: String) throws {
        self.name = name
        let bytes = [UInt8](try Data(contentsOf: Self.directory.appendingPathComponent(name)))
        var fields: [(String, String)] = []
        var index = 0
        while true {
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else { throw VectorError("\(name): no blank line") }
            let line = String(decoding: bytes[index..<end], as: UTF8.self)
            index = end + 1
            if line.isEmpty { break }
            guard let colon = line.range(of: ": ") else { throw VectorError("\(name): bad line \(line)") }
            fields.append((String(line[..<colon.lowerBound]), String(line[colon.upperBound...])))
        }
        func values(_ key: String) -> [String] { fields.filter { $0.0 == key }.map(\.1) }
        expect = values("expect").first ?? ""
        payloadSHA256 = values("payload").first
        fileKey = values("file key").first
        identities = values("identity")
        passphrases = values("passphrase")
        armored = values("armored").first == "yes"
        compressed = values("compressed").first == "zlib"
        let raw = Array(bytes[index...])
        body = compressed ? try Zlib.inflate(raw) : raw
    }

    struct Outcome {
        var plaintext: [UInt8] = []
        var error: AgeError?
        var fileKey: [UInt8]?
    }

    /// Decrypts with the vector's identities and passphrases, feeding the file in pieces of `split` bytes.
    func run(split: Int) throws -> Outcome {
        let identities = try identities.map { AgeIdentity.x25519(try AgeX25519Identity(parsing: $0)) } + passphrases.map { AgeIdentity.passphrase($0) }
        var decryptor = AgeDecryptor(identities: identities)
        var outcome = Outcome()
        do {
            var offset = 0
            while offset < body.count {
                let end = min(body.count, offset + split)
                try body[offset..<end].withUnsafeBytes { try decryptor.decrypt($0, into: &outcome.plaintext) }
                offset = end
            }
            try decryptor.finish(into: &outcome.plaintext)
        } catch let error as AgeError {
            outcome.error = error
        }
        outcome.fileKey = decryptor.fileKeyBytes
        return outcome
    }
}

@Suite("age test vectors (C2SP CCTV)")
struct AgeVectorTests {
    @Test("every vector: the expected result, or counted as skipped")
    func allVectors() throws {
        let vectors = try AgeVector.all()
        var passed: [String: Int] = [:]
        var skipped: [AgeVector.Skip: Int] = [:]
        for vector in vectors {
            if let skip = vector.skip {
                skipped[skip, default: 0] += 1
                continue
            }
            // Whole, and in odd pieces that cut chunks, tags and header lines anywhere (7-byte pieces only for
            // the small files, to keep the unit tests fast).
            for split in [Int.max, vector.body.count < 200_000 ? 7 : 4_099, 65_551] {
                let outcome = try vector.run(split: split)
                check(vector, outcome, split: split)
            }
            passed[vector.expect, default: 0] += 1
        }
        #expect(vectors.count == 143)
        #expect(skipped == [.armor: 33, .hybrid: 18], "skipped: \(skipped)")
        #expect(passed == ["success": 15, "header failure": 51, "HMAC failure": 1, "payload failure": 18, "no match": 7], "run: \(passed)")
        #expect(passed.values.reduce(0, +) + skipped.values.reduce(0, +) == vectors.count)
        // The compressed vectors (large payloads made compressible) are among those run.
        #expect(vectors.filter { $0.compressed && $0.skip == nil }.count == 19)
    }

    private func check(_ vector: AgeVector, _ outcome: AgeVector.Outcome, split: Int) {
        let where_ = "\(vector.name), pieces of \(split == Int.max ? "all" : String(split)) bytes"
        switch vector.expect {
        case "success":
            #expect(outcome.error == nil, "\(where_): \(outcome.error.map { "\($0.code): \($0)" } ?? "")")
        case "header failure":
            #expect(outcome.error?.isHeaderFailure == true, "\(where_): \(outcome.error.map { "\($0.code): \($0)" } ?? "no error")")
        case "HMAC failure":
            #expect(outcome.error?.code == .badHeaderMAC, "\(where_): \(outcome.error.map { "\($0.code): \($0)" } ?? "no error")")
        case "payload failure":
            #expect(outcome.error?.isPayloadFailure == true, "\(where_): \(outcome.error.map { "\($0.code): \($0)" } ?? "no error")")
        case "no match":
            #expect(outcome.error?.isNoMatch == true, "\(where_): \(outcome.error.map { "\($0.code): \($0)" } ?? "no error")")
        default:
            Issue.record("\(where_): unexpected expectation \(vector.expect)")
        }
        // Whatever plaintext was handed out, even before a failure, must be what the vector says.
        if let payload = vector.payloadSHA256 {
            #expect(SHA256.hash(data: outcome.plaintext).hexString == payload, "\(where_): payload hash")
        } else {
            #expect(outcome.plaintext.isEmpty, "\(where_): plaintext released though the vector expects none")
        }
        if ["success", "payload failure", "HMAC failure"].contains(vector.expect), let fileKey = vector.fileKey {
            #expect(outcome.fileKey?.hexString == fileKey, "\(where_): file key")
        }
    }
}
