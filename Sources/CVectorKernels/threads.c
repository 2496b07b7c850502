// Scheduling of the threads that build indexes.
#define _GNU_SOURCE
#include "CVectorKernels.h"
#include <errno.h>
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int quiver_lower_thread_priority(int steps) {
#if defined(__linux__)
    // On Linux a nice value belongs to the thread whose id is given, not to the whole process.
    // Counted from the process's (its main thread's): a thread inherits its creator's value, so
    // a build thread started from another must not add to it.
    errno = 0;
    int process = getpriority(PRIO_PROCESS, (id_t)getpid());
    if (process == -1 && errno != 0) return errno;
    int niceness = process + steps;
    if (niceness > 19) niceness = 19;
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness) == 0 ? 0 : errno;
#else
    (void)steps;
    return 0;
#endif
}

int quiver_thread_niceness(void) {
#if defined(__linux__)
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
#else
    return 0;
#endif
}
