"""test_bot_chain.py - the stock bot reports its jobs and claims the next ones in one request
(POST /jobs/complete with a "claim"), and long-polls POST /jobs/claim only when it has no
job in hand.  Over a queue worked one job at a time: far fewer plain claims than jobs,
every job run once and in the datalake once; a job the chained reply leases is held (its
lease renewed by the heartbeat) from the moment it arrives; and a bot stopped in the middle
of a chained run leaves no job leased to it."""

import re

import harness


def plain_claims(jobd):
    return len(re.findall(r"request \S+ POST /jobs/claim \d+", jobd.log()))


def batch_reports(jobd):
    return len(re.findall(r"request \S+ POST /jobs/complete 200", jobd.log()))


class BotChain(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def submit_all(self, jobd, specs):
        return [j["id"] for j in self.expect(jobd.request("POST", "/jobs", specs), 201,
                                             f"submit {len(specs)}")["jobs"]]

    def wait_all_finished(self, jobd, n, timeout):
        def finished():
            s = jobd.request("GET", "/stats").body["jobs"]
            return s if s["succeeded"] + s["failed"] >= n else None
        return self.wait_for(finished, timeout, f"{n} jobs to finish", interval=0.1)

    def test_one_at_a_time_the_report_claims_the_next_job(self):
        n = 150
        jobd = self.start_jobd()
        specs = [{"operation": "sum", "input": {"a": i, "b": 1000}} for i in range(n)]
        specs[40] = {"operation": "quotient", "input": {"a": 7, "b": 0}}
        ids = self.submit_all(jobd, specs)
        bot, = self.start_bots(jobd, 1, ["sum", "quotient"])
        stats = self.wait_all_finished(jobd, n, 60)
        self.assertEqual((stats["succeeded"], stats["failed"]), (n - 1, 1), stats)

        # One request per job; a plain claim at the start and once the queue is empty.
        claims, reports = plain_claims(jobd), batch_reports(jobd)
        self.assertLessEqual(claims, 3, f"{claims} plain claims for {n} jobs: no chain")
        self.assertGreaterEqual(reports, n, "every job reported through POST /jobs/complete")
        self.assertLessEqual(reports, n + 2, "one report per job")
        self.assertNotRegex(jobd.log(), r"POST /jobs/[0-9a-f-]{36}/(complete|fail)",
                            "no job was reported on its own")

        for i, jid in enumerate(ids):
            job = self.get_job(jobd, jid)
            if i == 40:
                self.assertEqual(job["status"], "failed", job)
                self.assertIn("division by zero", job["error"])
            else:
                self.assertEqual((job["status"], job["result"]), ("succeeded", i + 1000), job)
            self.assertEqual(len(job["history"]), 1, job["history"])
        self.assert_datalake_once(jobd, ids)

        # The bot logs each job as it did when it reported them one request each.
        log = bot.log()
        self.assertEqual(len(re.findall(r"\bJob \S+ completed: \d+ sum 1000 = ", log)), n - 1)
        self.wait_job_log(bot, ids[40], r"Job (\S+) failed: 7 quotient 0: division by zero")
        self.assertNotIn("refused", log)
        self.assertEqual(bot.stop(), 0)

    def test_a_chained_job_is_held_from_the_start(self):
        # Leases of 1 s, work of 1.5 s: a job leased by a report survives only if the
        # heartbeat names it from the moment the reply brings it.
        jobd = self.start_jobd(args=["--lease-ms", "1000"])
        ids = self.submit_all(jobd, [{"operation": "sum", "input": {"a": i, "b": 1}}
                                     for i in range(4)])
        bot, = self.start_bots(jobd, 1, ["sum"], args=["--work-ms", "1500",
                                                       "--heartbeat-ms", "200"])
        self.wait_all_finished(jobd, 4, 30)
        for i, jid in enumerate(ids):
            job = self.get_job(jobd, jid)
            self.assertEqual((job["status"], job["result"]), ("succeeded", i + 1), job)
            self.assertEqual([h["outcome"] for h in job["history"]], ["succeeded"],
                             "the lease ran out: the job was not held")
        self.assertLessEqual(plain_claims(jobd), 2, "the jobs came by the chain")
        self.assertNotIn("taken back", bot.log())
        self.assertEqual(bot.stop(), 0)

    def test_stop_during_a_chained_run_leaves_no_job_leased(self):
        n = 30
        jobd = self.start_jobd()
        ids = self.submit_all(jobd, [{"operation": "sum", "input": {"a": i, "b": 1}}
                                     for i in range(n)])
        bot, = self.start_bots(jobd, 1, ["sum"], args=["--work-ms", "150", "--batch", "2"])

        def succeeded():
            return jobd.request("GET", "/stats").body["jobs"]["succeeded"]
        self.wait_for(lambda: succeeded() >= 6, 20, "a few chained jobs")
        self.assertEqual(bot.stop(), 0)
        self.assertIn("Stop requested", bot.log())

        # The jobs in hand were reported, and the stopping bot claimed none after them.
        processing = jobd.request("GET", "/jobs?status=processing&limit=1000").body["jobs"]
        self.assertEqual(processing, [], "jobs still leased to the stopped bot")
        done = succeeded()
        self.assertLess(done, n, "the bot stopped before the queue was empty")
        s = jobd.request("GET", "/stats").body["jobs"]
        self.assertEqual(s["pending"], n - done, s)
        self.assertNotIn("not accepted within", bot.log())

        # Another bot finishes the rest: every job ran once, none after an expired lease.
        self.start_bots(jobd, 1, ["sum"], first=2)
        self.wait_all_finished(jobd, n, 30)
        for i, jid in enumerate(ids):
            job = self.get_job(jobd, jid)
            self.assertEqual((job["status"], job["result"]), ("succeeded", i + 1), job)
            self.assertEqual([h["outcome"] for h in job["history"]], ["succeeded"], job)
        self.assert_datalake_once(jobd, ids)


if __name__ == "__main__":
    harness.main()
