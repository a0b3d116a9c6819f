#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PipelineCore
import SystemIO

/// The drive `uploader discs` reads from: a CD/DVD drive (`/dev/sr0`), or, standing in for one, a loop device or a
/// regular image file. All calls block; run them on the thread pool.
///
/// - A CD/DVD drive holds a disc when `ioctl(CDROM_DRIVE_STATUS)` says `CDS_DISC_OK`; it is ejected with
///   `ioctl(CDROMEJECT)`.
/// - Another block device (a loop device) holds a disc while its size is not zero (a detached loop device has none).
/// - A regular file holds a disc while it exists and is not empty; a new disc is a new file (another inode or size),
///   which is what a test's eject command makes by renaming the next image into place.
public struct DiscDrive: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// What the drive holds. `token` tells discs apart where the drive can (files, loop devices); a CD drive cannot,
    /// so the loop waits for it to be empty between two discs.
    public enum Presence: Sendable, Hashable {
        case disc(token: String)
        case noDisc(String)
    }

    // linux/cdrom.h
    static let cdromDriveStatus: UInt = 0x5326
    static let cdromEject: UInt = 0x5309
    static let cdslCurrent: Int32 = Int32.max
    static let cdsDiscOK: Int32 = 4

    /// Whether this path can stand for a drive at all: a block device or a regular file, or nothing yet (a file
    /// that is not there is a drive without a disc). Anything else (a directory, a mounted disc) is refused.
    public func check() throws(IngestError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw IngestError.system(.cannotOpen, path: path, errno: errno, "cannot inspect the drive")
        }
        let type = info.st_mode & S_IFMT
        guard type == S_IFBLK || type == S_IFREG else {
            throw IngestError(.invalidArgument, path: path, "neither a disc drive (block device) nor an image file standing in for one; give the device, e.g. /dev/sr0, not where a disc is mounted")
        }
    }

    public func presence() -> Presence {
        var info = stat()
        guard stat(path, &info) == 0 else { return .noDisc(errno == ENOENT ? "no disc (nothing at \(path))" : "drive not readable: \(String(cString: strerror(errno)))") }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            guard info.st_size > 0 else { return .noDisc("no disc (\(path) is empty)") }
            // Not the modification time: a truncation shows its new size before its new time, so a read that
            // failed at the new end would see two "discs" in one.
            return .disc(token: "file:\(info.st_dev):\(info.st_ino):\(info.st_size)")
        case S_IFBLK:
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return .noDisc("no disc (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            let status = ioctl(fd, Self.cdromDriveStatus, Self.cdslCurrent)
            if status >= 0 {
                return status == Self.cdsDiscOK ? .disc(token: "cdrom") : .noDisc(Self.statusText(status))
            }
            // Not a CD drive (a loop device standing in for one): a disc is in while the device has a size.
            let size = lseek(fd, 0, SEEK_END)
            return size > 0 ? .disc(token: "block:\(info.st_rdev):\(size)") : .noDisc("no disc (the device is empty)")
        default:
            return .noDisc("not a disc drive")
        }
    }

    /// Opens the tray (`CDROMEJECT`). A regular file has nothing to eject (false); a block device that is no CD
    /// drive cannot be ejected this way (an error that says to use an eject command).
    public func eject() throws(IngestError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        guard info.st_mode & S_IFMT == S_IFBLK else { return false }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw IngestError.system(.cannotOpen, path: path, errno: errno, "cannot open the drive to eject the disc") }
        defer { close(fd) }
        guard ioctl(fd, Self.cdromEject, 0) == 0 else {
            throw IngestError.system(.readFailed, path: path, errno: errno, "the drive did not eject the disc (CDROMEJECT; for a loop device give --eject-command)")
        }
        return true
    }

    static func statusText(_ status: Int32) -> String {
        switch status {
        case 1: "no disc"
        case 2: "tray open"
        case 3: "drive not ready"
        default: "no disc information"
        }
    }
}

/// What the volume descriptors at the start of a disc say: enough to name it and to recognise it again.
public struct DiscVolume: Sendable, Hashable {
    /// The ISO 9660 volume identifier as recorded (trimmed), nil when the disc has none.
    public let identifier: String?
    /// The volume's creation date as `YYYY-MM-DD`, when recorded.
    public let created: String?
    /// SHA-256 (hex) of the size and of sectors 16-31 (the volume descriptors, with their time stamps): the same
    /// disc read again gives the same value, two discs burned apart do not.
    public let identity: String
    /// The size in bytes.
    public let size: Int64

    /// Reads sectors 16-31. Throws when the disc cannot be read there (blank, unreadable, shorter than that).
    public static func read(_ path: String) async throws -> DiscVolume {
        try await blocking {
            let file = try DescriptorFile(opening: RawPath(path))
            defer { file.close() }
            let size = try file.currentSize()
            let start: Int64 = 16 * 2048
            var bytes = [UInt8](repeating: 0, count: 16 * 2048)
            var got = 0
            while got < bytes.count {
                let count = try bytes.withUnsafeMutableBytes { buffer in
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]), at: start + Int64(got))
                }
                guard count > 0 else { break }
                got += count
            }
            guard got >= 2048 else {
                throw IngestError(.archiveFailed, path: path, "no volume descriptors: the disc is blank, or shorter than 34 KiB")
            }
            return parse(Array(bytes[..<got]), size: size)
        }
    }

    /// Finds the Primary Volume Descriptor (type 1, "CD001") among the sectors read.
    static func parse(_ sectors: [UInt8], size: Int64) -> DiscVolume {
        var identifier: String?
        var created: String?
        var offset = 0
        while offset + 2048 <= sectors.count {
            let sector = sectors[offset..<(offset + 2048)]
            if sector[offset] == 1, Array(sector[(offset + 1)..<(offset + 6)]) == Array("CD001".utf8) {
                let id = String(decoding: sector[(offset + 40)..<(offset + 72)], as: UTF8.self).trimmingCharacters(in: .whitespaces.union(.controlCharacters))
                identifier = id.isEmpty ? nil : id
                let date = Array(sector[(offset + 813)..<(offset + 821)])
                if date.allSatisfy({ (0x30...0x39).contains($0) }), date != Array("00000000".utf8) {
                    let text = String(decoding: date, as: UTF8.self)
                    created = "\(text.prefix(4))-\(text.dropFirst(4).prefix(2))-\(text.suffix(2))"
                }
                break
            }
            if sector[offset] == 255 { break }  // the set terminator
            offset += 2048
        }
        var hasher = SHA256Stream()
        hasher.update(Array(String(size).utf8))
        hasher.update(sectors)
        return DiscVolume(identifier: identifier, created: created, identity: hasher.finalize(), size: size)
    }
}
