"""test_leases.py - leases and bot health, with the test acting as a bot over HTTP: a
heartbeat renews only the jobs it names and carries their progress; its reply says which
of them were cancelled or taken back; a bot that stops heartbeating becomes unhealthy, then
offline, and loses its jobs at once (worker_lost) without using their retry budget; every
late report is refused with a 409 that says when and why; GET /bots and explain show it."""

import time

import harness

TOKEN = harness.ADMIN_TOKEN


class Leases(harness.E2ETestCase):
    def heartbeat(self, jobd, bot, jobs=None, state="processing"):
        body = {"state": state}
        if jobs is not None:
            body["jobs"] = jobs
        return self.expect(jobd.request("POST", f"/bots/{bot}/heartbeat", body), 200,
                           "POST /bots/heartbeat")

    def report(self, jobd, bot, job):
        return jobd.request("POST", f"/jobs/{job['id']}/complete",
                            {"bot_id": bot, "lease": job["lease"], "result": 1,
                             "duration_ms": 1})

    def test_heartbeat_renews_what_it_names_and_tells_what_was_taken(self):
        jobd = self.start_jobd(args=["--lease-ms", "1500", "--heartbeat-ms", "300",
                                     "--unhealthy-after", "1000", "--offline-after", "1000"])
        bot = self.register_bot(jobd, "ghost", ["sum"])
        for i in range(3):
            self.submit(jobd, "sum", i, i)
        r = self.expect(jobd.request("POST", "/jobs/claim",
                                     {"bot_id": bot, "operations": ["sum"], "max": 3}),
                        200, "claim 3")
        a, b, c = r["jobs"]

        # Name a and c (with progress) for longer than b's lease: b runs out, a and c stay.
        deadline = time.monotonic() + 2.5 * harness.SLOW
        while time.monotonic() < deadline:
            reply = self.heartbeat(jobd, bot, [{"id": a["id"], "progress": {"done": 40}},
                                               {"id": c["id"]}])
            self.assertEqual(reply["jobs"]["cancelled"], [], reply)
            time.sleep(0.2)
        self.wait_for(lambda: self.get_job(jobd, b["id"])["status"] == "pending", 3,
                      "the unnamed job's lease to run out")
        ja = self.get_job(jobd, a["id"])
        self.assertEqual((ja["status"], ja["progress"]), ("processing", {"done": 40}), ja)
        hist = self.get_job(jobd, b["id"])["history"]
        self.assertEqual([h["outcome"] for h in hist], ["expired"], hist)

        # The bot still believes it holds b: the reply says it is lost.
        reply = self.heartbeat(jobd, bot, [{"id": a["id"]}, {"id": b["id"]}, {"id": c["id"]}])
        self.assertEqual(sorted(reply["jobs"]["held"]), sorted([a["id"], c["id"]]), reply)
        self.assertEqual((reply["jobs"]["lost"], reply["jobs"]["cancelled"]), ([b["id"]], []))
        self.assertEqual(sorted(reply["bot"]["jobs"]), sorted([a["id"], c["id"]]))
        err = self.assert_error(self.report(jobd, bot, b), 409, "lease_expired",
                                [b["lease"], "expired at"])
        self.assertIn(b["id"], err["message"])

        # Explain a processing job: who holds it, when seen, when the lease runs out.
        ex = self.expect(jobd.request("GET", f"/jobs/{a['id']}/explain"), 200, "explain")
        self.assertEqual((ex["status"], ex["bot_name"], ex["progress"]),
                         ("processing", "ghost", {"done": 40}), ex)
        self.assertRegex(ex["reason"], r"^leased by ghost \(attempt 1, bot processing\), "
                                       r"last seen \d+ s ago, lease expires in \d+ s")
        self.assertTrue(0 < ex["lease_expires_in_ms"] <= 1500, ex)

        # An admin cancels a: the next heartbeat says so, and a report is refused.
        r = jobd.request("POST", f"/jobs/{a['id']}/cancel", {"reason": "duplicate order"},
                         token=TOKEN)
        self.assertEqual(self.expect(r, 200, "cancel")["status"], "cancelled")
        reply = self.heartbeat(jobd, bot, [{"id": a["id"]}, {"id": c["id"]}])
        self.assertEqual((reply["jobs"]["cancelled"], reply["jobs"]["held"]),
                         ([a["id"]], [c["id"]]), reply)
        self.assert_error(self.report(jobd, bot, a), 409, "job_cancelled",
                          ["cancelled", "duplicate order"])
        ja = self.get_job(jobd, a["id"])
        self.assertEqual([h["outcome"] for h in ja["history"]], ["cancelled"])
        self.assertEqual([(ev["action"], ev["reason"]) for ev in ja["events"]],
                         [("cancel", "duplicate order")])

        # c was reported while the heartbeat still named it: it is neither lost nor held.
        self.assertEqual(self.report(jobd, bot, c).status, 200)
        reply = self.heartbeat(jobd, bot, [{"id": c["id"]}], state="ready")
        self.assertEqual(reply["jobs"], {"held": [], "cancelled": [], "lost": []})
        self.assertEqual(reply["bot"]["jobs_succeeded"], 1, reply["bot"])
        self.assertEqual(reply["bot"]["jobs_lost"], 1, reply["bot"])

    def test_silent_bot_turns_unhealthy_then_offline_and_loses_its_jobs(self):
        jobd = self.start_jobd(args=["--lease-ms", "60000", "--heartbeat-ms", "300",
                                     "--unhealthy-after", "3", "--offline-after", "6"])
        bot = self.register_bot(jobd, "quiet", ["sum"])
        other = self.register_bot(jobd, "steady", ["sum"])
        job = self.submit(jobd, "sum", 613, 342)
        claimed = self.claim_one(jobd, bot, ["sum"])
        self.heartbeat(jobd, bot, [{"id": job["id"]}])
        t0 = time.monotonic()

        def bot_state(bot_id):
            bots = self.expect(jobd.request("GET", "/bots"), 200, "GET /bots")["bots"]
            return next(b for b in bots if b["id"] == bot_id)

        # "steady" keeps heartbeating; "quiet" says nothing.
        def unhealthy():
            self.heartbeat(jobd, other, [], state="ready")
            return bot_state(bot)["state"] == "unhealthy"
        self.wait_for(unhealthy, 5, "the silent bot to be unhealthy", interval=0.1)
        self.assertLess(time.monotonic() - t0, (0.9 + 0.6 + 0.5) * harness.SLOW + 0.5)
        j = self.get_job(jobd, job["id"])
        self.assertEqual((j["status"], j["lost"], j["failures"]), ("pending", 1, 0), j)
        self.assertEqual(j["history"][0]["outcome"], "worker_lost")
        self.assertIn("quiet", j["history"][0]["error"])
        self.assertIn("missed its heartbeats", j["history"][0]["error"])
        b = bot_state(bot)
        self.assertEqual((b["jobs"], b["jobs_lost"]), ([], 1), b)
        self.assertEqual(bot_state(other)["state"], "ready")

        def offline():
            self.heartbeat(jobd, other, [], state="ready")
            return bot_state(bot)["state"] == "offline"
        self.wait_for(offline, 5, "the silent bot to be offline", interval=0.1)

        # Explain: pending, one live bot offers sum, and the attempt was taken back.
        ex = self.expect(jobd.request("GET", f"/jobs/{job['id']}/explain"), 200, "explain")
        self.assertEqual((ex["status"], ex["ahead"], ex["live_bots"]), ("pending", 0, 1), ex)
        self.assertIn("taken back", ex["reason"])

        # The bot comes back: told the job is lost; its report is refused and says why.
        reply = self.heartbeat(jobd, bot, [{"id": job["id"]}])
        self.assertEqual((reply["bot"]["state"], reply["jobs"]["lost"]),
                         ("processing", [job["id"]]), reply)
        err = self.assert_error(self.report(jobd, bot, claimed), 409, "lease_released",
                                ["released at", "missed its heartbeats"])
        self.assertIn(claimed["lease"], err["message"])
        self.assertIn("is no longer its own", jobd.log())
        self.assertIn("is unhealthy", jobd.log())

        # The other bot finishes it; the record shows both attempts.
        done = self.claim_one(jobd, other, ["sum"])
        self.assertEqual(self.report(jobd, other, done).status, 200)
        j = self.get_job(jobd, job["id"])
        self.assertEqual([h["outcome"] for h in j["history"]], ["worker_lost", "succeeded"])
        self.assertEqual((j["attempts"], j["lost"], j["failures"]), (2, 1, 0))

    def test_offline_heartbeat_gives_jobs_back(self):
        jobd = self.start_jobd()
        bot = self.register_bot(jobd, "leaving", ["sum"])
        job = self.submit(jobd, "sum", 1, 2)
        self.claim_one(jobd, bot, ["sum"])
        reply = self.heartbeat(jobd, bot, [{"id": job["id"]}], state="offline")
        self.assertEqual((reply["bot"]["state"], reply["jobs"]["lost"]),
                         ("offline", [job["id"]]), reply)
        j = self.get_job(jobd, job["id"])
        self.assertEqual((j["status"], j["history"][0]["outcome"]), ("pending", "worker_lost"))
        self.assert_error(jobd.request("POST", f"/bots/{bot}/heartbeat",
                                       {"state": "ready", "jobs": [{"progress": 1}]}),
                          422, "invalid_field", ["jobs[0]"])


if __name__ == "__main__":
    harness.main()
