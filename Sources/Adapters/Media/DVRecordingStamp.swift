/// The recording date and time a DV camcorder writes into every frame (VAUX packs 0x62 "recording date" and 0x63
/// "recording time", BCD), which the DV decoder and demuxer do not hand on frame by frame. A tape captured as one
/// file holds every recording of the tape; where the stamp does not run on from one frame to the next, a new
/// recording starts.
public struct DVRecordingStamp: Sendable, Hashable, CustomStringConvertible {
    public var year: Int, month: Int, day: Int
    public var hour: Int, minute: Int, second: Int

    /// "2004-06-12 14:03:22".
    public var description: String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(year)-\(two(month))-\(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
    }

    var secondsOfDay: Int { hour * 3600 + minute * 60 + second }

    /// Whether `next` can follow this stamp within one recording: the same day, at most `slack` seconds later.
    func isContinued(by next: DVRecordingStamp, slack: Int = 2) -> Bool {
        guard (year, month, day) == (next.year, next.month, next.day) else { return false }
        let step = next.secondsOfDay - secondsOfDay
        return step >= 0 && step <= slack
    }

    /// The stamp of one DV frame (the VAUX blocks of its first DIF sequence), or nil when it carries none.
    public static func read(frame bytes: UnsafeRawBufferPointer) -> DVRecordingStamp? {
        guard bytes.count >= 150 * 80 else { return nil }
        var date: (Int, Int, Int)?
        var time: (Int, Int, Int)?
        for block in 3...5 {
            let base = block * 80
            guard bytes[base] >> 5 == 2 else { continue }  // a VAUX block
            for pack in 0..<15 {
                let at = base + 3 + pack * 5
                switch bytes[at] {
                case 0x62:
                    guard let day = bcd(bytes[at + 2] & 0x3F), let month = bcd(bytes[at + 3] & 0x1F), let year = bcd(bytes[at + 4]) else { continue }
                    date = (year < 70 ? 2000 + year : 1900 + year, month, day)
                case 0x63:
                    guard let second = bcd(bytes[at + 2] & 0x7F), let minute = bcd(bytes[at + 3] & 0x7F), let hour = bcd(bytes[at + 4] & 0x3F) else { continue }
                    time = (hour, minute, second)
                default:
                    continue
                }
            }
        }
        guard let date, let time, (1...12).contains(date.1), (1...31).contains(date.2), time.0 < 24, time.1 < 60, time.2 < 60 else { return nil }
        return DVRecordingStamp(year: date.0, month: date.1, day: date.2, hour: time.0, minute: time.1, second: time.2)
    }

    private static func bcd(_ value: UInt8) -> Int? {
        let high = Int(value >> 4), low = Int(value & 0x0F)
        return high < 10 && low < 10 ? high * 10 + low : nil
    }
}
