/*
 * park.c - park.h on Linux futexes.  FUTEX_PRIVATE: the words are never
 * shared between processes.
 */
#include "park.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void park_wait(atomic_int *word, int value)
{
    while (atomic_load(word) == value)
        /* EAGAIN: the word changed before we slept; EINTR: a signal.  Both
         * are answered by looking at the word again. */
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

void park_wake(atomic_int *word, int value)
{
    atomic_store(word, value);
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
