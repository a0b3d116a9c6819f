// Extended attributes (<sys/xattr.h>), which the Glibc module does not export: the file:// object store keeps a
// plain object's size and SHA-256 on the object's own inode instead of in a sidecar file. The same three calls on
// Linux and Darwin (whose versions take a position and options). Also Linux's sync_file_range and syncfs, which
// Glibc's module does not export either. It is bound here under a name of our own (an asm label for the same symbol):
// including <fcntl.h> or redeclaring glibc's name in this module makes Swift see `struct stat` in two modules.
#include <sys/types.h>
#include <sys/xattr.h>
#if defined(__linux__) && defined(__LP64__)
extern int cxattr_sync_file_range(int fd, long offset, long count, unsigned int flags) __asm__("sync_file_range");
extern int cxattr_syncfs(int fd) __asm__("syncfs");
#else
#include <unistd.h>
#endif

/// Writes out and syncs everything of the file system holding `fd` (Linux's syncfs; elsewhere sync, which waits
/// less reliably); 0 or -1 with errno.
static inline int cxattr_sync_file_system(int fd) {
#if defined(__linux__) && defined(__LP64__)
    return cxattr_syncfs(fd);
#else
    (void)fd;
    sync();
    return 0;
#endif
}

/// Starts writing back the dirty pages of `length` bytes at `offset` of `fd` without waiting for them (Linux's
/// sync_file_range with SYNC_FILE_RANGE_WRITE); a no-op elsewhere. Not a durability call: an fsync still follows.
static inline int cxattr_start_writeback(int fd, long long offset, long long length) {
#if defined(__linux__) && defined(__LP64__)
    return cxattr_sync_file_range(fd, (long)offset, (long)length, 2 /* SYNC_FILE_RANGE_WRITE */);
#else
    (void)fd; (void)offset; (void)length;
    return 0;
#endif
}

/// Sets `name` on the open file `fd`; 0 or -1 with errno.
static inline int cxattr_fset(int fd, const char *name, const void *value, size_t size) {
#ifdef __APPLE__
    return fsetxattr(fd, name, value, size, 0, 0);
#else
    return fsetxattr(fd, name, value, size, 0);
#endif
}

/// Reads `name` of the open file `fd` into `value`; the value's length or -1 with errno.
static inline ssize_t cxattr_fget(int fd, const char *name, void *value, size_t size) {
#ifdef __APPLE__
    return fgetxattr(fd, name, value, size, 0, 0);
#else
    return fgetxattr(fd, name, value, size);
#endif
}

/// Reads `name` of the file at `path`, not following a symbolic link at its end; the length or -1 with errno.
static inline ssize_t cxattr_lget(const char *path, const char *name, void *value, size_t size) {
#ifdef __APPLE__
    return getxattr(path, name, value, size, 0, XATTR_NOFOLLOW);
#else
    return lgetxattr(path, name, value, size);
#endif
}
