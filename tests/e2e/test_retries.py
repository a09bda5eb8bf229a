"""test_retries.py - retries, delayed jobs, admin retry and cancel, and explain, with the
test acting as a bot over HTTP: a retryable failure comes back after a growing backoff
until max_attempts, then the job is failed for good; a lost attempt does not use the
budget; a job submitted with run_at is not claimable before it and wakes a waiting claim
when its time comes; every admin action is recorded with its reason."""

import time
from datetime import datetime, timezone

import harness

TOKEN = harness.ADMIN_TOKEN


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def now_ms():
    return int(time.time() * 1000)


class Retries(harness.E2ETestCase):
    def fail(self, jobd, bot, job, error, retryable):
        return self.expect(jobd.request("POST", f"/jobs/{job['id']}/fail",
                                        {"bot_id": bot, "lease": job["lease"], "error": error,
                                         "duration_ms": 1, "retryable": retryable}),
                           200, "POST /fail")

    def fail_and_wait(self, jobd, bot, job, claimed, k, ceiling):
        """Fail `claimed` (the k-th failure) as retryable; check the backoff (between half
        and all of `ceiling`), that nothing can claim the job meanwhile, what explain says,
        and that a waiting claim gets it when the backoff ends.  Returns that claim."""
        t = now_ms()
        after = self.fail(jobd, bot, claimed, f"timeout {k}", True)
        self.assertEqual((after["status"], after["failures"]), ("scheduled", k), after)
        wait = harness.parse_time(after["run_at"]) - t
        self.assertTrue(ceiling // 2 - 50 <= wait <= ceiling + 50, (k, wait))
        self.assertEqual(self.claim(jobd, bot, ["sum"]).status, 204, "claimed in backoff")
        ex = self.explain(jobd, job["id"])
        self.assertEqual(ex["status"], "scheduled")
        self.assertIn(f"retry after failure {k} of at most 3: timeout {k}", ex["reason"])
        r = self.claim(jobd, bot, ["sum"], wait_ms=3000)
        self.assertEqual(r.status, 200, "the retry wakes a waiting claim")
        self.assertGreaterEqual(now_ms(), harness.parse_time(after["run_at"]))
        return r

    def admin(self, jobd, job_id, verb, reason=None):
        return jobd.request("POST", f"/jobs/{job_id}/{verb}",
                            {"reason": reason} if reason else None, token=TOKEN)

    def explain(self, jobd, job_id):
        return self.expect(jobd.request("GET", f"/jobs/{job_id}/explain"), 200, "explain")

    def test_retryable_failure_backs_off_until_max_attempts(self):
        jobd = self.start_jobd(args=["--retry-base-ms", "400", "--retry-max-ms", "700"])
        bot = self.register_bot(jobd, "flaky", ["sum"])
        job = self.submit(jobd, "sum", 1, 2)
        self.assertEqual(job["max_attempts"], 3)
        claimed = self.claim_one(jobd, bot, ["sum"])
        r = self.fail_and_wait(jobd, bot, job, claimed, 1, 400)
        # An admin release gives this attempt back: lost, not failed, so the budget stays.
        released = self.expect(self.admin(jobd, job["id"], "release", "rebalance"), 200,
                               "release")
        self.assertEqual((released["failures"], released["lost"]), (1, 1))
        claimed = self.claim_one(jobd, bot, ["sum"])
        r = self.fail_and_wait(jobd, bot, job, claimed, 2, 700)
        last = self.fail(jobd, bot, r.body["jobs"][0], "timeout 3", True)
        self.assertEqual((last["status"], last["failures"]), ("failed", 3), last)
        j = self.get_job(jobd, job["id"])
        self.assertEqual((j["status"], j["failures"], j["lost"], j["attempts"]),
                         ("failed", 3, 1, 4), j)
        self.assertEqual([h["outcome"] for h in j["history"]],
                         ["failed", "released", "failed", "failed"])
        ex = self.explain(jobd, job["id"])
        self.assertEqual(ex["errors"], ["timeout 1", "timeout 2", "timeout 3"], ex)
        self.assertTrue(ex["reason"].startswith("failed after 4 attempts (3 failed, at most 3 "
                                                "allowed): timeout 3"), ex["reason"])

        # A failure that is not retryable ends the job at once, budget or not.
        other = self.submit(jobd, "sum", 5, 0)
        claimed = self.claim_one(jobd, bot, ["sum"])
        self.assertEqual(claimed["id"], other["id"])
        self.assertEqual(self.fail(jobd, bot, claimed, "division by zero", False)["status"],
                         "failed")

        # Admin retry: a fresh budget, recorded; a second retry of a pending job is refused.
        r = self.expect(self.admin(jobd, job["id"], "retry", "db fixed"), 200, "retry")
        self.assertEqual((r["status"], r["failures"]), ("pending", 0), r)
        self.assertEqual([(e["action"], e["reason"]) for e in r["events"]],
                         [("release", "rebalance"), ("retry", "db fixed")])
        self.assert_error(self.admin(jobd, job["id"], "retry"), 409, "not_retryable",
                          ["pending"])
        claimed = self.claim_one(jobd, bot, ["sum"])
        r = jobd.request("POST", f"/jobs/{job['id']}/complete",
                         {"bot_id": bot, "lease": claimed["lease"], "result": 3,
                          "duration_ms": 1})
        self.assertEqual(r.body["status"], "succeeded", r.body)
        self.assertIn("retried by admin", jobd.log())

    def test_retryable_failure_in_a_report_that_claims(self):
        """A retryable failure sent to POST /jobs/complete with a "claim" (as jobd-bot sends
        its reports) is retried as one sent to /fail: scheduled, then claimable again when
        its backoff ends, when a later report's waiting claim leases it."""
        jobd = self.start_jobd(args=["--retry-base-ms", "400", "--retry-max-ms", "400"])
        bot = self.register_bot(jobd, "chained", ["sum"])
        a, b = self.submit(jobd, "sum", 1, 2), self.submit(jobd, "sum", 3, 4)
        first = self.claim_one(jobd, bot, ["sum"])
        self.assertEqual(first["id"], a["id"])

        def report(item, claim):
            body = {"bot_id": bot, "results": [item]}
            if claim:
                body["claim"] = claim
            return self.expect(jobd.request("POST", "/jobs/complete", body), 200,
                               "POST /jobs/complete")

        t = now_ms()
        r = report({"id": a["id"], "lease": first["lease"], "error": "timeout", "duration_ms": 1,
                    "retryable": True}, {"operations": ["sum"], "max": 1})
        after = r["results"][0]["job"]
        self.assertEqual((after["status"], after["failures"]), ("scheduled", 1), after)
        self.assertGreaterEqual(harness.parse_time(after["run_at"]) - t, 200 - 50, after)
        self.assertEqual([j["id"] for j in r["jobs"]], [b["id"]], "a waits out its backoff")
        self.assertEqual(self.explain(jobd, a["id"])["status"], "scheduled")

        r = report({"id": b["id"], "lease": r["jobs"][0]["lease"], "result": 7, "duration_ms": 1},
                   {"operations": ["sum"], "max": 1, "wait_ms": 5000})
        self.assertEqual(r["results"][0]["job"]["status"], "succeeded", r)
        self.assertEqual([j["id"] for j in r["jobs"]], [a["id"]], "a's retry is leased")
        self.assertGreaterEqual(now_ms(), harness.parse_time(after["run_at"]))
        again = r["jobs"][0]
        self.assertEqual(again["attempts"], 2, again)

        r = report({"id": a["id"], "lease": again["lease"], "result": 3, "duration_ms": 1}, None)
        self.assertNotIn("jobs", r, "no claim, no jobs")
        j = self.get_job(jobd, a["id"])
        self.assertEqual((j["status"], j["result"], j["failures"]), ("succeeded", 3, 1), j)
        self.assertEqual([h["outcome"] for h in j["history"]], ["failed", "succeeded"])

    def test_run_at_cancel_and_explain(self):
        jobd = self.start_jobd()
        bot = self.register_bot(jobd, "waiter", ["sum"])
        run_at = now_ms() + 1500
        job = self.submit_body(jobd, {"operation": "sum", "input": {"a": 1, "b": 1},
                                      "run_at": rfc3339(run_at), "max_attempts": 5})
        self.assertEqual((job["status"], job["run_at"], job["max_attempts"]),
                         ("scheduled", rfc3339(run_at), 5), job)
        self.assertIn("scheduled for", self.explain(jobd, job["id"])["reason"])
        self.assertEqual(self.claim(jobd, bot, ["sum"]).status, 204)
        r = self.claim(jobd, bot, ["sum"], wait_ms=5000)
        self.assertEqual((r.status, r.body["jobs"][0]["id"]), (200, job["id"]), r.body)
        self.assertGreaterEqual(now_ms(), run_at)

        # Bad run_at and max_attempts are refused, naming the field.
        for bad, field in (({"run_at": "tomorrow"}, "run_at"), ({"max_attempts": 0},
                                                                 "max_attempts")):
            body = {"operation": "sum", "input": {}, **bad}
            self.assert_error(jobd.request("POST", "/jobs", body), 422, "invalid_field", [field])

        # Explain a queue: priority first, then age; no live bot for an operation.
        lone = self.submit(jobd, "orphan_op", 0, 0)
        ex = self.explain(jobd, lone["id"])
        self.assertEqual((ex["ahead"], ex["live_bots"]), (0, 0), ex)
        self.assertIn("no live bot offers operation 'orphan_op'", ex["reason"])
        first, _, last = (self.submit_body(jobd, {"operation": "sum", "input": {"a": i, "b": i},
                                                  "priority": p})
                          for i, p in ((1, 5), (2, 5), (3, 1)))
        ex = self.explain(jobd, last["id"])
        self.assertEqual((ex["ahead"], ex["live_bots"]), (2, 1), ex)
        self.assertIn("waiting behind 2 jobs of operation 'sum' with higher priority or older "
                      "at the same priority; 1 live bot offers 'sum'", ex["reason"])
        self.assertEqual(self.explain(jobd, first["id"])["ahead"], 0)

        # Cancel: pending and scheduled jobs; a cancelled or finished job cannot be.
        c = self.expect(self.admin(jobd, last["id"], "cancel", "not needed"), 200, "cancel")
        self.assertEqual((c["status"], c["error"]), ("cancelled",
                                                     "cancelled by an admin: not needed"))
        self.assertIn("cancelled by an admin at", self.explain(jobd, last["id"])["reason"])
        self.assert_error(self.admin(jobd, last["id"], "cancel"), 409, "job_cancelled")
        done = r.body["jobs"][0]
        self.expect(jobd.request("POST", f"/jobs/{done['id']}/complete",
                                 {"bot_id": bot, "lease": done["lease"], "result": 2,
                                  "duration_ms": 1}), 200, "complete")
        self.assert_error(self.admin(jobd, done["id"], "cancel"), 409, "already_finished")
        self.assert_error(jobd.request("POST", f"/jobs/{done['id']}/cancel"), 401,
                          "unauthorized")
        self.assertTrue(self.explain(jobd, done["id"])["reason"].startswith(
            "succeeded at " + self.get_job(jobd, done["id"])["finished_at"] + " by waiter"))

        # The cancelled job is finished: it is in the datalake, once.
        barrier = self.datalake_barrier(jobd)
        counts = jobd.datalake_count()
        self.assertEqual((counts.get(last["id"]), counts.get(done["id"]), counts[barrier]),
                         (1, 1, 1))
        line = next(o for _, o in jobd.datalake() if o["id"] == last["id"])
        self.assertEqual(line["status"], "cancelled")
        self.assertEqual(self.expect(jobd.request("GET", "/stats"), 200, "stats")["jobs"]
                         ["cancelled"], 1)

    def submit_body(self, jobd, body):
        return self.expect(jobd.request("POST", "/jobs", body), 201, f"POST /jobs {body}")


if __name__ == "__main__":
    harness.main()
