// MARK: Directories

extension UDFParser {
    /// Lists the tree under the root directory, depth first with an explicit stack (no recursion to overflow).
    func walk(root: (length: UInt32, block: UInt32, partition: UInt16)) throws -> [UDFFile] {
        var files: [UDFFile] = []
        var visitedDirectories: Set<UInt64> = [Self.key(root.partition, root.block)]
        var stack: [(path: RawPath, partition: UInt16, block: UInt32)] = [(RawPath(bytes: []), root.partition, root.block)]
        while let directory = stack.popLast() {
            let entry = try entry(partition: directory.partition, block: directory.block)
            guard entry.fileType == 4 else { throw refuse("\(directory.path.bytes.isEmpty ? "the root" : directory.path.string) is listed as a directory but its entry is of type \(entry.fileType)") }
            guard entry.size <= Self.maximumDirectoryBytes else { throw refuse("a directory of \(entry.size) bytes") }
            let data = try read(entry.pieces, limit: Self.maximumDirectoryBytes)
            var names = Set<RawPath>()
            var offset = 0
            while offset < data.count {
                guard data.count - offset >= 38 else { throw refuse("a file identifier descriptor in \(directory.path.string) is cut short") }
                let implementationUseLength = Int(Self.u16(data, offset + 36)), nameLength = Int(data[offset + 19])
                let length = (38 + implementationUseLength + nameLength + 3) / 4 * 4
                guard length <= data.count - offset || 38 + implementationUseLength + nameLength <= data.count - offset else {
                    throw refuse("a file identifier descriptor in \(directory.path.string) runs past the directory's end")
                }
                let descriptorEnd = min(offset + length, data.count)
                let identifier = try Descriptor(Array(data[offset..<descriptorEnd]), expecting: [257], tagLocation: nil, parser: self)
                offset = descriptorEnd
                let characteristics = try identifier.u8(18)
                if characteristics & 0x0C != 0 { continue }  // deleted (4) or the parent entry (8)
                let nameBytes = try identifier.slice(38 + implementationUseLength, nameLength)
                guard let name = Self.decodeCS0(nameBytes), !name.isEmpty, name != ".", name != "..",
                      !name.utf8.contains(UInt8(ascii: "/")), !name.utf8.contains(0) else {
                    throw refuse("a name in \(directory.path.bytes.isEmpty ? "the root directory" : directory.path.string) is not a valid OSTA CS0 file name")
                }
                let path = directory.path.appending(RawPath(name))
                guard names.insert(RawPath(name)).inserted else { throw refuse("\(path.string) appears twice") }
                let icb = try identifier.longAD(at: 20)
                let child = try self.entry(partition: icb.partition, block: icb.block)
                let isDirectory = characteristics & 0x02 != 0
                guard isDirectory == (child.fileType == 4) else { throw refuse("\(path.string): directory flag and entry type \(child.fileType) disagree") }
                guard files.count < Self.maximumEntries else { throw refuse("more than \(Self.maximumEntries) entries") }
                let permissions = Self.posixPermissions(child.permissions)
                let kind: UDFFile.Kind
                switch child.fileType {
                case 4:
                    guard visitedDirectories.insert(Self.key(icb.partition, icb.block)).inserted else {
                        throw refuse("\(path.string) loops back to a directory already listed")
                    }
                    stack.append((path, icb.partition, icb.block))
                    kind = .directory
                case 5, 249:  // a byte sequence; 249 is UDF's real-time file, also plain bytes
                    kind = .file
                case 12:
                    guard child.size <= Self.maximumSymlinkBytes else { throw refuse("\(path.string): a symbolic link of \(child.size) bytes") }
                    kind = .symlink(target: try symlinkTarget(read(child.pieces, limit: Self.maximumSymlinkBytes), path: path))
                case 6, 7, 9, 10:
                    let type: UInt32 = [6: 0o060000, 7: 0o020000, 9: 0o010000, 10: 0o140000][child.fileType] ?? 0
                    kind = .other(mode: type | permissions)
                default:
                    throw refuse("\(path.string): file type \(child.fileType) is not supported")
                }
                let typeBits: UInt32 = switch kind {
                case .file: 0o100000
                case .directory: 0o040000
                case .symlink: 0o120000
                case .other(let mode): mode & 0o170000
                }
                files.append(UDFFile(
                    path: path, kind: kind, size: kind == .file ? child.size : 0, modificationTime: child.modificationTime,
                    mode: typeBits | permissions, entry: Self.key(icb.partition, icb.block), pieces: kind == .file ? child.pieces : []))
            }
        }
        return files
    }

    /// The whole content of a small object (a directory, a symlink), at most `limit` bytes.
    private func read(_ pieces: [UDFPiece], limit: Int64) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for piece in pieces {
            guard Int64(bytes.count) + piece.length <= limit else { throw refuse("an object of more than \(limit) bytes") }
            switch piece {
            case .recorded(let offset, let length):
                guard offset + length <= imageSize else { throw refuse("data at byte \(offset) lies beyond the end of the image: truncated image") }
                bytes += try readAt(offset, Int(length))
            case .zeros(let length): bytes += [UInt8](repeating: 0, count: Int(length))
            case .embedded(let data): bytes += data
            }
        }
        return bytes
    }

    /// A symbolic link's target from its path components (ECMA-167 4/14.16).
    private func symlinkTarget(_ data: [UInt8], path: RawPath) throws -> RawPath {
        var parts: [String] = []
        var offset = 0
        var absolute = false
        while offset + 4 <= data.count {
            let type = data[offset], length = Int(data[offset + 1])
            guard offset + 4 + length <= data.count else { throw refuse("\(path.string): a symbolic link's path is cut short") }
            let identifier = data[(offset + 4)..<(offset + 4 + length)]
            offset += 4 + length
            switch type {
            case 1, 2: absolute = true; parts = []
            case 3: parts.append("..")
            case 4: parts.append(".")
            case 5:
                guard let name = Self.decodeCS0(identifier) else { throw refuse("\(path.string): a symbolic link's target is not OSTA CS0") }
                parts.append(name)
            default: throw refuse("\(path.string): path component type \(type) in a symbolic link")
            }
        }
        return RawPath((absolute ? "/" : "") + parts.joined(separator: "/"))
    }
}
