#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The part of libarchive that ``ISOImageReader`` uses, loaded with `dlopen` when an ISO image is first opened.
/// Linked instead, libarchive and what it pulls in (libxml2, ICU's data, lzma, bz2, nettle, …) are loaded by every
/// start of every program that contains this module: 15–20 ms from a cold cache, where most runs read no ISO image.
struct LibArchive: @unchecked Sendable {
    typealias Archive = OpaquePointer
    typealias Entry = OpaquePointer

    // Status codes from archive.h.
    static let ok: Int32 = 0
    static let endOfArchive: Int32 = 1
    static let warning: Int32 = -20

    let readNew: @convention(c) () -> Archive?
    let readFree: @convention(c) (Archive?) -> Int32
    let readSupportFormatISO9660: @convention(c) (Archive?) -> Int32
    let readOpenFilename: @convention(c) (Archive?, UnsafePointer<CChar>?, Int) -> Int32
    let readNextHeader: @convention(c) (Archive?, UnsafeMutablePointer<Entry?>?) -> Int32
    let readData: @convention(c) (Archive?, UnsafeMutableRawPointer?, Int) -> Int
    let errorString: @convention(c) (Archive?) -> UnsafePointer<CChar>?
    let errorNumber: @convention(c) (Archive?) -> Int32
    let entryPathname: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entryPathnameUTF8: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entryHardlink: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entrySymlink: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entryMode: @convention(c) (Entry?) -> UInt32
    let entrySize: @convention(c) (Entry?) -> Int64
    let entryModificationTimeIsSet: @convention(c) (Entry?) -> Int32
    let entryModificationTime: @convention(c) (Entry?) -> Int
    let entryModificationTimeNanoseconds: @convention(c) (Entry?) -> Int

    /// Loaded once per process; the same failure every time when it cannot be.
    static let shared: Result<LibArchive, IngestError> = {
        do throws(IngestError) { return .success(try load()) } catch { return .failure(error) }
    }()

    /// The loaded library, or a one-line error saying what is missing.
    static func loaded(for path: RawPath) throws -> LibArchive {
        switch shared {
        case .success(let library): return library
        case .failure(let error): throw IngestError(.archiveFailed, path: path.string, error.message)
        }
    }

    private static let soname = "libarchive.so.13"

    private static func load() throws(IngestError) -> LibArchive {
        guard let handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            throw IngestError(.archiveFailed, path: soname, "cannot load libarchive to read ISO images (Debian: apt install libarchive13): \(reason)")
        }
        func symbol<T>(_ name: String, as type: T.Type) throws(IngestError) -> T {
            guard let address = dlsym(handle, name) else {
                throw IngestError(.archiveFailed, path: soname, "libarchive has no \(name): an older version than 3.2?")
            }
            return unsafeBitCast(address, to: type)
        }
        return LibArchive(
            readNew: try symbol("archive_read_new", as: (@convention(c) () -> Archive?).self),
            readFree: try symbol("archive_read_free", as: (@convention(c) (Archive?) -> Int32).self),
            readSupportFormatISO9660: try symbol("archive_read_support_format_iso9660", as: (@convention(c) (Archive?) -> Int32).self),
            readOpenFilename: try symbol("archive_read_open_filename", as: (@convention(c) (Archive?, UnsafePointer<CChar>?, Int) -> Int32).self),
            readNextHeader: try symbol("archive_read_next_header", as: (@convention(c) (Archive?, UnsafeMutablePointer<Entry?>?) -> Int32).self),
            readData: try symbol("archive_read_data", as: (@convention(c) (Archive?, UnsafeMutableRawPointer?, Int) -> Int).self),
            errorString: try symbol("archive_error_string", as: (@convention(c) (Archive?) -> UnsafePointer<CChar>?).self),
            errorNumber: try symbol("archive_errno", as: (@convention(c) (Archive?) -> Int32).self),
            entryPathname: try symbol("archive_entry_pathname", as: (@convention(c) (Entry?) -> UnsafePointer<CChar>?).self),
            entryPathnameUTF8: try symbol("archive_entry_pathname_utf8", as: (@convention(c) (Entry?) -> UnsafePointer<CChar>?).self),
            entryHardlink: try symbol("archive_entry_hardlink", as: (@convention(c) (Entry?) -> UnsafePointer<CChar>?).self),
            entrySymlink: try symbol("archive_entry_symlink", as: (@convention(c) (Entry?) -> UnsafePointer<CChar>?).self),
            entryMode: try symbol("archive_entry_mode", as: (@convention(c) (Entry?) -> UInt32).self),
            entrySize: try symbol("archive_entry_size", as: (@convention(c) (Entry?) -> Int64).self),
            entryModificationTimeIsSet: try symbol("archive_entry_mtime_is_set", as: (@convention(c) (Entry?) -> Int32).self),
            entryModificationTime: try symbol("archive_entry_mtime", as: (@convention(c) (Entry?) -> Int).self),
            entryModificationTimeNanoseconds: try symbol("archive_entry_mtime_nsec", as: (@convention(c) (Entry?) -> Int).self))
    }
}
