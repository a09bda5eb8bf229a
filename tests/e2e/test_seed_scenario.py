"""test_seed_scenario.py - the seed journal's job, end to end: sum 613 + 342 submitted,
completed by a real bot, and then the API, the database row and the datalake line all
say the same thing, with the same field names (the original system wrote "sum" where
the schema said "result", and its datalake disagreed with its database)."""

import os
import re

import harness


class SeedScenario(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def test_sum_613_342_is_recorded_once_and_consistently(self):
        jobd = self.start_jobd()
        self.wait_log(jobd, f"jobd listening on 127.0.0.1:{jobd.port}")
        # The start line names the database it runs on, which the operator cannot
        # otherwise tell from the log.
        if jobd.db_url:
            where = "PostgreSQL database " + jobd.db_url.rsplit("/", 1)[1] + " on 127.0.0.1:"
        else:
            where = "SQLite database " + os.path.realpath(jobd.db_path) + ","
        self.assertIn(where, jobd.log())
        # A clean start warns of nothing (libmicrohttpd once warned, at every start, of
        # the order of jobd's own options).
        self.assertEqual([l for l in jobd.log().splitlines() if " WARN " in l or " ERROR " in l],
                         [], "warnings or errors at a clean start")
        health = jobd.request("GET", "/health")
        self.assertEqual(health.body["status"], "ok", health.body)
        self.assertEqual(health.body["database"], "ok", health.body)
        self.assertIsInstance(health.body["schema_version"], int, health.body)

        bot, = self.start_bots(jobd, 1, ["sum"])
        created = self.submit(jobd, "sum", 613, 342)
        self.assertRegex(created["id"], harness.UUID_RE)
        self.assertEqual(created["status"], "pending")
        self.assertEqual(created["input"], {"a": 613, "b": 342})
        self.assertEqual(created["priority"], 0)
        self.assertEqual(created["attempts"], 0)
        for k in ("claimed_at", "finished_at", "bot_id", "bot_name", "result", "error",
                  "duration_ms"):
            self.assertIsNone(created[k], k)
        self.assertEqual(set(created), set(harness.api_job_fields()),
                         "POST /jobs must return exactly the documented job object")

        job = self.wait_finished(jobd, created["id"])
        jid = job["id"]
        self.assertEqual(job["status"], "succeeded", job)
        self.assertEqual(job["result"], 955)
        self.assertIsNone(job["error"])
        self.assertEqual(job["bot_name"], "bot-1")
        self.assertRegex(job["bot_id"], harness.UUID_RE)
        self.assertEqual(job["attempts"], 1)
        self.assertIsInstance(job["duration_ms"], int)
        self.assertGreaterEqual(job["duration_ms"], 0)
        for k in ("created_at", "claimed_at", "finished_at"):
            self.assertRegex(job[k], harness.TIME_RE, k)
        self.assertLessEqual(harness.parse_time(job["created_at"]),
                             harness.parse_time(job["claimed_at"]))
        self.assertLessEqual(harness.parse_time(job["claimed_at"]),
                             harness.parse_time(job["finished_at"]))

        history = job["history"]
        self.assertEqual(len(history), 1, history)
        h = history[0]
        self.assertEqual((h["attempt"], h["outcome"], h["bot_name"], h["bot_id"], h["error"]),
                         (1, "succeeded", "bot-1", job["bot_id"], None), h)
        self.assertEqual(h["started_at"], job["claimed_at"])
        self.assertEqual(h["ended_at"], job["finished_at"])
        self.assertNotIn("lease", job, "a finished job has no lease to show")

        # The people watching see it in the logs, under (a piece of) the job's id.
        self.wait_job_log(jobd, jid, r"job (\S+) succeeded: 613 sum 342 = 955 by bot-1 in \d+ ms")
        self.wait_job_log(bot, jid, r"Job (\S+) completed: 613 sum 342 = 955")

        # The database row and the datalake line agree with the API, field by field.
        lines = self.wait_for(lambda: [l for l in jobd.datalake() if l[1].get("id") == jid],
                              10, "the job's datalake line")
        self.assertEqual(len(lines), 1, lines)
        path, line = lines[0]
        self.assertEqual(path.split("/")[0], "date=" + job["finished_at"][:10],
                         "datalake partition is the finish date (UTC)")
        rows = jobd.db_query("SELECT * FROM jobs WHERE id = ?", (jid,))
        self.assertEqual(len(rows), 1)
        db = harness.normalise_db_row(rows[0])
        api = harness.normalise_api_job(job)
        lake = harness.normalise_api_job(line)
        for name, _ in harness.job_fields():
            with self.subTest(field=name):
                self.assertEqual(db[name], lake[name], f"DB vs datalake: {name}")
                self.assertEqual(api[name], lake[name], f"API vs datalake: {name}")
        self.assertEqual(db["result"], 955)

        # One record definition: datalake keys == API job object == record.h, and each
        # is a real column of the jobs table.
        columns = jobd.db_columns("jobs")
        self.assertEqual(sorted(line), sorted(harness.api_job_fields()))
        self.assertEqual(sorted(line), sorted(n for n, _ in harness.job_fields()))
        self.assertTrue(set(line) <= set(columns), set(line) - set(columns))

        # And the request log line carries id, method, path and status.
        self.assertTrue(re.search(r"POST /jobs\b.*\b201\b", jobd.log()),
                        "no request log line for POST /jobs with 201")


if __name__ == "__main__":
    harness.main()
