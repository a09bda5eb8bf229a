/*
 * park.h - put a thread to sleep on a word of its own until another thread
 * changes the word and wakes it: the futex(2) pattern that glibc's own locks
 * use, exposed because a condition variable cannot be signalled after its
 * mutex is released when its waiter may return and free it.
 *
 * Ownership: the word belongs to the sleeping thread (typically on its
 * stack).  A waker must read everything it needs from the waiter's memory
 * before park_wake's store, which may let the waiter return at once; the
 * wake-up itself only names the address, so a late one is at worst a
 * spurious wake-up for whoever sleeps there next, which every park_wait
 * caller tolerates by re-checking its word.
 */
#ifndef JOBD_PARK_H
#define JOBD_PARK_H

#include <stdatomic.h>

/* Sleep while *word == value (returns at once if it already differs). */
void park_wait(atomic_int *word, int value);

/* Store value into *word and wake the thread parked on it, if any. */
void park_wake(atomic_int *word, int value);

#endif
