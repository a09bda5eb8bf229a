"""test_retention.py - retention (issue 5): with --retention-ms 0 a finished job leaves the
database as soon as its line is in the datalake.  Real bots work through two waves of jobs;
afterwards GET /jobs/{id} of each finished job answers 404 not_found saying where it went,
every job is in the datalake exactly once with the right answer, the database holds no
finished job (nor their attempts or events) while new jobs still run, and the jobs that
are not finished - pending, scheduled, or finished but not yet exported - stay."""

import time
from datetime import datetime, timezone

import harness

N = 120  # jobs per wave


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


class Retention(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def submit_wave(self, jobd, seed):
        """Submit N jobs in one batch; returns {id: (op, a, b)}."""
        specs = harness.random_jobs(N, seed)
        # Make a few fail, so that failed jobs are purged too.
        specs[3] = ("quotient", 7, 0)
        specs[9] = ("remainder", 7, 0)
        body = [{"operation": op, "input": {"a": a, "b": b}} for op, a, b in specs]
        jobs = self.expect(jobd.request("POST", "/jobs", body), 201, "POST /jobs (batch)")
        return {j["id"]: spec for j, spec in zip(jobs["jobs"], specs)}

    def total(self, jobd):
        return self.expect(jobd.request("GET", "/stats"), 200, "GET /stats")["jobs"]["total"]

    def wait_purged(self, jobd, expected, keep):
        """Wait until every job of `expected` is in the datalake and the database holds only
        the `keep` jobs; returns the largest job count /stats showed meanwhile."""
        most = 0

        def done():
            nonlocal most
            total = self.total(jobd)
            most = max(most, total)
            lake = jobd.datalake_count()
            return total == keep and all(i in lake for i in expected)
        self.wait_for(done, 60, f"{len(expected)} jobs exported and purged", interval=0.1)
        return most

    def assert_purged(self, jobd, expected):
        for jid in expected:
            err = self.assert_error(jobd.request("GET", f"/jobs/{jid}"), 404, "not_found",
                                    mentions=(jid, "retention", "datalake"))
        self.assertIn("--retention-ms 0", err["message"])
        self.assert_error(jobd.request("GET", f"/jobs/{jid}/explain"), 404, "not_found",
                          mentions=(jid, "datalake"))

    def test_finished_jobs_leave_the_database(self):
        jobd = self.start_jobd(args=["--retention-ms", "0"])
        # --work-ms keeps each wave in the database long enough for /stats to see it.
        self.start_bots(jobd, 2, args=["--work-ms", "5"])

        # Never claimed (no bot offers the operation), and not due for an hour: neither
        # is finished, so retention leaves both alone.
        idle = self.submit(jobd, "e2e_idle", 1, 2)
        later = self.expect(jobd.request("POST", "/jobs", {
            "operation": "sum", "input": {"a": 1, "b": 2},
            "run_at": rfc3339(int(time.time() * 1000) + 3600 * 1000)}), 201, "POST /jobs")
        keep = 2

        first = self.submit_wave(jobd, 20261128)
        most = self.wait_purged(jobd, first, keep)
        self.assertGreater(most, keep, "the first wave was in the database for a while")
        self.assert_purged(jobd, first)
        self.assertIn("retention: deleted", jobd.log())

        # New jobs still run, and leave in turn.
        second = self.submit_wave(jobd, 20261129)
        self.assertGreater(self.total(jobd), keep, "the second wave is in the database")
        self.wait_purged(jobd, second, keep)
        self.assert_purged(jobd, second)

        # Unfinished jobs stay, readable as ever.
        self.assertEqual(self.get_job(jobd, idle["id"])["status"], "pending")
        self.assertEqual(self.get_job(jobd, later["id"])["status"], "scheduled")

        # A cancelled job is finished too, and goes with its event.
        cancelled = self.submit(jobd, "e2e_idle", 3, 4)
        self.expect(jobd.request("POST", f"/jobs/{cancelled['id']}/cancel",
                                 {"reason": "not needed"}, token=harness.ADMIN_TOKEN),
                    200, "POST /jobs/{id}/cancel")
        self.wait_purged(jobd, [cancelled["id"]], keep)
        self.assert_purged(jobd, [cancelled["id"]])

        # A finished job the datalake does not have yet stays too: a job finished by hand
        # is kept until its line is written, then goes (the barrier waits for the line).
        barrier = self.datalake_barrier(jobd)
        self.wait_for(lambda: self.total(jobd) == keep, 15, "the barrier job to be purged")
        self.assert_purged(jobd, [barrier])

        # The database holds only the two unfinished jobs, with no attempts or events left
        # of the others.
        rows = jobd.db_query("SELECT id, status FROM jobs ORDER BY id")
        self.assertEqual({r["id"]: r["status"] for r in rows},
                         {idle["id"]: "pending", later["id"]: "scheduled"})
        self.assertEqual(jobd.db_query("SELECT count(*) AS n FROM attempts")[0]["n"], 0)
        self.assertEqual(jobd.db_query("SELECT count(*) AS n FROM job_events")[0]["n"], 0)

        # The datalake is the record: every job exactly once, with the right answer.
        expected = {**first, **second}
        counts = jobd.datalake_count()
        self.assertEqual(counts.pop(barrier), 1)
        self.assertEqual(counts.pop(cancelled["id"]), 1)
        self.assertEqual(set(counts), set(expected), "every job in the datalake")
        self.assertEqual({i: c for i, c in counts.items() if c != 1}, {}, "duplicate lines")
        wrong = []
        for _, line in jobd.datalake():
            if line["id"] not in expected:
                continue
            op, a, b = expected[line["id"]]
            kind, want = harness.expected_result(op, a, b)
            got = (line["status"], line["result"] if kind == "ok" else line["error"])
            if (kind == "ok" and got != ("succeeded", want)) or \
                    (kind == "error" and (got[0] != "failed" or want not in (got[1] or ""))):
                wrong.append((op, a, b, kind, want, got))
        self.assertEqual(wrong[:5], [], f"{len(wrong)} datalake lines with a wrong answer")


if __name__ == "__main__":
    harness.main()
