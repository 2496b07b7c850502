#ifndef QUIVER_CFILESYSTEM_H
#define QUIVER_CFILESYSTEM_H

/// Swaps the directory entries `a` and `b` in one atomic step (Linux `renameat2` with
/// `RENAME_EXCHANGE`): after a crash, each name points at one of the two, never at neither.
/// Returns 0, or -1 with `errno` set (EINVAL where the file system cannot, ENOSYS elsewhere).
int quiver_exchange(const char *a, const char *b);

/// Returns the memory the C allocator holds free to the system (glibc `malloc_trim(0)`, which also
/// releases free pages inside its arenas); a no-op elsewhere.
void quiver_release_free_memory(void);

/// Opens a new, empty file in `directory` that has no name (Linux `O_TMPFILE`; elsewhere, or where
/// the file system cannot, a file created and removed at once): nobody else can open it, and it is
/// gone once closed, even after a crash. Returns the descriptor (read and write, close-on-exec),
/// or -1 with `errno` set.
int quiver_open_unnamed(const char *directory);

#endif
