/*
 * bots.c - the /bots resource: registration, heartbeats (which also renew
 * the bot's leases), and reading bots.
 */
#include "log.h"
#include "server.h"
#include "validate.h"

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

void bots_heartbeat(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *body = NULL, *bot;
    const char *state;
    err_t e;

    if (validate_body(req->body, req->body_len, false, &body, &e) != JOBD_OK ||
        validate_string(body, "state", true, 16, &state, &e) != JOBD_OK)
        goto out_error;
    if (!known_state(state)) {
        err_set(&e, JOBD_EFIELD,
                "field 'state' must be ready, processing, unhealthy or offline, not '%.16s'",
                state);
        goto out_error;
    }
    if (store_bot_heartbeat(srv->store, req->params[0], state, srv->cfg.lease_ms, &bot, &e) !=
        JOBD_OK)
        goto out_error;
    reply_json(rep, 200, json_pack("{s:o}", "bot", bot));
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
