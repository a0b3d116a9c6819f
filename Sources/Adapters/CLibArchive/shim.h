// libarchive (Debian/Ubuntu: libarchive-dev) for the Ingest module's ISO reader. The status codes
// (ARCHIVE_OK, ARCHIVE_EOF, ...) are integer-literal #defines and import into Swift as they are.
#ifndef PERSONAL_BACKUP_CLIBARCHIVE_SHIM_H
#define PERSONAL_BACKUP_CLIBARCHIVE_SHIM_H

#include <archive.h>
#include <archive_entry.h>

#endif
