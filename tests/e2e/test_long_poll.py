"""test_long_poll.py - POST /jobs/claim with wait_ms: a waiting bot gets a job submitted
later at once, an idle wait ends in 204 after about wait_ms, and many waiting bots hold
no server threads (the server runs with --threads 2 while 20 bots wait, and /health and
POST /jobs stay fast); a job goes to exactly one of them."""

import threading
import time

import harness


class LongPoll(harness.E2ETestCase):
    def start(self):
        return self.start_jobd(args=["--threads", "2"])

    def test_waiting_claim_gets_a_later_job_promptly(self):
        jobd = self.start()
        bot = self.register_bot(jobd, "waiter", ["sum"])
        t0 = time.monotonic()
        done = {}

        def wait_claim():
            done["reply"] = self.claim(jobd, bot, ["sum"], wait_ms=10000)
            done["at"] = time.monotonic()

        waiter = threading.Thread(target=wait_claim)
        waiter.start()
        time.sleep(0.5)  # the scenario: the job arrives while the bot is already waiting
        job = self.submit(jobd, "sum", 613, 342)
        submitted = time.monotonic()
        waiter.join(15 * harness.SLOW)
        reply = done.get("reply")
        self.assertIsNotNone(reply, "claim did not return")
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual([j["id"] for j in reply.body["jobs"]], [job["id"]])
        self.assertTrue(reply.body["jobs"][0]["lease"])
        self.assertLess(done["at"] - submitted, 1.0 * harness.SLOW,
                        "the waiting claim must wake when the job arrives")
        self.assertLess(done["at"] - t0, 5.0, "well before wait_ms (10 s)")

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


if __name__ == "__main__":
    harness.main()
