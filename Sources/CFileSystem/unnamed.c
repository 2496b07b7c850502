#define _GNU_SOURCE
#include "CFileSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int quiver_open_unnamed(const char *directory) {
#if defined(O_TMPFILE)
    int fd = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
#endif
    size_t length = strlen(directory) + sizeof("/.quiver-scratch-XXXXXX");
    char *path = malloc(length);
    if (path == NULL) return -1;
    snprintf(path, length, "%s/.quiver-scratch-XXXXXX", directory);
    int fd2 = mkostemp(path, O_CLOEXEC);
    if (fd2 >= 0) unlink(path);
    free(path);
    return fd2;
}
