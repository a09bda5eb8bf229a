"""test_long_poll.py - POST /jobs/claim with wait_ms: a waiting bot gets a job submitted
later at once, an idle wait ends in 204 after about wait_ms, and many waiting bots hold
no server threads (the server runs with --threads 2 while 20 bots wait, and /health and
POST /jobs stay fast); a job goes to exactly one of them, and wakes one or two of them, not
all; a wake taken by other work is passed on.  A job submitted while a bot waits is
handed to it: claimed for it in the transaction that inserts it, with no wake and no claim
of its own (GET /stats counts handed_claims)."""

import threading
import time

import harness


class LongPoll(harness.E2ETestCase):
    def start(self):
        return self.start_jobd(args=["--threads", "2"])

    def claim_in_background(self, jobd, bot, wait_ms=10000):
        """A long-poll claim on a thread of its own; join() returns its reply and the
        monotonic time it came."""
        done = {}

        def wait_claim():
            done["reply"] = self.claim(jobd, bot, ["sum"], wait_ms=wait_ms)
            done["at"] = time.monotonic()

        waiter = threading.Thread(target=wait_claim)
        waiter.start()

        def join():
            waiter.join(15 * harness.SLOW)
            self.assertIsNotNone(done.get("reply"), "claim did not return")
            return done["reply"], done["at"]

        return join

    def test_waiting_claim_gets_a_later_job_promptly(self):
        jobd = self.start()
        bot = self.register_bot(jobd, "waiter", ["sum"])
        t0 = time.monotonic()
        join = self.claim_in_background(jobd, bot)
        time.sleep(0.5)  # the scenario: the job arrives while the bot is already waiting
        job = self.submit(jobd, "sum", 613, 342)
        submitted = time.monotonic()
        reply, at = join()
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual([j["id"] for j in reply.body["jobs"]], [job["id"]])
        self.assertTrue(reply.body["jobs"][0]["lease"])
        self.assertLess(at - submitted, 1.0 * harness.SLOW,
                        "the waiting claim must wake when the job arrives")
        self.assertLess(at - t0, 5.0, "well before wait_ms (10 s)")

    def test_a_job_submitted_to_a_waiting_bot_is_handed_to_it(self):
        jobd = self.start()
        bot = self.register_bot(jobd, "handed", ["sum"])
        stats = lambda: jobd.request("GET", "/stats").body  # noqa: E731
        join = self.claim_in_background(jobd, bot)
        self.wait_for(lambda: stats()["waiting_claims"] == 1, 5, "the claim to wait")
        before = stats()
        job = self.submit(jobd, "sum", 613, 342)
        # The submitter sees the job as it is once the call returns, but not the
        # bot's lease.
        self.assertEqual((job["status"], job["bot_id"]), ("processing", bot))
        self.assertNotIn("lease", job)
        self.assertNotIn("lease_expires_at", job)
        reply, _ = join()
        self.assertEqual(reply.status, 200, reply.body)
        [got] = reply.body["jobs"]
        self.assertEqual(got["id"], job["id"])
        self.assertEqual(got["status"], "processing")
        self.assertEqual(got["bot_id"], bot)
        self.assertEqual(len(got["lease"]), 32)
        after = stats()
        self.assertEqual(after["handed_claims"] - before["handed_claims"], 1, after)
        self.assertEqual(after["woken_claims"], before["woken_claims"], "no wake was needed")
        self.assertEqual(after["waiting_claims"], 0)
        held = self.get_job(jobd, job["id"])
        self.assertEqual((held["status"], held["bot_id"]), ("processing", bot))
        self.assertEqual([a["outcome"] for a in held["history"]], ["running"])
        # The lease it was handed finishes it, as any claim's would.
        r = jobd.request("POST", f"/jobs/{job['id']}/complete",
                         {"bot_id": bot, "lease": got["lease"], "result": 955, "duration_ms": 1})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.get_job(jobd, job["id"])["result"], 955)

    def test_a_report_waiting_for_its_next_job_is_handed_one(self):
        """jobd-bot's loop: it reports its job and waits for the next in one request."""
        jobd = self.start()
        bot = self.register_bot(jobd, "chained", ["sum"])
        first = self.submit(jobd, "sum", 1, 2)
        lease = self.claim_one(jobd, bot, ["sum"])["lease"]
        stats = lambda: jobd.request("GET", "/stats").body  # noqa: E731
        done = {}

        def report_and_wait():
            done["reply"] = jobd.request(
                "POST", "/jobs/complete",
                {"bot_id": bot,
                 "results": [{"id": first["id"], "lease": lease, "result": 3, "duration_ms": 1}],
                 "claim": {"operations": ["sum"], "max": 5, "wait_ms": 10000}},
                timeout=15 * harness.SLOW)

        t = threading.Thread(target=report_and_wait)
        t.start()
        self.wait_for(lambda: stats()["waiting_claims"] == 1, 5, "the report's claim to wait")
        handed = stats()["handed_claims"]
        r = jobd.request("POST", "/jobs", {"operation": "sum", "input": {"a": 3, "b": 4}},
                         headers={"Prefer": "return=minimal"})
        second = self.expect(r, 201, "minimal submit")
        self.assertEqual(second, {"id": second["id"], "status": "processing"})
        t.join(15 * harness.SLOW)
        reply = done["reply"]
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.body["results"][0]["job"]["status"], "succeeded")
        self.assertEqual([j["id"] for j in reply.body["jobs"]], [second["id"]])
        self.assertEqual(stats()["handed_claims"], handed + 1)

    def test_a_bot_going_offline_wakes_a_waiting_claim(self):
        """Bug: the jobs of a bot that said "offline" went back to pending without waking
        anyone, so a waiting bot got them only when its wait ended."""
        jobd = self.start()
        leaving = self.register_bot(jobd, "leaving", ["sum"])
        waiting = self.register_bot(jobd, "waiting", ["sum"])
        job = self.submit(jobd, "sum", 2, 3)
        r = self.claim(jobd, leaving, ["sum"])
        self.assertEqual([j["id"] for j in r.body["jobs"]], [job["id"]])
        join = self.claim_in_background(jobd, waiting)
        stats = lambda: jobd.request("GET", "/stats").body  # noqa: E731
        self.wait_for(lambda: stats()["waiting_claims"] == 1, 5, "the claim to wait")
        r = jobd.request("POST", f"/bots/{leaving}/heartbeat", {"state": "offline", "jobs": []})
        self.assertEqual(r.status, 200, r.body)
        offline = time.monotonic()
        reply, at = join()
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual([j["id"] for j in reply.body["jobs"]], [job["id"]])
        self.assertLess(at - offline, 1.0 * harness.SLOW,
                        "the waiting claim must wake when the job is pending again")

    def test_idle_claim_returns_204_after_wait_ms(self):
        jobd = self.start()
        bot = self.register_bot(jobd, "idle", ["sum"])
        t0 = time.monotonic()
        r = self.claim(jobd, bot, ["sum"], wait_ms=1500)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 204, r.body)
        self.assertIsNone(r.body, "204 has no body")
        self.assertTrue(r.headers.get("X-Request-Id"))
        self.assertGreaterEqual(took, 1.4, "returned before wait_ms")
        self.assertLess(took, 1.5 + 1.5 * harness.SLOW, "returned long after wait_ms")
        t0 = time.monotonic()
        r = self.claim(jobd, bot, ["sum"], wait_ms=0)
        self.assertEqual(r.status, 204)
        self.assertLess(time.monotonic() - t0, 0.5 * harness.SLOW, "wait_ms 0 does not wait")

    def test_twenty_waiting_bots_do_not_block_the_server(self):
        jobd = self.start()
        bots = [self.register_bot(jobd, f"w{i}", ["sum"]) for i in range(20)]
        wait_ms = 4000
        t0 = time.monotonic()
        replies = {}

        def wait_claim(b):
            replies[b] = self.claim(jobd, b, ["sum"], wait_ms=wait_ms)

        threads = [threading.Thread(target=wait_claim, args=(b,)) for b in bots]
        for t in threads:
            t.start()
        time.sleep(0.5)  # let the 20 claims arrive and start waiting

        slowest = 0.0
        for _ in range(10):
            s = time.monotonic()
            self.assertEqual(jobd.request("GET", "/health", timeout=3).status, 200)
            slowest = max(slowest, time.monotonic() - s)
        s = time.monotonic()
        job = self.submit(jobd, "sum", 1, 2)
        submit_took = time.monotonic() - s
        checked_by = time.monotonic() - t0
        for t in threads:
            t.join(15 * harness.SLOW)

        self.assertLess(checked_by, wait_ms / 1000, "the checks ran while the claims waited")
        self.assertLess(slowest, 0.5 * harness.SLOW, "/health blocked by waiting claims")
        self.assertLess(submit_took, 0.5 * harness.SLOW, "POST /jobs blocked by waiting claims")
        self.assertEqual(len(replies), 20, "every waiting claim returned")
        got = [b for b, r in replies.items() if r.status == 200]
        self.assertEqual(len(got), 1, "exactly one waiting bot gets the job")
        self.assertEqual(replies[got[0]].body["jobs"][0]["id"], job["id"])
        self.assertEqual(sorted(r.status for r in replies.values()), [200] + [204] * 19)
        self.assertLess(time.monotonic() - t0, wait_ms / 1000 + 3 * harness.SLOW)

    def test_a_job_wakes_one_waiting_bot_not_all(self):
        """The thundering herd: a job used to wake every waiting claim, so with N idle
        bots each job cost N claims (N-1 of them finding nothing).  Now it goes to one,
        handed over, and wakes none."""
        jobd = self.start()
        bots = [self.register_bot(jobd, f"idle{i}", ["sum"]) for i in range(8)]
        replies = {}

        def wait_claim(b):
            replies[b] = self.claim(jobd, b, ["sum"], wait_ms=6000)

        threads = [threading.Thread(target=wait_claim, args=(b,)) for b in bots]
        for t in threads:
            t.start()
        stats = lambda: jobd.request("GET", "/stats").body  # noqa: E731
        self.wait_for(lambda: stats()["waiting_claims"] == 8, 5, "8 parked claims")
        before = stats()["woken_claims"]
        job = self.submit(jobd, "sum", 1, 2)
        self.wait_for(lambda: any(r.status == 200 for r in replies.values()), 3,
                      "a waiting bot to get the job")
        time.sleep(0.3)  # any further wake-ups would have happened by now
        after = stats()
        self.assertLessEqual(after["woken_claims"] - before, 2,
                             "one job woke more than two of eight waiting claims")
        self.assertEqual(after["handed_claims"], 1)
        self.assertEqual(after["waiting_claims"], 7, "the other seven wait on")
        for t in threads:
            t.join(10 * harness.SLOW)
        got = [r for r in replies.values() if r.status == 200]
        self.assertEqual([r.body["jobs"][0]["id"] for r in got], [job["id"]])

    def test_a_wake_taken_by_other_work_is_passed_on(self):
        """A bot serving two operations is woken for a sum job but, claiming one job,
        takes a more urgent mul job submitted with it.  The sum job must reach the other
        waiting bot at once, not when its wait runs out."""
        jobd = self.start()
        both = self.register_bot(jobd, "both", ["sum", "mul"])
        sums = self.register_bot(jobd, "sums", ["sum"])
        replies, at = {}, {}

        def wait_claim(b, ops):
            replies[b] = self.claim(jobd, b, ops, wait_ms=8000)
            at[b] = time.monotonic()

        t1 = threading.Thread(target=wait_claim, args=(both, ["sum", "mul"]))
        t1.start()
        stats = lambda: jobd.request("GET", "/stats").body  # noqa: E731
        self.wait_for(lambda: stats()["waiting_claims"] == 1, 5, "the first claim parked")
        t2 = threading.Thread(target=wait_claim, args=(sums, ["sum"]))
        t2.start()
        self.wait_for(lambda: stats()["waiting_claims"] == 2, 5, "both claims parked")
        batch = [{"operation": "sum", "input": {"a": 1, "b": 2}},
                 {"operation": "mul", "input": {"a": 3, "b": 4}, "priority": 10}]
        created = self.expect(jobd.request("POST", "/jobs", batch), 201, "POST /jobs")["jobs"]
        submitted = time.monotonic()
        t1.join(12 * harness.SLOW)
        t2.join(12 * harness.SLOW)
        self.assertEqual(replies[both].status, 200, replies[both].body)
        self.assertEqual(replies[both].body["jobs"][0]["id"], created[1]["id"], "mul first")
        self.assertEqual(replies[sums].status, 200, replies[sums].body)
        self.assertEqual(replies[sums].body["jobs"][0]["id"], created[0]["id"])
        self.assertLess(at[sums] - submitted, 1.0 * harness.SLOW,
                        "the sum job waited for the second bot's wait to run out")


if __name__ == "__main__":
    harness.main()
