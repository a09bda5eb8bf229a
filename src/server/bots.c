/*
 * bots.c - the /bots resource: registration, heartbeats (which renew the
 * bot's leases, carry per-job progress, and tell the bot which of its jobs
 * were cancelled or taken back), and reading bots.
 */
#include "id.h"
#include "log.h"
#include "server.h"
#include "validate.h"
#include "waitq.h"

#include <stdlib.h>
#include <string.h>

static bool known_state(const char *s)
{
    static const char *const all[] = {"ready", "processing", "unhealthy", "offline"};
    for (size_t i = 0; i < 4; i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

void bots_register(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *body = NULL, *ops, *bot;
    const char *name;
    char *ops_text;
    err_t e;

    if (validate_body(req->body, req->body_len, false, &body, &e) != JOBD_OK ||
        validate_string(body, "name", true, 128, &name, &e) != JOBD_OK ||
        validate_names(body, "operations", 64, &ops, &e) != JOBD_OK ||
        store_bot_register(srv->store, name, ops, &bot, &e) != JOBD_OK) {
        reply_err(rep, &e);
        json_decref(body);
        return;
    }
    ops_text = json_dumps(ops, JSON_COMPACT);
    log_info("bot %s registered as %s for %s", name, json_string_value(json_object_get(bot, "id")),
             ops_text ? ops_text : "?");
    free(ops_text);
    reply_json(rep, 201, json_pack("{s:O,s:o}", "bot_id", json_object_get(bot, "id"), "bot", bot));
    json_decref(body);
}

/* The optional "jobs" of a heartbeat: at most MAX_HELD objects, each with a
 * string "id" and any "progress".  OUT: *jobs, borrowed from body, NULL
 * when absent. */
#define MAX_HELD 1000
static int held_jobs(const json_t *body, json_t **jobs, err_t *e)
{
    json_t *v = json_object_get(body, "jobs"), *item;
    size_t i;

    *jobs = NULL;
    if (!v || json_is_null(v))
        return JOBD_OK;
    if (!json_is_array(v) || json_array_size(v) > MAX_HELD)
        return err_set(e, JOBD_EFIELD, "field 'jobs' must be an array of at most %d objects",
                       MAX_HELD);
    json_array_foreach(v, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (!json_is_object(item) || !id || !*id || strlen(id) > 64)
            return err_set(e, JOBD_EFIELD,
                           "field 'jobs[%zu]' must be an object with a job 'id' (a string)", i);
    }
    *jobs = v;
    return JOBD_OK;
}

/* Log what the bot is told it no longer holds, once per heartbeat. */
static void log_verdict(const char *bot, const json_t *verdict, const char *kind, const char *why)
{
    json_t *ids = json_object_get(verdict, kind), *id;
    size_t i;

    json_array_foreach(ids, i, id)
    {
        log_info("bot %s told that job %s %s", bot, id_short(json_string_value(id)), why);
    }
}

void bots_heartbeat(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *body = NULL, *reply, *jobs;
    const char *state, *name;
    err_t e;

    if (validate_body(req->body, req->body_len, false, &body, &e) != JOBD_OK ||
        validate_string(body, "state", true, 16, &state, &e) != JOBD_OK ||
        held_jobs(body, &jobs, &e) != JOBD_OK)
        goto out_error;
    if (!known_state(state)) {
        err_set(&e, JOBD_EFIELD,
                "field 'state' must be ready, processing, unhealthy or offline, not '%.16s'",
                state);
        goto out_error;
    }
    if (store_bot_heartbeat(srv->store, req->params[0], state, srv->cfg.lease_ms, jobs, &reply,
                            &e) != JOBD_OK)
        goto out_error;
    name = json_string_value(json_object_get(json_object_get(reply, "bot"), "name"));
    log_verdict(name, json_object_get(reply, "jobs"), "cancelled", "was cancelled");
    log_verdict(name, json_object_get(reply, "jobs"), "lost", "is no longer its own");
    if (strcmp(state, "offline") == 0) {
        log_info("bot %s went offline", name);
        /* What it held is pending again (store_bot_heartbeat). */
        waitq_announce(srv->waitq, NULL, 0);
    }
    reply_json(rep, 200, reply);
    json_decref(body);
    return;

out_error:
    reply_err(rep, &e);
    json_decref(body);
}

void bots_get(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *bot;
    err_t e;
    if (store_bot_get(srv->store, req->params[0], &bot, &e) != JOBD_OK) {
        reply_err(rep, &e);
        return;
    }
    reply_json(rep, 200, bot);
}

void bots_list(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *bots;
    err_t e;
    (void)req;
    if (store_bot_list(srv->store, &bots, &e) != JOBD_OK) {
        reply_err(rep, &e);
        return;
    }
    reply_json(rep, 200, json_pack("{s:o}", "bots", bots));
}
