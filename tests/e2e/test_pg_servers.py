"""test_pg_servers.py - several jobd servers on one PostgreSQL (label pg): a claim waiting on
one server is woken by a job submitted through another, a job's input and result read
back as sent (numbers past 64-bit integers, key order), a password in --db is never
logged, and 5,000 jobs submitted across 3
servers and worked by 6 bots spread over them all succeed once, are never held by two bots
at once, and reach the datalake exactly once across every server's part files."""

import threading
import time

import harness


class PgServers(harness.PgTestCase):
    needs = ("jobd", "jobd-bot")

    def test_claim_on_a_woken_by_submit_on_b(self):
        a, b = self.start_servers(2)
        bot = self.register_bot(a, "waiter", ["pg_wake"])
        got = {}
        waiting = threading.Thread(target=lambda: got.update(
            r=self.claim(a, bot, ["pg_wake"], wait_ms=20000)))
        waiting.start()
        self.wait_for(lambda: a.request("GET", "/health").body.get("waiting_claims") == 1, 10,
                      "the claim to wait on server A")
        submitted = time.monotonic()
        job = self.submit(b, "pg_wake", 1, 2)
        waiting.join(25 * harness.SLOW)
        woken_after = time.monotonic() - submitted
        body = self.expect(got["r"], 200, "the claim waiting on A")
        self.assertEqual([j["id"] for j in body["jobs"]], [job["id"]])
        self.assertLess(woken_after, 0.5 * harness.SLOW, "woken within 500 ms")

    def test_password_never_logged(self):
        """A password in --db reaches libpq, never the log: the start line names the
        database by what the connection reached.  (The cluster trusts local connections, so
        any password is accepted.)"""
        host = self.db_url.split("@", 1)[1]
        url = f"postgresql://postgres:s3cret-in-url@{host}"
        jobd = self.start_jobd(args=("--db", url, "--server-id", "s1"))
        name = host.rsplit("/", 1)[1]
        self.wait_log(jobd, f"PostgreSQL database {name} on 127.0.0.1:")
        self.assertIn(" as postgres,", jobd.log())
        self.assertNotIn("s3cret", jobd.log())

    def test_numbers_and_key_order_kept(self):
        """Regression: PostgreSQL's jsonb wrote 1e20 out as 21 digits, which jobd could not
        read back, so the submit failed with database_error; it also sorted the keys.  Since
        migration 0010 the input and the result read back as they were sent."""
        (a,) = self.start_servers(1)
        sent = {"z": 1e20, "a": -1.5e300, "m": [0.1, {"y": 2, "b": 1}]}
        job = self.expect(a.request("POST", "/jobs", {"operation": "pg_json", "input": sent}),
                          201, "POST /jobs with 1e20 in its input")
        got = self.get_job(a, job["id"])["input"]
        self.assertEqual(got, sent)
        self.assertEqual(list(got), ["z", "a", "m"], "the keys in the order sent")
        self.assertEqual(list(got["m"][1]), ["y", "b"])
        bot = self.register_bot(a, "json", ["pg_json"])
        claimed = self.claim_one(a, bot, ["pg_json"])
        self.assertEqual(claimed["input"], sent)
        self.expect(a.request("POST", f"/jobs/{job['id']}/complete",
                              {"bot_id": bot, "lease": claimed["lease"], "result": sent,
                               "duration_ms": 1}),
                    200, "complete with 1e20 in its result")
        result = self.get_job(a, job["id"])["result"]
        self.assertEqual(result, sent)
        self.assertEqual(list(result), ["z", "a", "m"])

    def test_5000_jobs_3_servers_6_bots(self):
        n = 5000
        servers = self.start_servers(3)
        for i, s in enumerate(servers):
            self.start_bots(s, 2, first=2 * i + 1)
        specs = harness.random_jobs(n, 20260817)

        def submit_slice(k):
            s = servers[k % 3]
            return [(self.submit(s, op, a, b)["id"], (op, a, b)) for op, a, b in specs[k::6]]

        expected = dict(pair for part in harness.run_concurrently(
            [lambda k=k: submit_slice(k) for k in range(6)]) for pair in part)
        self.assertEqual(len(expected), n, "every submit got its own id")

        def finished():
            s = servers[0].request("GET", "/stats").body["jobs"]
            return s if s["succeeded"] + s["failed"] >= n else None
        stats = self.wait_for(finished, 150, f"{n} jobs to finish", interval=0.5)
        self.assertEqual((stats["succeeded"], stats["total"]), (n, n), stats)
        self.check_run(servers[0], expected)
        bots = {r["bot_name"] for r in self.db("SELECT DISTINCT bot_name FROM jobs")}
        self.assertEqual(bots, {f"bot-{i}" for i in range(1, 7)}, "every bot worked")


if __name__ == "__main__":
    harness.main_pg()
