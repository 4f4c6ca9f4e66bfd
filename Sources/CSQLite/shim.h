// The system libsqlite3 (Debian: libsqlite3-dev), reached only through OverlayStores/SQLite.swift.
#include <sqlite3.h>
