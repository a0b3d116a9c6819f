import Foundation
import SystemIO
import Testing
import TestSupport

/// What each built program links, checked on the binaries themselves: the module graph in Package.swift is only
/// worth something if the programs really leave out what they do not need (docs/architecture.md).
@Suite("What the built programs link")
struct LinkageTests {
    /// The shared libraries `ldd` lists for a built program.
    func sharedLibraries(_ program: String) async throws -> String {
        let result = try await Subprocess.run("/usr/bin/ldd", [TestEnvironment.productsDirectory + "/" + program])
        try #require(result.status == 0, "ldd \(program): \(result.output)")
        return result.output
    }

    /// Whether the program's symbol table holds code of a Swift module (its mangled names start `$s<length><module>`).
    func containsModule(_ program: String, _ module: String) async throws -> Bool {
        let result = try await Subprocess.run("/usr/bin/nm", [TestEnvironment.productsDirectory + "/" + program])
        try #require(result.status == 0, "nm \(program) failed")
        return result.output.contains("$s\(module.utf8.count)\(module)")
    }

    @Test("the archiver and the uploader do not link libav; the transcoder does", arguments: ["archiver", "uploader", "status-server"])
    func noLibAV(_ program: String) async throws {
        #expect(!(try await sharedLibraries(program)).contains("libav"), "\(program) links libav")
        #expect(try await !containsModule(program, "Media"), "\(program) contains the Media module")
    }

    @Test("the transcoder links libav (so the check above can fail)")
    func transcoderLinksLibAV() async throws {
        #expect(try await sharedLibraries("transcoder").contains("libavcodec"))
        #expect(try await containsModule("transcoder", "Media"))
    }

    @Test("the workers do not contain Hummingbird; the status server does", arguments: ["archiver", "transcoder", "uploader"])
    func noHummingbird(_ program: String) async throws {
        #expect(try await !containsModule(program, "Hummingbird"), "\(program) contains Hummingbird")
        #expect(try await containsModule("status-server", "Hummingbird"))
    }

    @Test("no program loads libxml2 (FoundationXML) or libarchive at start: the uploader opens libarchive for an ISO image only",
          arguments: ["uploader", "archiver", "transcoder", "status-server", "pipeline"])
    func nothingLoadedForEveryStart(_ program: String) async throws {
        let libraries = try await sharedLibraries(program)
        #expect(!libraries.contains("FoundationXML"), "\(program) links FoundationXML: \(libraries)")
        // libavformat needs libxml2 itself (its DASH reader): the transcoder's, not ours.
        if !libraries.contains("libavformat") { #expect(!libraries.contains("libxml2"), "\(program) links libxml2: \(libraries)") }
        #expect(!libraries.contains("libarchive"), "\(program) links libarchive: \(libraries)")
    }
}
