"""test_pg_restart.py - PostgreSQL stops in the middle of a run of 5,000 jobs on 3 servers and
6 bots, and starts again (label pg; it restarts the shared test cluster, so CTest runs it
alone).  While it is down, requests get 503 database_unavailable with libpq's reason and
/health says so; afterwards every server serves again by itself, and every job succeeded
once, was never held by two bots at once, and is in the datalake exactly once."""

import harness


class PgRestart(harness.PgTestCase):
    needs = ("jobd", "jobd-bot")

    def test_restart_mid_run(self):
        n = 5000
        servers = self.start_servers(3)
        bots = [b for i, s in enumerate(servers) for b in self.start_bots(s, 2, first=2 * i + 1)]
        specs = harness.random_jobs(n, 20260818)
        expected = {}
        for k, (op, a, b) in enumerate(specs):
            expected[self.submit(servers[k % 3], op, a, b)["id"]] = (op, a, b)

        def done():
            s = servers[0].request("GET", "/stats").body["jobs"]
            return s["succeeded"] + s["failed"]
        self.wait_for(lambda: done() >= n // 5, 60, "a fifth of the jobs to finish",
                      interval=0.1)
        self.pg_ctl("stop", "-m", "fast")
        try:
            for s in servers:
                err = self.assert_error(s.request("GET", "/health"), 503, "database_unavailable")
                self.assertIn("database", err["message"])
            err = self.assert_error(servers[1].request("POST", "/jobs", {
                "operation": "sum", "input": {"a": 1, "b": 2}}), 503, "database_unavailable")
            self.assertRegex(err["message"], r"connect|server|terminat|refused", err)
            some = next(iter(expected))
            self.assert_error(servers[2].request("GET", f"/jobs/{some}"), 503,
                              "database_unavailable")
            # The bots meet the outage too, and wait it out with their backoff.
            self.wait_for(lambda: any("unavailable" in b.log() for b in bots), 15,
                          "a bot to meet the outage")
        finally:
            self.pg_ctl("start")
        for s in servers:
            self.wait_for(lambda s=s: s.request("GET", "/health").status == 200, 30,
                          f"{s.name} healthy again")
        self.wait_for(lambda: done() >= n, 120, f"{n} jobs to finish", interval=0.5)
        self.check_run(servers[0], expected)


if __name__ == "__main__":
    harness.main_pg()
