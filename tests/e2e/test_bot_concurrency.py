"""test_bot_concurrency.py - `jobd-bot --concurrency N` works N jobs at once in one
process: the server sees the one bot hold several jobs at the same moment, every job is
computed right and recorded once, and the bot still stops cleanly on SIGTERM."""

import harness

N = 40


class BotConcurrency(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def test_one_bot_works_several_jobs_at_once(self):
        jobd = self.start_jobd()
        bot, = self.start_bots(jobd, 1, ["sum"], args=["--concurrency", "4", "--work-ms", "300"])
        ids = [self.submit(jobd, "sum", i, 1000)["id"] for i in range(N)]

        most = 0

        def all_done():
            nonlocal most
            bots = jobd.request("GET", "/bots").body["bots"]
            most = max([most] + [len(b["jobs"]) for b in bots])
            s = jobd.request("GET", "/stats").body["jobs"]
            return s["succeeded"] + s["failed"] >= N
        self.wait_for(all_done, 60, f"{N} jobs with one bot", interval=0.05)
        self.assertGreaterEqual(most, 2, "the bot never held two jobs at once")
        self.assertLessEqual(most, 4, "more jobs in hand than claim loops")

        rows = jobd.db_jobs()
        for i, jid in enumerate(ids):
            self.assertEqual((rows[jid]["status"], rows[jid]["result"]), ("succeeded", i + 1000))
            self.assertEqual(len(self.get_job(jobd, jid)["history"]), 1)
        self.assertEqual(len({b["id"] for b in jobd.request("GET", "/bots").body["bots"]}), 1,
                         "the claim loops share one registration")
        self.assertEqual(bot.stop(), 0)

    def test_batch_claims_are_reported_in_one_request(self):
        jobd = self.start_jobd()
        self.start_bots(jobd, 1, ["sum", "quotient"], args=["--batch", "10"])
        specs = [{"operation": "sum", "input": {"a": i, "b": 1}} for i in range(60)]
        specs[7] = {"operation": "quotient", "input": {"a": 7, "b": 0}}
        ids = [j["id"] for j in self.expect(jobd.request("POST", "/jobs", specs), 201,
                                            "submit 60")["jobs"]]
        for jid in ids:
            self.wait_finished(jobd, jid)
        for i, jid in enumerate(ids):
            job = self.get_job(jobd, jid)
            if i == 7:
                self.assertEqual(job["status"], "failed")
                self.assertIn("division by zero", job["error"])
            else:
                self.assertEqual((job["status"], job["result"]), ("succeeded", i + 1))
            self.assertEqual(len(job["history"]), 1)
        log = jobd.log()
        self.assertIn("POST /jobs/complete 200", log, "the bot reports batches in one request")
        self.assertNotRegex(log, r"POST /jobs/[0-9a-f-]{36}/(complete|fail)",
                            "no job was reported on its own")

    def test_concurrency_times_batch_is_bounded(self):
        jobd = self.start_jobd()
        bot, = self.start_bots(jobd, 1, ["sum"], args=["--concurrency", "20", "--batch", "10"])
        self.wait_for(lambda: not bot.alive(), 10, "jobd-bot to refuse its options")
        self.assertEqual(bot.popen.returncode, 2)
        self.assertIn("at most 100", bot.log())


if __name__ == "__main__":
    harness.main()
