// An SQLite VFS that gathers the writes of a WAL file: SQLite writes each
// frame of a commit as two pwrite calls (the 24-byte frame header, then the
// page), so a commit of 40 pages costs 80 system calls. This VFS keeps
// consecutive WAL writes in memory and hands them to the default VFS in
// writes of up to 128 KiB before anything else touches that file: a read, a
// sync, a truncate, a size query, a file control or close. Every other file, and
// every other operation, goes straight to the default VFS.
//
// Why that is safe (SQLite 3 wal.c): a commit writes its frames, then syncs
// the WAL (synchronous=FULL, which SqliteConnection sets), and only then
// publishes them in the wal-index, so no reader, in this process or
// another, can look for a frame that is still in memory, and nothing is
// reported committed before it is on disk. Frames a transaction spills
// before its commit are read back only by the same file handle, which
// writes them out first. With synchronous below FULL a commit has no sync
// and this guarantee is gone: do not use the VFS then.
#pragma once

namespace turnkey::sql {

// Registers the VFS (once; not as the default) and returns its name for
// sqlite3_open_v2. The first call also makes the process-wide settings
// (sqlite3_config: no memory statistics), so it must come before anything
// else initializes SQLite. Thread-safe.
const char* WalBufferVfsName();

}  // namespace turnkey::sql
