#include "sql/sqlite_wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <new>
#include <string>

namespace turnkey::sql {

namespace {

constexpr char kVfsName[] = "turnkey-wal-buffer";
// Gathered WAL bytes are written out at this size even before a sync.
constexpr size_t kMaxGathered = 1 << 20;
// Most bytes handed to the default VFS in one xWrite: the Unix VFS masks a
// write's length to 17 bits (SQLite itself never writes more than a 64 KiB
// page at once) and reports SQLITE_FULL for anything it cut.
constexpr size_t kMaxWrite = 0x1ffff;
// What the buffer keeps between commits; larger ones are given back.
constexpr size_t kKeptCapacity = 256 << 10;

sqlite3_vfs* Parent(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

// Consecutive writes of one WAL file, not yet handed to the real file.
struct Gathered {
  std::string bytes;
  sqlite3_int64 offset = 0;  // of bytes[0]
};

// Our sqlite3_file; the default VFS's file object follows it in the same
// allocation (szOsFile covers both).
struct File {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
  Gathered* gathered;  // the WAL file only; owned
};

constexpr size_t kFileSize = (sizeof(File) + 15) & ~size_t{15};

File* Of(sqlite3_file* file) { return reinterpret_cast<File*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return Of(file)->real; }

int Flush(File* f) {
  Gathered* g = f->gathered;
  if (g == nullptr || g->bytes.empty()) {
    return SQLITE_OK;
  }
  int rc = SQLITE_OK;
  for (size_t done = 0; done < g->bytes.size() && rc == SQLITE_OK;) {
    const size_t n = std::min(kMaxWrite, g->bytes.size() - done);
    rc = f->real->pMethods->xWrite(f->real, g->bytes.data() + done, static_cast<int>(n),
                                   g->offset + static_cast<sqlite3_int64>(done));
    done += n;
  }
  g->bytes.clear();
  if (g->bytes.capacity() > kKeptCapacity) {
    g->bytes = std::string();
  }
  return rc;
}

// ---- File methods: the WAL's writes are gathered, and anything else done
// to it first writes out what was gathered. ----

int Close(sqlite3_file* file) {
  File* f = Of(file);
  int rc = Flush(f);
  const int closed = f->real->pMethods->xClose(f->real);
  delete f->gathered;
  f->gathered = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  if (int rc = Flush(Of(file)); rc != SQLITE_OK) {
    return rc;
  }
  return Real(file)->pMethods->xRead(Real(file), out, amount, offset);
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  File* f = Of(file);
  Gathered* g = f->gathered;
  if (g == nullptr) {
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  if (!g->bytes.empty() && offset != g->offset + static_cast<sqlite3_int64>(g->bytes.size())) {
    // Not an append (a frame rewritten, a new WAL from the start).
    if (int rc = Flush(f); rc != SQLITE_OK) {
      return rc;
    }
  }
  if (g->bytes.empty()) {
    g->offset = offset;
  }
  try {
    g->bytes.append(static_cast<const char*>(data), static_cast<size_t>(amount));
  } catch (const std::bad_alloc&) {
    if (int rc = Flush(f); rc != SQLITE_OK) {
      return rc;
    }
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  return g->bytes.size() >= kMaxGathered ? Flush(f) : SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = Flush(Of(file)); rc != SQLITE_OK) {
    return rc;
  }
  return Real(file)->pMethods->xTruncate(Real(file), size);
}

int Sync(sqlite3_file* file, int flags) {
  if (int rc = Flush(Of(file)); rc != SQLITE_OK) {
    return rc;
  }
  return Real(file)->pMethods->xSync(Real(file), flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = Flush(Of(file)); rc != SQLITE_OK) {
    return rc;
  }
  return Real(file)->pMethods->xFileSize(Real(file), size);
}

int Lock(sqlite3_file* file, int level) { return Real(file)->pMethods->xLock(Real(file), level); }

int Unlock(sqlite3_file* file, int level) {
  return Real(file)->pMethods->xUnlock(Real(file), level);
}

int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  if (int rc = Flush(Of(file)); rc != SQLITE_OK) {
    return rc;
  }
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}

int SectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }

int DeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}

int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}

int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
}

void ShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
}

int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  if (int rc = Flush(Of(file)); rc != SQLITE_OK) {
    return rc;
  }
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}

int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
}

