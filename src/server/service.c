/*
 * service.c - /health and /stats: what an operator or a load balancer asks
 * of a running server.
 */
#include "datalake.h"
#include "server.h"
#include "waitq.h"

void service_health(server_t *srv, req_t *req, reply_t *rep)
{
    err_t e;
    (void)req;
    if (store_ping(srv->store, &e) != JOBD_OK) {
        /* Whatever the store says, to a load balancer this server cannot
         * serve: one code, with the database's reason. */
        err_set(&rep->err, JOBD_EDBDOWN, "database: %s", e.msg);
        return;
    }
    reply_json(rep, 200,
               json_pack("{s:s,s:s,s:i,s:i}", "status", srv->stopping ? "stopping" : "ok",
                         "database", "ok", "schema_version", srv->schema_version, "waiting_claims",
                         waitq_count(srv->waitq)));
}

void service_stats(server_t *srv, req_t *req, reply_t *rep)
{
    json_t *stats;
    err_t e;
    (void)req;
    if (store_stats(srv->store, &stats, &e) != JOBD_OK) {
        reply_err(rep, &e);
        return;
    }
    json_object_set_new(stats, "waiting_claims", json_integer(waitq_count(srv->waitq)));
    json_object_set_new(stats, "woken_claims", json_integer(waitq_wakes(srv->waitq)));
    json_object_set_new(stats, "handed_claims", json_integer(waitq_handoffs(srv->waitq)));
    if (srv->datalake) {
        long long appends, records;
        datalake_stats(srv->datalake, &appends, &records);
        json_object_set_new(
            stats, "datalake",
            json_pack("{s:I,s:I}", "appends", (json_int_t)appends, "records", (json_int_t)records));
    }
    reply_json(rep, 200, stats);
}
