"""test_crash_jobd.py - jobd killed with SIGKILL at random moments, five times, while four
bots work through 2,000 jobs, and restarted each time on the same data directory and
port.  Nothing may be lost or recorded twice: every job ends succeeded exactly once with
the right result, none is left processing, and the datalake holds each job once, equal to
its database row.  Bots ride the outages out; claims whose reply died with the server
run out their (short) leases, because heartbeats renew only the jobs a bot names.
The same holds with `--sync normal`, whose commits reach the operating system but not
the disk: a crash of jobd alone must not lose them either."""

import random
import signal
import threading
import time

import harness

N = 2000
KILLS = 5


class CrashJobd(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def stats(self, jobd):
        try:
            r = jobd.request("GET", "/stats", timeout=5)
        except OSError:
            return None
        return r.body["jobs"] if r.status == 200 else None

    def test_kill_9_five_times_loses_nothing(self):
        self.kill_and_restart(N, KILLS, [])

    def test_sync_normal_survives_kill_9(self):
        bad = self.run_jobd("--sync", "off", "--data-dir", f"{self.tmp}/unused")
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn("bad value 'off' for --sync", bad.stderr)
        self.kill_and_restart(N // 2, 3, ["--sync", "normal"])

    def kill_and_restart(self, N, KILLS, extra_args):
        rng = random.Random()
        seed = rng.randrange(1 << 30)
        rng.seed(seed)
        args = ["--lease-ms", "3000", "--heartbeat-ms", "500", "--unhealthy-after", "6",
                "--offline-after", "20", *extra_args]
        jobd = self.start_jobd(args=args)
        ops = ("sum", "difference", "product", "remainder")
        specs = [(ops[i % 4], rng.randrange(-10**6, 10**6), rng.randrange(1, 10**4))
                 for i in range(N)]
        expected = {}
        lock = threading.Lock()

        def submit(part):
            for op, a, b in part:
                jid = self.submit(jobd, op, a, b)["id"]
                with lock:
                    expected[jid] = (op, a, b)
        # The bots work while the jobs arrive; the kills come once all are in, so that
        # every submit has its answer and `expected` is exact.
        self.start_bots(jobd, 4, list(ops), args=["--heartbeat-ms", "500", "--wait-ms", "2000"])
        t0 = time.monotonic()
        harness.run_concurrently([lambda p=specs[k::4]: submit(p) for k in range(4)])
        self.assertEqual(len(expected), N)
        print(f"seed {seed}: {N} jobs submitted in {time.monotonic() - t0:.1f} s", flush=True)
        for k in range(KILLS):
            # Bots are back at work on this server (they reconnected by themselves): kill
            # it again at a random moment.
            before = self.stats(jobd)["succeeded"]
            # (Or they have finished: a kill then still tests the restart.)
            self.wait_for(lambda: (self.stats(jobd) or {}).get("succeeded", 0) > before or
                          before >= N, 20,
                          f"bots to carry on after restart {k} (seed {seed})")
            time.sleep(rng.uniform(0.0, 0.6))
            jobd.signal(signal.SIGKILL)
            self.assertEqual(jobd.stop(), -signal.SIGKILL)
            jobd = self.start_jobd(data_dir=jobd.data_dir, port=jobd.port, args=args,
                                   name=f"jobd-{k + 2}")
            print(f"after kill {k + 1}: {self.stats(jobd)}", flush=True)

        def all_done():
            s = self.stats(jobd)
            return s if s and s["succeeded"] + s["failed"] >= N else None
        s = self.wait_for(all_done, 60, f"{N} jobs to finish (seed {seed})", interval=0.3)
        self.assertEqual((s["succeeded"], s["failed"], s["processing"], s["pending"]),
                         (N, 0, 0, 0), s)

        rows = jobd.db_jobs()
        self.assertEqual(set(rows), set(expected))
        wrong = [(jid, rows[jid]["result"]) for jid, (op, a, b) in expected.items()
                 if (rows[jid]["status"], rows[jid]["result"]) !=
                 ("succeeded", harness.expected_result(op, a, b)[1])]
        self.assertEqual(wrong[:5], [], f"jobs with a wrong result (seed {seed})")
        twice = jobd.db_query("SELECT job_id, count(*) AS n FROM attempts WHERE outcome ="
                              " 'succeeded' GROUP BY job_id HAVING count(*) != 1")
        self.assertEqual([(r["job_id"], r["n"]) for r in twice][:5], [],
                         "jobs that succeeded twice")
        outcomes = {r["outcome"] for r in jobd.db_query("SELECT DISTINCT outcome FROM attempts")}
        self.assertTrue(outcomes <= {"succeeded", "expired", "worker_lost"}, outcomes)

        self.assert_datalake_once(jobd, expected)


if __name__ == "__main__":
    harness.main()
