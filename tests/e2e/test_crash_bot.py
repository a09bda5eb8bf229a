"""test_crash_bot.py - real bots that die or freeze while holding jobs.  A bot killed with
SIGKILL loses its jobs when their leases run out (within lease + 1 s), other bots finish
them, and the dead bot's complete replayed afterwards is refused with 409.  A bot frozen
with SIGSTOP past the unhealthy threshold loses its jobs at once (worker_lost); once
SIGCONT wakes it, its heartbeat tells it the jobs were taken and it reports nothing for
them."""

import signal
import time

import harness


class CrashBot(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def held_by(self, jobd, bot_name):
        return {j["id"] for j in jobd.request("GET", "/jobs?status=processing&limit=1000")
                .body["jobs"] if j["bot_name"] == bot_name}

    def test_killed_bot_jobs_return_within_lease(self):
        lease_s = 2
        jobd = self.start_jobd(args=["--lease-ms", str(lease_s * 1000), "--heartbeat-ms", "400",
                                     "--unhealthy-after", "100", "--offline-after", "100"])
        jobs = [self.submit(jobd, "sum", i, 1000)["id"] for i in range(3)]
        slow, = self.start_bots(jobd, 1, ["sum"], args=["--batch", "3", "--work-ms", "60000",
                                                        "--heartbeat-ms", "400"])
        self.wait_for(lambda: self.held_by(jobd, "bot-1") == set(jobs), 10,
                      "bot-1 to hold all three jobs")
        time.sleep(1.0)  # a few heartbeats renew the leases: only the kill ends them
        self.assertEqual(self.held_by(jobd, "bot-1"), set(jobs), "renewed by heartbeats")
        leases = {r["job_id"]: (r["lease"], r["bot_id"]) for r in jobd.db_query(
            "SELECT job_id, lease, bot_id FROM attempts WHERE outcome = 'running'")}

        slow.signal(signal.SIGKILL)
        killed = time.monotonic()
        self.wait_for(lambda: not self.held_by(jobd, "bot-1"), lease_s + 3,
                      "bot-1's jobs to go back to pending", interval=0.05)
        self.assertLessEqual(time.monotonic() - killed, (lease_s + 1) * harness.SLOW,
                             "back to pending within lease + 1 s")

        self.start_bots(jobd, 1, ["sum"], first=2)
        for jid, i in zip(jobs, range(3)):
            j = self.wait_finished(jobd, jid)
            self.assertEqual((j["status"], j["result"], j["bot_name"]),
                             ("succeeded", i + 1000, "bot-2"), j)
            self.assertEqual([h["outcome"] for h in j["history"]], ["expired", "succeeded"])
            self.assertEqual((j["lost"], j["failures"]), (1, 0))

            lease, bot_id = leases[jid]
            r = jobd.request("POST", f"/jobs/{jid}/complete",
                             {"bot_id": bot_id, "lease": lease, "result": -1, "duration_ms": 1})
            self.assert_error(r, 409, "already_finished", [lease])
            self.assertEqual(self.get_job(jobd, jid)["result"], i + 1000, "nothing recorded")

    def test_frozen_bot_is_told_its_jobs_were_taken(self):
        jobd = self.start_jobd(args=["--heartbeat-ms", "300", "--unhealthy-after", "3",
                                     "--offline-after", "100"])
        job = self.submit(jobd, "product", 6, 7)
        frozen, = self.start_bots(jobd, 1, ["product"],
                                  args=["--work-ms", "8000", "--heartbeat-ms", "300"])
        self.wait_for(lambda: self.held_by(jobd, "bot-1") == {job["id"]}, 10,
                      "bot-1 to hold the job")
        frozen.signal(signal.SIGSTOP)
        self.addCleanup(frozen.signal, signal.SIGCONT)  # so that teardown can stop it

        def bot1():
            return next(b for b in jobd.request("GET", "/bots").body["bots"]
                        if b["name"] == "bot-1")
        self.wait_for(lambda: bot1()["state"] == "unhealthy", 5, "bot-1 to be unhealthy")
        self.assertEqual(self.get_job(jobd, job["id"])["history"][0]["outcome"], "worker_lost")
        self.start_bots(jobd, 1, ["product"], first=2)
        done = self.wait_finished(jobd, job["id"])
        self.assertEqual((done["result"], done["bot_name"]), (42, "bot-2"), done)

        frozen.signal(signal.SIGCONT)
        self.wait_job_log(frozen, job["id"], r"Job (\S+) was taken back by the server", 5)
        self.wait_job_log(frozen, job["id"], r"Job (\S+): not reporting completion", 10)
        self.wait_for(lambda: bot1()["state"] in ("ready", "processing"), 5,
                      "bot-1 to be back")
        j = self.get_job(jobd, job["id"])
        self.assertEqual([(h["outcome"], h["bot_name"]) for h in j["history"]],
                         [("worker_lost", "bot-1"), ("succeeded", "bot-2")], j["history"])
        self.assertEqual((j["result"], j["attempts"]), (42, 2))
        b = bot1()
        self.assertEqual((b["jobs_succeeded"], b["jobs_lost"], b["jobs"]), (0, 1, []), b)
        self.assertNotIn("complete refused", frozen.log())
        self.assertEqual(frozen.stop(), 0)


if __name__ == "__main__":
    harness.main()
