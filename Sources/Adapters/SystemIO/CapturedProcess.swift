#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A helper program run to completion with its standard output kept as bytes (`git ls-files -z` lists names that
/// need not be UTF-8) and its standard error as text. Blocks the calling thread: call it from code that already
/// runs through ``blocking(_:)``.
public struct CapturedProcess: Sendable {
    public let status: Int32
    public let output: [UInt8]
    /// Standard error, trimmed (what the program said went wrong).
    public let errorText: String

    /// Runs `program` (looked up in `PATH` when it has no `/`) with byte-exact arguments and exactly `environment`;
    /// stdin is /dev/null. Throws only when the program cannot be started.
    public static func run(_ program: String, _ arguments: [[UInt8]], environment: [String: String]) throws -> CapturedProcess {
        let directory = FileManager.default.temporaryDirectory.path
        let outputPath = directory + "/personal-backup-\(UUID().uuidString).stdout"
        let errorPath = directory + "/personal-backup-\(UUID().uuidString).stderr"
        defer {
            unlink(outputPath)
            unlink(errorPath)
        }
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&fileActions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let argv: [UnsafeMutablePointer<CChar>?] = ([Array(program.utf8)] + arguments).map(Self.cString) + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var attributes = posix_spawnattr_t()
        startsLikeFromAShell(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var processID = pid_t()
        let spawnError = posix_spawnp(&processID, program, &fileActions, &attributes, argv, envp)
        guard spawnError == 0 else {
            throw SubprocessError("cannot run \(program): \(String(cString: strerror(spawnError)))")
        }
        var waitStatus: Int32 = 0
        while waitpid(processID, &waitStatus, 0) < 0 {
            guard errno == EINTR else { throw SubprocessError("waiting for \(program) failed: \(String(cString: strerror(errno)))") }
        }
        let signal = waitStatus & 0x7f
        let status = signal == 0 ? (waitStatus >> 8) & 0xff : 128 + signal
        let output = (try? Data(contentsOf: URL(fileURLWithPath: outputPath))).map { [UInt8]($0) } ?? []
        let errorText = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return CapturedProcess(status: status, output: output, errorText: errorText.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func cString(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar>? {
        guard let pointer = malloc(bytes.count + 1)?.assumingMemoryBound(to: CChar.self) else { return nil }
        for (index, byte) in bytes.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[bytes.count] = 0
        return pointer
    }
}
