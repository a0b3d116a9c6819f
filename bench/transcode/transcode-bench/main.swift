// transcode-bench INPUT OUTPUT [PROFILE] [--verify]
//
// Transcodes one file with the Media module (the transcoder's code path) and prints the report as key=value lines,
// for bench/transcode/run to compare with the ffmpeg CLI.
import Media

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

var arguments = Array(CommandLine.arguments.dropFirst())
let verify = arguments.contains("--verify")
arguments.removeAll { $0 == "--verify" }
guard arguments.count == 2 || arguments.count == 3 else {
    printError("usage: transcode-bench INPUT OUTPUT [h265|h264|av1] [--verify]")
    exit(2)
}

// Like `ffmpeg -loglevel error` in bench/transcode/run.
LibAV.logLevel = .error

do {
    let profile = try TranscodeProfile.named(arguments.count == 3 ? arguments[2] : "h265")
    let report = try Transcoder.transcode(
        input: arguments[0], output: arguments[1], profile: profile,
        metadata: ["original_filename": String(arguments[0].split(separator: "/").last ?? ""), "source_label": "bench"],
        timeLimit: .seconds(3600))
    let seconds = Double(report.elapsed.components.seconds) + Double(report.elapsed.components.attoseconds) / 1e18
    print("elapsed_seconds=\(seconds)")
    print("video_codec=\(report.videoCodec)")
    print("audio_codecs=\(report.audioCodecs.joined(separator: ","))")
    print("frames=\(report.frameCount)")
    print("duration=\(report.duration)")
    print("size=\(report.width)x\(report.height) sar=\(report.sampleAspectRatio) dar=\(report.displayAspectRatio)")
    print("deinterlaced=\(report.deinterlaced) source_field_order=\(report.sourceFieldOrder.rawValue)")
    print("input_bytes=\(report.inputSize) output_bytes=\(report.outputSize)")
    for (key, value) in report.settings.sorted(by: { $0.key < $1.key }) { print("setting.\(key)=\(value)") }
    for line in report.damage { print("damage=\(line)") }
    for line in report.notes { print("note=\(line)") }
    if verify {
        let verification = try MediaProbe.verify(output: arguments[1], against: report)
        for check in verification.checks {
            print("verify.\(check.kind.rawValue)=source \(check.sourceDuration) output \(check.outputDuration) tolerance \(check.tolerance)")
        }
        print("verified=true")
    }
} catch {
    printError("transcode-bench: \(error)")
    exit(1)
}
