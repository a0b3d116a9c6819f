import ArgumentParser
import Media

/// `transcoder libav`: which libav this machine has and whether it can do what the transcoder needs.
/// Exits 1 when a library has an incompatible major version or the default profile's parts are missing,
/// so a broken container image is caught before it claims any work.
struct LibAVCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "libav", abstract: "Show the linked libav versions and the encoders and filters available.")

    func run() throws {
        var problems: [String] = []
        for library in LibAV.libraries() {
            print("\(library.name) \(library.runtimeVersion) (built against \(library.compiledVersion))")
            if !library.isCompatible { problems.append("\(library.name) \(library.runtimeVersion) has another major version than \(library.compiledVersion)") }
        }
        let requiredByDefault: Set<String> = ["libx265", "aac", "bwdif", "scale", "aresample"]
        for capability in LibAV.capabilities() {
            print("\(capability.isAvailable ? "yes" : "no ") \(capability.kind.rawValue) \(capability.name): \(capability.purpose)")
            if !capability.isAvailable, requiredByDefault.contains(capability.name) {
                problems.append("\(capability.kind.rawValue) \(capability.name) is missing")
            }
        }
        guard problems.isEmpty else {
            throw ValidationFailure(message: "libav cannot run the default profile: " + problems.joined(separator: "; "))
        }
    }
}

struct ValidationFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
