"""test_restart.py - jobd stopped (SIGTERM) in the middle of 300 jobs and started again
on the same data directory and port: bots ride it out, every job ends succeeded exactly
once in the database and the datalake, none is left stuck in processing, and every
program exits 0 on SIGTERM."""

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


if __name__ == "__main__":
    harness.main()
