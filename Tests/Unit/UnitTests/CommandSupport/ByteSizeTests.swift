import CommandSupport
import Testing

@Suite("command-line values")
struct ByteSizeTests {
    @Test("sizes on the command line")
    func byteSizes() {
        #expect(ByteSize(argument: "16MiB")?.bytes == 16 << 20)
        #expect(ByteSize(argument: "256M")?.bytes == 256 << 20)
        #expect(ByteSize(argument: "1.5GiB")?.bytes == 3 << 29)
        #expect(ByteSize(argument: "1000")?.bytes == 1000)
        #expect(ByteSize(argument: "10 parsecs") == nil)
        #expect(ByteSize(argument: "-5") == nil)
    }
}
