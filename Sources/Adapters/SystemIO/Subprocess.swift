#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Runs helper programs (initdb, pg_ctl) without blocking a Swift concurrency thread.
///
/// Not Foundation's `Process`: on Linux it learns of the child's exit through a descriptor the child inherits,
/// and `pg_ctl start` leaves a daemon holding every inherited descriptor, so the exit is never seen.
/// posix_spawn + waitpid on NIO's thread pool has no such coupling.
public enum Subprocess {
    public struct Result: Sendable {
        public let status: Int32
        /// Combined stdout and stderr, trimmed. Ordering between the two streams is kept (one file).
        public let output: String
    }

    /// Runs `executable` to completion. `environment` replaces the inherited one when given.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> Result {
        try await spawn(executable, arguments, environment: environment).wait()
    }

    /// A started child process; `wait()` reaps it and returns its status and output.
    public struct Running: Sendable {
        public let processID: pid_t
        let executable: String
        let outputPath: String

        /// Sends a signal (SIGKILL, SIGTERM, SIGINT…) to the child.
        public func signal(_ number: Int32) {
            kill(processID, number)
        }

        /// The output so far (the child writes it to a file as it goes).
        public func outputSoFar() -> String {
            (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        }

        /// Waits for the child to exit without holding a thread: `waitpid(WNOHANG)` between short sleeps (1 ms,
        /// doubling to 50 ms). A blocking `waitpid` would hold one of the few threads of NIO's blocking pool (as
        /// many as cores) for the child's whole life, and with two children running, every file read and write
        /// of the process queued behind them. Once the task is cancelled it waits on the pool as before, since a
        /// child is always reaped.
        public func wait() async throws -> Result {
            defer { try? FileManager.default.removeItem(atPath: outputPath) }
            var pause = Duration.milliseconds(1)
            var waitStatus: Int32 = 0
            while true {
                if try Self.reap(processID, executable, options: WNOHANG, into: &waitStatus) { break }
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    let processID = processID
                    let executable = executable
                    waitStatus = try await SystemIO.blocking { () throws -> Int32 in
                        var status: Int32 = 0
                        _ = try Self.reap(processID, executable, options: 0, into: &status)
                        return status
                    }
                    break
                }
                pause = min(pause * 2, .milliseconds(50))
            }
            // WIFEXITED/WEXITSTATUS are macros: exit code in bits 8-15, signal in bits 0-6.
            let signal = waitStatus & 0x7f
            let status = signal == 0 ? (waitStatus >> 8) & 0xff : 128 + signal
            let output = outputSoFar()
            return Result(status: status, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        /// `waitpid` for one child; false while it runs (with `WNOHANG`), true once reaped.
        static func reap(_ processID: pid_t, _ executable: String, options: Int32, into waitStatus: inout Int32) throws -> Bool {
            while true {
                let reaped = waitpid(processID, &waitStatus, options)
                if reaped == processID { return true }
                if reaped == 0 { return false }
                guard errno == EINTR else {
                    throw SubprocessError("waiting for \(executable) failed: \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    /// Starts `executable` with stdin from /dev/null and stdout+stderr to a temporary file.
    public static func spawn(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Running {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("personal-backup-\(UUID().uuidString).out").path
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }
        var attributes = posix_spawnattr_t()
        startsLikeFromAShell(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var processID = pid_t()
        let spawnError =
            if let envp { posix_spawn(&processID, executable, &fileActions, &attributes, argv, envp) }
            else { posix_spawn(&processID, executable, &fileActions, &attributes, argv, environ) }
        guard spawnError == 0 else {
            throw SubprocessError("cannot run \(executable): \(String(cString: strerror(spawnError)))")
        }
        return Running(processID: processID, executable: executable, outputPath: outputPath)
    }
}

/// Initialises `attributes` so that the child starts as a shell would start it: no signal blocked, the usual ones
/// at their default action. Without this it inherits the calling thread's mask (NIO and Dispatch threads block most
/// signals) and any ignored SIGTERM (ServiceLifecycle's), and a helper stopped with SIGTERM never ends.
func startsLikeFromAShell(_ attributes: inout posix_spawnattr_t) {
    posix_spawnattr_init(&attributes)
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
}

/// A helper program that could not be started or waited for.
public struct SubprocessError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
