/*
 * id.h - identifiers: time-ordered UUIDv7 for jobs and bots, random hex
 * tokens for leases and request ids.  Randomness comes from getrandom(2).
 */
#ifndef JOBD_ID_H
#define JOBD_ID_H

#include <stddef.h>
#include <stdbool.h>

#define ID_UUID_LEN 37 /* 36 characters and NUL */

/* Write a new UUIDv7 (RFC 9562) into out, which holds ID_UUID_LEN bytes. */
void id_uuid7(char out[ID_UUID_LEN]);

/* Write 2*nbytes random hex characters and a NUL into out. */
void id_hex(char *out, size_t nbytes);

/* The last 8 characters of an id, for log lines.  A UUIDv7 starts with its
 * time, so ids made in the same minute share their first characters; the
 * tail is random and tells them apart.  Returns a pointer into id. */
const char *id_short(const char *id);

/* True if s is a canonical lower-case UUID text. */
bool id_is_uuid(const char *s);

#endif
