import Foundation
import Testing
@testable import SourceReading

@Suite struct SourceWalkerTests {
    /// A tree with the awkward cases: nesting, unicode, spaces, a newline, a long path, an empty file, a name that
    /// is not UTF-8, sorting traps ("a-c" sorts before "a/…" byte-wise), and special files.
    func makeTree(_ dir: TemporaryDirectory) throws {
        try dir.write("top.txt", "top")
        try dir.write("a/b.txt", "b")
        try dir.write("a-c.txt", "a-c")
        try dir.write("a/deep/er/still/file.bin", [1, 2, 3])
        try dir.write("ünïcödé/日本語 ファイル.txt", "こんにちは")
        try dir.write("with space/name with  spaces.txt", "s")
        try dir.write("new\nline.txt", "newline")
        try dir.write("empty", [])
        let longDirectory = String(repeating: "d", count: 200) + "/" + String(repeating: "e", count: 200)
        try dir.write(longDirectory + "/" + String(repeating: "f", count: 250) + ".txt", "long")
        try dir.write("skipme/inner.txt", "x")
        try dir.write("junk.tmp", "x")
        try dir.write("a/more.tmp", "x")
        // A Latin-1 name: not valid UTF-8.
        var raw = Array((dir.path + "/").utf8) + [0x63, 0x61, 0x66, 0xE9, 0x2E, 0x74, 0x78, 0x74]
        raw.append(0)
        let fd = raw.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        #expect(fd >= 0)
        close(fd)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link-to-top"), withDestinationPath: "top.txt")
        try FileManager.default.createSymbolicLink(atPath: dir.file("dirlink"), withDestinationPath: "a")
        #expect(mkfifo(dir.file("a/fifo"), 0o644) == 0)
    }

    @Test func walksInByteOrderAndReportsEverything() async throws {
        let dir = try TemporaryDirectory()
        try makeTree(dir)
        let walker = SourceWalker(root: RawPath(dir.path), configuration: .init(excludes: [try ExcludePattern("*.tmp"), try ExcludePattern("skipme/")]))
        let (entries, summary) = try await walker.collect()

        var files: [SourceFile] = []
        var skipped: [SkippedEntry] = []
        var excluded: [(RawPath, Bool)] = []
        var order: [RawPath] = []
        for entry in entries {
            switch entry {
            case .file(let file): files.append(file); order.append(file.relativePath)
            case .directory(let directory): order.append(directory.relativePath)
            case .skipped(let entry): skipped.append(entry); order.append(entry.relativePath)
            case .excluded(let path, let isDirectory): excluded.append((path, isDirectory)); order.append(path)
            case .gitIgnored, .gitRulesUnreadable, .gitRepository: Issue.record("git handling that was not asked for: \(entry)")
            }
        }
        // Deterministic byte-wise order of the full relative paths.
        #expect(order == order.sorted())
        #expect(Set(files.map(\.relativePath)).count == files.count)
        #expect(order.first == "a" && order[1] == "a-c.txt" && order[2] == "a/b.txt")

        let paths = Set(files.map(\.relativePath.string))
        #expect(paths.contains("top.txt"))
        #expect(paths.contains("a/b.txt"))
        #expect(paths.contains("a-c.txt"))
        #expect(paths.contains("a/deep/er/still/file.bin"))
        #expect(paths.contains("ünïcödé/日本語 ファイル.txt"))
        #expect(paths.contains("with space/name with  spaces.txt"))
        #expect(paths.contains("new\nline.txt"))
        #expect(paths.contains("empty"))
        #expect(files.contains { $0.relativePath.bytes.count > 600 })
        let latin1 = try #require(files.first { !$0.relativePath.isValidUTF8 })
        #expect(latin1.relativePath.bytes == [0x63, 0x61, 0x66, 0xE9, 0x2E, 0x74, 0x78, 0x74])
        #expect(!paths.contains("junk.tmp") && !paths.contains("a/more.tmp") && !paths.contains("skipme/inner.txt"))

        let empty = try #require(files.first { $0.relativePath == "empty" })
        #expect(empty.size == 0)
        let bin = try #require(files.first { $0.relativePath == "a/deep/er/still/file.bin" })
        #expect(bin.size == 3)
        #expect(bin.mode & 0o777 == 0o644 || bin.mode & 0o777 == 0o664)
        #expect(abs(bin.modificationTime.timeIntervalSinceNow) < 600)
        // absolutePath opens the same bytes, even for the non-UTF-8 name and the long path.
        for file in files {
            let (size, _) = try await ChunkedFileReader(path: file.absolutePath).sha256()
            #expect(size == file.size, "\(file.relativePath)")
        }

        // Nothing silently dropped.
        let reasons = Dictionary(uniqueKeysWithValues: skipped.map { ($0.relativePath.string, $0.reason) })
        #expect(reasons["link-to-top"] == .symlink(target: "top.txt"))
        #expect(reasons["dirlink"] == .symlink(target: "a"))
        #expect(reasons["a/fifo"] == .fifo)
        #expect(excluded.contains { $0.0 == "junk.tmp" && !$0.1 })
        #expect(excluded.contains { $0.0 == "a/more.tmp" && !$0.1 })
        #expect(excluded.contains { $0.0 == "skipme" && $0.1 })
        #expect(summary.files == files.count)
        #expect(summary.excludedFiles == 2)
        #expect(summary.excludedDirectories == 1)
        #expect(summary.skipped == 3)
        #expect(summary.bytes == files.reduce(0) { $0 + $1.size })
    }

