import Crypto

/// Where an encryptor's random bytes come from: the system's CSPRNG, or a caller's secret seed expanded with
/// HKDF-SHA-256 under a label per use (so no two uses share bytes).
struct AgeRandomness: Sendable {
    static let system = AgeRandomness(seed: nil)

    let seed: [UInt8]?

    var seeded: Bool { seed != nil }

    func bytes(_ count: Int, label: String) -> [UInt8] {
        guard let seed else { return randomBytes(count) }
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: seed), salt: [UInt8](), info: Array("personal-backup age randomness: \(label)".utf8),
            outputByteCount: count
        ).withUnsafeBytes { Array($0) }
    }
}