// One table per io_methods version, so SQLite never calls a method the real
// file lacks.
constexpr sqlite3_io_methods MethodsOfVersion(int version) {
  return sqlite3_io_methods{version,
                            Close,
                            Read,
                            Write,
                            Truncate,
                            Sync,
                            FileSize,
                            Lock,
                            Unlock,
                            CheckReservedLock,
                            FileControl,
                            SectorSize,
                            DeviceCharacteristics,
                            version >= 2 ? ShmMap : nullptr,
                            version >= 2 ? ShmLock : nullptr,
                            version >= 2 ? ShmBarrier : nullptr,
                            version >= 2 ? ShmUnmap : nullptr,
                            version >= 3 ? Fetch : nullptr,
                            version >= 3 ? Unfetch : nullptr};
}

constexpr sqlite3_io_methods kMethods[] = {MethodsOfVersion(1), MethodsOfVersion(2),
                                           MethodsOfVersion(3)};

// ---- VFS methods: all the default VFS's, xOpen wraps the file. ----

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = Of(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kFileSize);
  f->gathered = nullptr;
  sqlite3_vfs* parent = Parent(vfs);
  const int rc = parent->xOpen(parent, name, f->real, flags, out_flags);
  const sqlite3_io_methods* real_methods = f->real->pMethods;
  if (real_methods == nullptr) {
    return rc == SQLITE_OK ? SQLITE_CANTOPEN : rc;
  }
  // Set even on failure: SQLite then calls our xClose, which closes the real file.
  const int version = real_methods->iVersion < 1   ? 1
                      : real_methods->iVersion > 3 ? 3
                                                   : real_methods->iVersion;
  f->base.pMethods = &kMethods[version - 1];
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0) {
    f->gathered = new (std::nothrow) Gathered();  // none: writes go straight through
  }
  return rc;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Parent(vfs)->xDelete(Parent(vfs), name, sync_dir);
}

int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Parent(vfs)->xAccess(Parent(vfs), name, flags, out);
}

int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return Parent(vfs)->xFullPathname(Parent(vfs), name, size, out);
}

void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Parent(vfs)->xDlOpen(Parent(vfs), name); }

void DlError(sqlite3_vfs* vfs, int size, char* out) {
  Parent(vfs)->xDlError(Parent(vfs), size, out);
}

void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Parent(vfs)->xDlSym(Parent(vfs), handle, symbol);
}

void DlClose(sqlite3_vfs* vfs, void* handle) { Parent(vfs)->xDlClose(Parent(vfs), handle); }

int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return Parent(vfs)->xRandomness(Parent(vfs), size, out);
}

int Sleep(sqlite3_vfs* vfs, int micros) { return Parent(vfs)->xSleep(Parent(vfs), micros); }

int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return Parent(vfs)->xCurrentTime(Parent(vfs), out);
}

int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return Parent(vfs)->xGetLastError(Parent(vfs), size, out);
}

int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Parent(vfs)->xCurrentTimeInt64(Parent(vfs), out);
}

sqlite3_vfs MakeVfs(sqlite3_vfs* parent) {
  sqlite3_vfs vfs{};
  // Version 2: the system-call overrides of version 3 stay the parent's.
  vfs.iVersion = 2;
  vfs.szOsFile = static_cast<int>(kFileSize) + parent->szOsFile;
  vfs.mxPathname = parent->mxPathname;
  vfs.zName = kVfsName;
  vfs.pAppData = parent;
  vfs.xOpen = Open;
  vfs.xDelete = Delete;
  vfs.xAccess = Access;
  vfs.xFullPathname = FullPathname;
  vfs.xDlOpen = DlOpen;
  vfs.xDlError = DlError;
  vfs.xDlSym = DlSym;
  vfs.xDlClose = DlClose;
  vfs.xRandomness = Randomness;
  vfs.xSleep = Sleep;
  vfs.xCurrentTime = CurrentTime;
  vfs.xGetLastError = GetLastError;
  vfs.xCurrentTimeInt64 = parent->iVersion >= 2 ? CurrentTimeInt64 : nullptr;
  return vfs;
}

}  // namespace

const char* WalBufferVfsName() {
  static std::once_flag once;
  static sqlite3_vfs vfs;
  std::call_once(once, [] {
    // Every connection is opened with this VFS, so this runs before SQLite
    // initializes: the one place for process-wide settings, which
    // sqlite3_config refuses afterwards. No memory statistics: nothing reads
    // them, and keeping them takes a global mutex on every allocation SQLite
    // makes, from every thread (the history writers make ~50 per call).
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_vfs* parent = sqlite3_vfs_find(nullptr);
    if (parent == nullptr) {
      return;
    }
    vfs = MakeVfs(parent);
    sqlite3_vfs_register(&vfs, 0);
  });
  // Without a default VFS to wrap (never on Unix), SQLite's own choice.
  return vfs.zName;
}

}  // namespace turnkey::sql
