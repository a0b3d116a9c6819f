#!/usr/bin/env python3
"""A read-only passthrough FUSE file system that returns EIO where told: the tests' damaged disc.

    eio_fs.py SOURCE MOUNTPOINT FAULTS.json

mirrors SOURCE at MOUNTPOINT (in the foreground, until `fusermount -u MOUNTPOINT`). FAULTS.json is read again
whenever it changes, so a test can clear the faults without remounting. Paths are relative to SOURCE, with a
leading "/":

    {"open": ["/a.bin"],                  open() of the file fails
     "read_after": {"/b.bin": 4096},      reads at or past byte N fail (the first N bytes read fine)
     "opendir": ["/dir"],                 opendir() fails
     "readdir_after": {"/dir2": 3},       listing fails after K entries (not counting "." and ".."): cut short
     "getattr": ["/dir3/c.txt"]}          stat() of the entry fails (it is listed, but cannot be inspected)

Needs fusepy (PyPI) and libfuse2; mounting needs /dev/fuse (root mounts directly, others via fusermount).
Caching is off (attribute, entry and negative timeouts 0, direct I/O) so every fault reaches the program.
"""
import errno
import json
import os
import sys

from fuse import FUSE, FuseOSError, Operations


class Faults:
    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.data = {}

    def current(self):
        try:
            status = os.stat(self.path)
            stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self.stamp:
            self.stamp = stamp
            if stamp is None:
                self.data = {}
            else:
                with open(self.path) as f:
                    self.data = json.load(f)
        return self.data

    def has(self, kind, path):
        return path in self.current().get(kind, [])

    def limit(self, kind, path):
        return self.current().get(kind, {}).get(path)


class EIOFileSystem(Operations):
    use_ns = True

    def __init__(self, source, faults):
        self.source = os.path.realpath(source)
        self.faults = faults

    def _real(self, path):
        return self.source + path

    def _fail_if(self, kind, path):
        if self.faults.has(kind, path):
            raise FuseOSError(errno.EIO)

    def getattr(self, path, fh=None):
        self._fail_if("getattr", path)
        status = os.lstat(self._real(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_ino")
        attributes = {key: getattr(status, key) for key in keys if key != "st_ino"}
        for key in ("st_atime", "st_mtime", "st_ctime"):
            attributes[key] = attributes.pop(key + "_ns")
        return attributes

    def readlink(self, path):
        return os.readlink(self._real(path))

    def opendir(self, path):
        self._fail_if("opendir", path)
        return 0

    def list_from(self, path, offset):
        """Entries of a directory from position `offset` on, as (position + 1, name); EIO where it is cut short."""
        names = [".", ".."] + sorted(os.listdir(self._real(path)))
        limit = self.faults.limit("readdir_after", path)
        end = len(names) if limit is None else min(len(names), 2 + limit)
        if offset >= end and end < len(names):
            raise FuseOSError(errno.EIO)
        return [(index + 1, names[index]) for index in range(offset, end)]

    def open(self, path, flags):
        self._fail_if("open", path)
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise FuseOSError(errno.EROFS)
        return os.open(self._real(path), os.O_RDONLY)

    def read(self, path, size, offset, fh):
        limit = self.faults.limit("read_after", path)
        if limit is not None:
            if offset >= limit:
                raise FuseOSError(errno.EIO)
            size = min(size, limit - offset)
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        os.close(fh)
        return 0

    def statfs(self, path):
        status = os.statvfs(self._real(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {key: getattr(status, key) for key in keys}


class OffsetFUSE(FUSE):
    """fusepy's readdir does not pass the offset on; this one does, so a listing can fail part of the way
    through: the first getdents() gets the entries before the fault, the next one gets EIO."""

    def readdir(self, path, buf, filler, offset, fip):
        for position, name in self.operations("list_from", self._decode_optional_path(path), offset):
            if filler(buf, name.encode(self.encoding), None, position) != 0:
                break
        return 0


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: eio_fs.py SOURCE MOUNTPOINT FAULTS.json")
    source, mountpoint, faults = sys.argv[1:]
    OffsetFUSE(EIOFileSystem(source, Faults(faults)), mountpoint, foreground=True, ro=True, nothreads=True,
               direct_io=True, attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="eio_fs")


if __name__ == "__main__":
    main()