    @Test func socketsAndDevicesAreSkippedWithAReason() async throws {
        let dir = try TemporaryDirectory()
        try dir.write("plain", "x")
        // A unix socket: bind creates the file.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let socketPath = Array(dir.file("sock").utf8)
        try #require(socketPath.count < 100)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var expectDevice = false
        if isRoot {
            // /dev/null's device numbers (1, 3): a character device.
            expectDevice = mknod(dir.file("null-device"), mode_t(0o020644), dev_t(0x103)) == 0
        }
        let (entries, _) = try await SourceWalker(root: RawPath(dir.path)).collect()
        let skipped = entries.compactMap { if case .skipped(let entry) = $0 { entry } else { nil } }
        #expect(skipped.contains { $0.relativePath == "sock" && $0.reason == .socket })
        if expectDevice {
            #expect(skipped.contains { $0.relativePath == "null-device" && $0.reason == .characterDevice })
        }
        #expect(entries.contains { if case .file(let file) = $0 { file.relativePath == "plain" } else { false } })
    }

    @Test(.enabled(if: !isRoot, "root opens every directory regardless of its mode"))
    func unreadableDirectoryIsReportedWithErrno() async throws {
        let dir = try TemporaryDirectory()
        try dir.write("locked/secret.txt", "x")
        try dir.write("open.txt", "x")
        #expect(chmod(dir.file("locked"), 0) == 0)
        let (entries, summary) = try await SourceWalker(root: RawPath(dir.path)).collect()
        let skipped = entries.compactMap { if case .skipped(let entry) = $0 { entry } else { nil } }
        #expect(skipped.contains { $0.relativePath == "locked" && $0.reason == .unreadableDirectory(errno: EACCES, message: "Permission denied") })
        #expect(summary.files == 1)
    }

    @Test func missingRootThrowsNamingThePath() async throws {
        let dir = try TemporaryDirectory()
        let missing = dir.file("does-not-exist")
        await #expect {
            try await SourceWalker(root: RawPath(missing)).collect()
        } throws: { error in
            let error = error as? IngestError
            return error?.code == .cannotOpen && error?.path == missing && error?.description.contains("No such file or directory") == true
        }
    }

    @Test func rawPathOrderIsByteWise() {
        let paths: [RawPath] = ["b", "a/b", "a-c", "é", "Z"]
        #expect(paths.sorted().map(\.string) == ["Z", "a-c", "a/b", "b", "é"])
    }
}

@Suite("directory prefetch: warms what the walk enters, and only that")
struct DirectoryPrefetchTests {
    @Test("lists every directory the walk enters (not excluded ones, not through symlinks), then its readers return")
    func listsWhatTheWalkEnters() async throws {
        let dir = try TemporaryDirectory()
        try SourceWalkerTests().makeTree(dir)
        for index in 0..<40 { try dir.write("wide/\(index % 7)/n\(index)/f.txt", "x") }
        let configuration = SourceWalkerConfiguration(excludes: [try ExcludePattern("*.tmp"), try ExcludePattern("skipme/")])
        let (entries, _) = try await SourceWalker(root: RawPath(dir.path), configuration: configuration).collect()
        let entered = entries.filter { if case .directory = $0 { true } else { false } }.count + 1  // and the root
        for threads in [1, 3, 8] {
            let prefetch = DirectoryPrefetch(root: RawPath(dir.path), configuration: configuration, threads: threads)
            #expect(prefetch.waitUntilFinished() == entered, "\(threads) readers")
        }
        // With the exclusion gone, skipme/ is listed too.
        let all = DirectoryPrefetch(root: RawPath(dir.path), configuration: .init(), threads: 4)
        #expect(all.waitUntilFinished() == entered + 1)
    }

    @Test("stop() ends the readers early on a large tree; a missing root lists nothing")
    func stopsEarly() throws {
        let dir = try TemporaryDirectory()
        for index in 0..<3_000 { try FileManager.default.createDirectory(atPath: dir.file("d\(index % 50)/e\(index)"), withIntermediateDirectories: true) }
        let prefetch = DirectoryPrefetch(root: RawPath(dir.path), configuration: .init(), threads: 2)
        prefetch.stop()
        #expect(prefetch.waitUntilFinished() < 3_051)
        #expect(DirectoryPrefetch(root: RawPath(dir.path + "/nope"), configuration: .init()).waitUntilFinished() == 0)
    }
}
