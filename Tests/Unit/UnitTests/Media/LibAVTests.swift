import Media
import Testing

@Suite("libav through the CLibAV system library")
struct LibAVTests {
    @Test("the loaded libraries have the major versions the headers had")
    func versionsMatch() {
        let libraries = LibAV.libraries()
        #expect(libraries.map(\.name) == ["libavformat", "libavcodec", "libavfilter", "libavutil", "libswscale", "libswresample"])
        for library in libraries {
            #expect(library.isCompatible, "\(library.name): runtime \(library.runtimeVersion), headers \(library.compiledVersion)")
        }
    }

    @Test("error codes turn into av_strerror's text")
    func errorText() {
        // AVERROR_EOF is FFERRTAG('E','O','F',' ') negated.
        let endOfFile = -Int32(bitPattern: UInt32(0x45) | UInt32(0x4F) << 8 | UInt32(0x46) << 16 | UInt32(0x20) << 24)
        #expect(LibAV.errorText(endOfFile) == "End of file")
        #expect(LibAV.errorText(-2) == "No such file or directory")
    }

    @Test("the default profile's encoder and deinterlacer exist in this build")
    func defaultProfileAvailable() {
        let available = Set(LibAV.capabilities().filter(\.isAvailable).map(\.name))
        #expect(available.isSuperset(of: ["libx265", "aac", "bwdif"]))
    }
}
