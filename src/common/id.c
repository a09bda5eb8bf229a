/*
 * id.c - UUIDv7 and random tokens.  UUIDv7 puts the millisecond time first,
 * so job ids sort by creation and keep B-tree inserts at the right edge.
 */
#include "id.h"
#include "clock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Random bytes come from getrandom(2) 512 at a time into a buffer per thread:
 * every id and lease costs a system call otherwise (several per job), and
 * system calls are dear on virtual machines.  Each byte is handed out once,
 * so the tokens are exactly as unpredictable as getrandom's output.  jobd
 * never forks, so no two processes can share a buffer. */
#define RANDOM_POOL 512

static _Thread_local unsigned char pool[RANDOM_POOL];
static _Thread_local size_t pool_left;

static void refill(void)
{
    size_t got = 0;
    while (got < sizeof pool) {
        ssize_t r = getrandom(pool + got, sizeof pool - got, 0);
        if (r < 0)
            abort(); /* only fails on a kernel without getrandom */
        got += (size_t)r;
    }
    pool_left = sizeof pool;
}

static void fill_random(unsigned char *buf, size_t n)
{
    while (n > 0) {
        if (pool_left == 0)
            refill();
        size_t take = n < pool_left ? n : pool_left;
        unsigned char *from = pool + sizeof pool - pool_left;
        memcpy(buf, from, take);
        memset(from, 0, take); /* a handed-out byte does not stay behind */
        pool_left -= take;
        buf += take;
        n -= take;
    }
}

/* RFC 9562 method 1: a 12-bit counter after the millisecond keeps ids made
 * in the same millisecond in the order they were made, across threads, so
 * "oldest first" and keyset pages follow creation order exactly.  When the
 * counter runs out the time is moved on by a millisecond. */
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seq_ms;
static unsigned seq_counter;

static const char hex_digits[] = "0123456789abcdef";

/* b in the 8-4-4-4-12 hex form of a UUID (one per job, so not snprintf). */
static void hex_uuid(char out[ID_UUID_LEN], const unsigned char b[16])
{
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex_digits[b[i] >> 4];
        *p++ = hex_digits[b[i] & 15];
    }
    *p = '\0';
}

void id_uuid7(char out[ID_UUID_LEN])
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)clock_now_ms();
    unsigned counter;

    fill_random(b, sizeof b);
    pthread_mutex_lock(&seq_lock);
    if (ms <= seq_ms) {
        ms = seq_ms;
        if (++seq_counter > 0xfff) {
            ms++;
            seq_counter = 0;
        }
    } else {
        seq_counter = b[7] & 0x7f; /* a random start, with room to count up */
    }
    seq_ms = ms;
    counter = seq_counter;
    pthread_mutex_unlock(&seq_lock);

    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (counter >> 8)); /* version 7, counter high bits */
    b[7] = (unsigned char)(counter & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    hex_uuid(out, b);
}

void id_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    fill_random(b, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex_digits[b[i] >> 4];
        out[2 * i + 1] = hex_digits[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

const char *id_short(const char *id)
{
    size_t n = strlen(id);
    return n > 8 ? id + n - 8 : id;
}

bool id_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return s[36] == '\0';
}
