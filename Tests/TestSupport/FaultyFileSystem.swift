import Catalog
import Foundation
import SystemIO

/// A damaged disc made of a real file system: scripts/lib/eio_fs.py (fusepy) mirrors a directory through FUSE and
/// returns EIO where `Faults` says. The programs under test see real failing system calls (open, read, opendir,
/// getdents part of the way through, stat), not a mock.
public struct FaultyFileSystem: Sendable {
    /// Where in the mirrored tree I/O fails. Paths are relative to the mirrored directory, with a leading "/".
    public struct Faults: Sendable, Encodable {
        /// open() of these files fails.
        public var open: [String] = []
        /// Reads at or past this byte fail (the bytes before it read fine): a scratch in the middle of a file.
        public var readAfter: [String: Int] = [:]
        /// opendir() of these directories fails.
        public var opendir: [String] = []
        /// Listing these directories fails after this many entries: a listing cut short.
        public var readdirAfter: [String: Int] = [:]
        /// stat() of these entries fails: listed, but they cannot be inspected.
        public var getattr: [String] = []

        public init(open: [String] = [], readAfter: [String: Int] = [:], opendir: [String] = [], readdirAfter: [String: Int] = [:], getattr: [String] = []) {
            self.open = open
            self.readAfter = readAfter
            self.opendir = opendir
            self.readdirAfter = readdirAfter
            self.getattr = getattr
        }

        enum CodingKeys: String, CodingKey {
            case open, opendir, getattr
            case readAfter = "read_after"
            case readdirAfter = "readdir_after"
        }
    }

    /// Tests that need it skip only when the machine has no FUSE device (CI and the dev machines have one).
    public static var isAvailable: Bool { FileManager.default.fileExists(atPath: "/dev/fuse") }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        + "/scripts/lib/eio_fs.py"

    /// The mirror of the source, where the faults happen.
    public let mountPoint: String
    let faultsPath: String

    /// Mounts a mirror of `source` with `faults`, runs `body`, and unmounts it (also when `body` throws).
    public static func with(mirroring source: String, faults: Faults, _ body: (FaultyFileSystem) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("fuse")
        defer { directory.remove() }
        let mountPoint = directory.path + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let file = FaultyFileSystem(mountPoint: mountPoint, faultsPath: directory.path + "/faults.json")
        try file.set(faults)
        let process = try Subprocess.spawn("/usr/bin/env", ["python3", script, source, mountPoint, file.faultsPath])
        do {
            try await waitUntilMounted(mountPoint, process: process)
            try await body(file)
        } catch {
            await unmount(mountPoint, process: process)
            throw error
        }
        await unmount(mountPoint, process: process)
    }

    /// Replaces the faults; the file system reads them again at its next operation (no remount).
    public func set(_ faults: Faults) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try encoder.encode(faults).write(to: URL(fileURLWithPath: faultsPath + ".new"))
        guard rename(faultsPath + ".new", faultsPath) == 0 else { throw TestEnvironment.Missing(variable: "a writable \(faultsPath)") }
    }

    /// Mounted once the mount point is on another device than its parent directory.
    private static func waitUntilMounted(_ mountPoint: String, process: Subprocess.Running) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            var point = stat(), parent = stat()
            if stat(mountPoint, &point) == 0, stat(mountPoint + "/..", &parent) == 0, point.st_dev != parent.st_dev { return }
            if kill(process.processID, 0) != 0 || waitpid(process.processID, nil, WNOHANG) == process.processID {
                throw MountFailed(message: "eio_fs.py exited before mounting: \(process.outputSoFar())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.signal(SIGTERM)
        throw MountFailed(message: "eio_fs.py did not mount \(mountPoint) within 15 s: \(process.outputSoFar())")
    }

    private static func unmount(_ mountPoint: String, process: Subprocess.Running) async {
        var result = try? await Subprocess.run("/usr/bin/env", ["fusermount", "-u", mountPoint])
        if result?.status != 0 {
            // Busy (a child of the test still has it open): detach it now, it goes once the last user closes it.
            result = try? await Subprocess.run("/usr/bin/env", ["fusermount", "-u", "-z", mountPoint])
        }
        if result?.status != 0 { process.signal(SIGKILL) }
        _ = try? await process.wait()
    }

    public struct MountFailed: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}
