// Extended attributes (<sys/xattr.h>), which the Glibc module does not export: the file:// object store keeps a
// plain object's size and SHA-256 on the object's own inode instead of in a sidecar file. The same three calls on
// Linux and Darwin (whose versions take a position and options).
#include <sys/types.h>
#include <sys/xattr.h>

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
