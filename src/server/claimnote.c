/*
 * claimnote.c - the notes of claimnote.h: a direct-mapped table of
 * CLAIMNOTE_SLOTS slots under LOCKS striped locks, so that the claims and
 * reports of different jobs seldom wait for each other.  The slots are
 * zeroed memory that the kernel maps only once a note is written in them.
 */
#include "claimnote.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 40 /* a job id (a UUID: 36 bytes), with its NUL */
#define LOCKS  64

struct slot {
    char id[ID_MAX]; /* "" when empty */
    claimnote_t note;
};

struct claimnotes {
    pthread_mutex_t locks[LOCKS]; /* slot i is under locks[i % LOCKS] */
    struct slot slots[CLAIMNOTE_SLOTS];
};

/* FNV-1a: ids are UUIDv7, whose leading bytes are a timestamp; every byte
 * must count. */
static size_t slot_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CLAIMNOTE_SLOTS;
}

claimnotes_t *claimnote_new(void)
{
    claimnotes_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    for (size_t i = 0; i < LOCKS; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

void claimnote_free(claimnotes_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t);
}

void claimnote_put(claimnotes_t *t, const char *id, const char *what, const char *bot_name)
{
    size_t i;

    if (strlen(id) >= ID_MAX || strlen(what) >= CLAIMNOTE_WHAT || strlen(bot_name) >= CLAIMNOTE_BOT)
        return;
    i = slot_of(id);
    pthread_mutex_lock(&t->locks[i % LOCKS]);
    strcpy(t->slots[i].id, id);
    strcpy(t->slots[i].note.what, what);
    strcpy(t->slots[i].note.bot_name, bot_name);
    pthread_mutex_unlock(&t->locks[i % LOCKS]);
}

bool claimnote_take(claimnotes_t *t, const char *id, claimnote_t *out)
{
    size_t i = slot_of(id);
    struct slot *s = &t->slots[i];
    bool found;

    pthread_mutex_lock(&t->locks[i % LOCKS]);
    found = s->id[0] && strcmp(s->id, id) == 0;
    if (found) {
        *out = s->note;
        s->id[0] = '\0';
    }
    pthread_mutex_unlock(&t->locks[i % LOCKS]);
    return found;
}
