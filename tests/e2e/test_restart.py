"""test_restart.py - jobd stopped (SIGTERM) in the middle of 300 jobs and started again
on the same data directory and port: bots ride it out, every job ends succeeded exactly
once in the database and the datalake, none is left stuck in processing, and every
program exits 0 on SIGTERM; a claim cut off by the shutdown is not lost; and a job claimed
before the restart is logged as fully when it finishes after it."""

import threading

import harness

N = 300


class Restart(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def stats(self, jobd):
        return jobd.request("GET", "/stats").body["jobs"]

    def test_restart_while_bots_work(self):
        args = ["--lease-ms", "5000"]
        jobd = self.start_jobd(args=args)
        bots = self.start_bots(jobd, 3, ["sum", "product"])
        specs = [("sum" if i % 2 else "product", i, 1000 + i) for i in range(N)]
        expected = {}

        def submit(server, part):
            for op, a, b in part:
                expected[self.submit(server, op, a, b)["id"]] = (op, a, b)

        submit(jobd, specs[:N // 2])
        self.wait_for(lambda: self.stats(jobd)["succeeded"] >= 20, 20, "bots to get going")
        self.assertEqual(jobd.stop(), 0, "jobd exits 0 on SIGTERM")
        self.assertFalse(jobd.killed, "jobd stopped within the timeout")

        jobd2 = self.start_jobd(data_dir=jobd.data_dir, port=jobd.port, args=args,
                                name="jobd-restarted")
        submit(jobd2, specs[N // 2:])
        self.assertEqual(len(expected), N)

        def all_done():
            s = self.stats(jobd2)
            return s if s["succeeded"] + s["failed"] >= N else None
        s = self.wait_for(all_done, 60, f"{N} jobs to finish after the restart", interval=0.2)
        self.assertEqual((s["succeeded"], s["failed"], s["processing"], s["pending"]),
                         (N, 0, 0, 0), s)

        r = jobd2.request("GET", "/jobs?limit=1000")
        jobs = {j["id"]: j for j in r.body["jobs"]}
        self.assertEqual(set(jobs), set(expected))
        for jid, (op, a, b) in expected.items():
            self.assertEqual((jobs[jid]["status"], jobs[jid]["result"]),
                             ("succeeded", harness.expected_result(op, a, b)[1]), jobs[jid])
        # Every attempt is accounted for: one succeeded, any others taken back.
        for jid in list(expected)[::10]:
            outcomes = [h["outcome"] for h in self.get_job(jobd2, jid)["history"]]
            self.assertEqual(outcomes.count("succeeded"), 1, outcomes)
            self.assertTrue(set(outcomes) <= {"succeeded", "expired", "released"}, outcomes)

        rows = jobd2.db_jobs()
        self.assertEqual(set(rows), set(expected))
        self.assertEqual({r["status"] for r in rows.values()}, {"succeeded"})
        barrier = self.datalake_barrier(jobd2)
        counts = jobd2.datalake_count()
        self.assertEqual(counts.pop(barrier), 1)
        self.assertEqual(set(counts), set(expected), "every job in the datalake")
        self.assertEqual({i: c for i, c in counts.items() if c != 1}, {}, "duplicate lines")
        lake = {o["id"]: harness.normalise_api_job(o) for _, o in jobd2.datalake()}
        self.assertEqual([i for i in expected if lake[i] != rows[i]][:5], [],
                         "datalake lines that differ from the DB")

        for b in bots:
            self.assertEqual(b.stop(), 0, f"{b.name} exits 0 on SIGTERM")
            self.assertFalse(b.killed, f"{b.name} stopped within the timeout")
        self.assertEqual(jobd2.stop(), 0)

    def test_claims_cut_off_by_shutdown_are_not_lost(self):
        """A claim jobd answers while stopping must reach the bot or not happen: a job
        leased under a lease no bot received stays `processing` for as long as that bot
        heartbeats (heartbeats renew all its leases) - the seed's stuck job."""
        jobd = self.start_jobd()
        bot = self.register_bot(jobd, "claimer", ["sum"])
        for i in range(400):
            self.submit(jobd, "sum", i, i)
        received, stop = set(), threading.Event()

        def claim_loop():
            while not stop.is_set():
                try:
                    r = self.claim(jobd, bot, ["sum"], timeout=5)
                except OSError:
                    continue  # refused or reset: the server is going away
                if r.status == 200:
                    received.update(j["lease"] for j in r.body["jobs"])
                elif r.status != 204:
                    self.assertEqual((r.status, r.body["error"]["code"]),
                                     (503, "shutting_down"), r.body)
        threads = [threading.Thread(target=claim_loop) for _ in range(8)]
        for t in threads:
            t.start()
        self.wait_for(lambda: len(received) >= 50, 10, "claims to flow")
        self.assertEqual(jobd.stop(), 0)
        stop.set()
        for t in threads:
            t.join(10)
        leased = {r["id"]: r["lease"] for r in jobd.db_query(
            "SELECT id, lease FROM jobs WHERE status = 'processing'")}
        lost = {i: lease for i, lease in leased.items() if lease not in received}
        self.assertEqual(lost, {}, f"{len(lost)} jobs leased to {bot} although no claim reply "
                         f"carried their lease ({len(received)} replies did)")

    def test_finish_line_without_the_claims_note(self):
        """A report under `Prefer: return=minimal` logs its job's finish from the note its
        claim left (claimnote.h), not from a read of the job.  A job claimed before a
        restart has no note in the new process: its finish line reads the job and says
        the same, operation, input and bot included."""
        minimal = {"Prefer": "return=minimal"}
        jobd = self.start_jobd()
        bot = self.register_bot(jobd, "hand", ["sum"])
        before = self.submit(jobd, "sum", 613, 342)
        after = self.submit(jobd, "sum", 1, 2)
        r = jobd.request("POST", "/jobs/claim", {"bot_id": bot, "operations": ["sum"], "max": 2},
                         headers=minimal)
        leases = {j["id"]: j["lease"] for j in self.expect(r, 200, "claim")["jobs"]}
        self.assertEqual(set(leases), {before["id"], after["id"]})

        def complete(server, job, result):
            r = server.request("POST", f"/jobs/{job['id']}/complete",
                               {"bot_id": bot, "lease": leases[job["id"]], "result": result,
                                "duration_ms": 3}, headers=minimal)
            self.assertEqual(self.expect(r, 200, "complete")["status"], "succeeded")

        complete(jobd, after, 3)  # with the note
        self.wait_job_log(jobd, after["id"], r"job (\S+) succeeded: 1 sum 2 = 3 by hand in 3 ms")
        self.assertEqual(jobd.stop(), 0)
        jobd2 = self.start_jobd(data_dir=jobd.data_dir, port=jobd.port, name="jobd-2")
        complete(jobd2, before, 955)  # no note: read back
        self.wait_job_log(jobd2, before["id"],
                          r"job (\S+) succeeded: 613 sum 342 = 955 by hand in 3 ms")


if __name__ == "__main__":
    harness.main()
