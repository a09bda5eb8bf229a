/*
 * claimnote.h - what the log line of a job's finish needs, noted when this
 * server hands the job to a bot, so that the report of a bot that asked for
 * minimal replies needs no read of the job.
 *
 * The line "job 4b1de16e succeeded: 613 sum 342 = 955 by bot-1 in 3 ms"
 * names the operation, the input and the bot; a report carries only the
 * job's id, lease and result.  Reading the job back in the report's
 * transaction, for its log line alone, cost e2e batched about 7 % of its
 * throughput at the default log level.  A claim has those fields at hand
 * (the bot needs the input), so it leaves a note here and the report takes
 * it.
 *
 * A note is only a shortcut: the table is direct-mapped and a claim simply
 * overwrites whatever note shares its slot, so a note may be gone when its
 * report comes (another job took the slot, the claim was made by another
 * server sharing the database, the server restarted), and then the report
 * reads the job as before.  Memory is fixed: CLAIMNOTE_SLOTS notes.  A note
 * is not evidence of anything; the database stays the only record.
 *
 * Owned by server_t (claimnote_new/claimnote_free).  Thread-safe.
 */
#ifndef JOBD_CLAIMNOTE_H
#define JOBD_CLAIMNOTE_H

#include <stdbool.h>
#include <stddef.h>

#define CLAIMNOTE_SLOTS 4096
#define CLAIMNOTE_WHAT  96 /* bytes of "613 sum 342", with its NUL */
#define CLAIMNOTE_BOT   64 /* bytes of the bot's name, with its NUL */

typedef struct claimnotes claimnotes_t;

/* One note: a job's description (as the log writes its input) and the
 * name of the bot that claimed it. */
typedef struct claimnote {
    char what[CLAIMNOTE_WHAT];
    char bot_name[CLAIMNOTE_BOT];
} claimnote_t;

claimnotes_t *claimnote_new(void);
void claimnote_free(claimnotes_t *t);

/* Note job `id`'s description and bot, replacing any note in its slot.
 * Texts that do not fit are not noted (the report reads the job). */
void claimnote_put(claimnotes_t *t, const char *id, const char *what, const char *bot_name);

/* Take job `id`'s note out into *out: true if there was one. */
bool claimnote_take(claimnotes_t *t, const char *id, claimnote_t *out);

#endif
