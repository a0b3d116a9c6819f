import Testing
@testable import SourceReading
import PipelineCore

@Suite struct FileClassifierTests {
    func classify(_ bytes: [UInt8], _ name: String, size: Int64? = nil) -> Classification {
        FileClassifier.classify(head: bytes, fileName: name, fileSize: size)
    }

    func padded(_ prefix: [UInt8], to count: Int = 1024) -> [UInt8] { prefix + [UInt8](repeating: 0x11, count: max(0, count - prefix.count)) }

    @Test(arguments: [
        ([UInt8]([0x1F, 0x07, 0x00, 0xBF]) + [UInt8](repeating: 0, count: 76) + [0x3F, 0x07, 0x00], "tape.dv", "dv"),
        (Array("RIFF\u{10}\0\0\0AVI LIST".utf8), "clip.avi", "avi"),
        ([0x00, 0x00, 0x01, 0xBA, 0x44], "VTS_01_1.VOB", "mpeg-ps"),
        ([0x00, 0x00, 0x01, 0xBA, 0x44], "MOV001.MOD", "mpeg-ps"),
        ([0x00, 0x00, 0x01, 0xB3, 0x14], "raw.m2v", "mpeg-video"),
        ([0, 0, 0, 0x18] + Array("ftypmp42".utf8) + [0, 0, 0, 0], "x.mp4", "mp4"),
        ([0, 0, 0, 0x14] + Array("ftypqt  ".utf8) + [0, 0, 0, 0], "x.mov", "quicktime"),
        ([0, 0, 0, 0x14] + Array("ftyp3gp4".utf8) + [0, 0, 0, 0], "x.3gp", "3gp"),
        ([0, 0, 0, 0x08] + Array("wide".utf8) + [0, 0, 0, 0x10] + Array("mdat".utf8), "old.mov", "quicktime"),
        ([0, 0, 0, 0] + Array("mdat".utf8), "headerless.mov", "quicktime"),
        ([0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x88] + Array("matroska".utf8), "x.mkv", "matroska"),
        ([0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84] + Array("webm".utf8), "x.webm", "webm"),
        ([0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9], "x.wmv", "asf"),
        (Array("FLV".utf8) + [0x01, 0x05, 0, 0, 0, 9], "x.flv", "flv"),
        ([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10] + Array("JFIF".utf8), "cam.mjpg", "mjpeg"),
        ([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10] + Array("JFIF".utf8), "cam.avi", "mjpeg"),
    ] as [([UInt8], String, String)])
    func videoSignatures(bytes: [UInt8], name: String, format: String) {
        let result = classify(padded(bytes), name)
        #expect(result.kind == .video, "\(name): \(result)")
        #expect(result.format == format, "\(name): \(result)")
    }

    @Test func transportStreamsAt188And192() {
        var ts = [UInt8](repeating: 0xFF, count: 188 * 6)
        for packet in 0..<6 { ts[packet * 188] = 0x47 }
        #expect(classify(ts, "00001.MTS").format == "mpeg-ts")
        #expect(classify(ts, "whatever.bin").kind == .video, "content wins over the extension")
        var m2ts = [UInt8](repeating: 0xFF, count: 192 * 6)
        for packet in 0..<6 { m2ts[packet * 192 + 4] = 0x47 }
        #expect(classify(m2ts, "00001.m2ts").format == "m2ts")
        ts[188 * 3] = 0x00
        #expect(classify(ts, "broken.ts").kind == .regular, "a lost sync byte is not a transport stream")
        #expect(classify(Array("G is for TypeScript".utf8), "app.ts").kind == .regular)
    }

    @Test func contentWinsOverAMisleadingExtension() {
        let text = classify(Array("just some text, not a video\n".utf8), "holiday.avi")
        #expect(text.kind == .regular)
        #expect(text.note?.contains(".avi") == true)
        #expect(classify(padded([0x00, 0x00, 0x01, 0xBA]), "data.bin").kind == .video)
        #expect(classify(padded(Array("RIFF\u{10}\0\0\0AVI ".utf8)), "README.txt").kind == .video)
        #expect(classify(padded(Array("RIFF\u{10}\0\0\0WAVEfmt ".utf8)), "sound.avi").kind == .regular)
    }

    @Test func stillsAndAudioInVideoContainersAreRegular() {
        #expect(classify(padded([0xFF, 0xD8, 0xFF, 0xE1]), "IMG_0001.JPG").kind == .regular, "a JPEG photo is not MJPEG")
        #expect(classify(padded([0, 0, 0, 0x18] + Array("ftypheic".utf8)), "IMG.HEIC").format == "heif-image")
        #expect(classify(padded([0, 0, 0, 0x18] + Array("ftypM4A ".utf8)), "song.m4a").kind == .regular)
        #expect(classify(padded([0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]), "song.wma").kind == .regular)
        #expect(classify(padded([0x1A, 0x45, 0xDF, 0xA3]), "song.mka").kind == .regular)
        #expect(classify(padded(Array("FLV".utf8) + [0x01, 0x04]), "audio.flv").format == "flv-audio")
    }

    @Test func implausibleAtomSizeIsNotQuickTime() {
        // "abcdfree…" would have atom size 0x61626364, far beyond a 100-byte file.
        #expect(classify(Array("abcdfree text that happens to say free".utf8), "notes.txt", size: 100).kind == .regular)
    }

    @Test func discImages() {
        var iso = [UInt8](repeating: 0, count: 40_000)
        iso[32768] = 1
        iso.replaceSubrange(32769..<32774, with: Array("CD001".utf8))
        #expect(classify(iso, "disc.iso").kind == .discImage)
        #expect(classify(iso, "disc.bin").format == "iso9660")
        var udf = [UInt8](repeating: 0, count: 40_000)
        udf.replaceSubrange(32769..<32774, with: Array("BEA01".utf8))
        udf.replaceSubrange((32769 + 2048)..<(32774 + 2048), with: Array("NSR02".utf8))
        #expect(classify(udf, "dvd.img").format == "udf")
        let short = classify([UInt8](repeating: 0, count: 4096), "tiny.iso")
        #expect(short.kind == .regular)
        #expect(short.note != nil)
    }

    @Test func emptyAndTinyFilesAreRegular() {
        #expect(classify([], "empty.mov").kind == .regular)
        #expect(classify([], "empty").format == "empty")
        #expect(classify([0x47], "x.ts").kind == .regular)
        #expect(classify([0x00, 0x00, 0x01], "x.mpg").kind == .regular)
    }
}
