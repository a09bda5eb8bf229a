"""test_thousand_jobs.py - 1,000 jobs of every operation through three real bots: every
job succeeds with the right answer (computed here, independently), and each job is
exactly one row in the database and exactly one line in the datalake."""

import re

import harness

N = 1000


def make_jobs():
    return harness.random_jobs(N, 20250817)


class ThousandJobs(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def test_1000_jobs_over_3_bots(self):
        jobd = self.start_jobd()
        self.start_bots(jobd, 3)
        specs = make_jobs()

        def submit_slice(k):
            return [(self.submit(jobd, op, a, b)["id"], (op, a, b)) for op, a, b in specs[k::4]]

        expected = dict(pair for part in harness.run_concurrently(
            [lambda k=k: submit_slice(k) for k in range(4)]) for pair in part)
        self.assertEqual(len(expected), N, "every submit got its own id")

        def finished():
            s = jobd.request("GET", "/stats").body["jobs"]
            return s if s["succeeded"] + s["failed"] >= N else None
        stats = self.wait_for(finished, 90, "1000 jobs to finish", interval=0.25)
        self.assertEqual((stats["succeeded"], stats["failed"], stats["total"]), (N, 0, N), stats)

        # Through the API, page by page.
        seen, after = {}, None
        while True:
            r = jobd.request("GET", "/jobs?limit=1000" + (f"&after={after}" if after else ""))
            self.assertEqual(r.status, 200, r.body)
            for j in r.body["jobs"]:
                self.assertNotIn(j["id"], seen, "a job listed twice")
                seen[j["id"]] = j
            after = r.body["next"]
            if not after:
                break
        self.assertEqual(set(seen), set(expected))
        self.assertEqual(list(seen), sorted(seen), "listed in id (creation) order")
        wrong = []
        for jid, (op, a, b) in expected.items():
            j = seen[jid]
            want = harness.expected_result(op, a, b)
            if (j["status"], j["result"]) != ("succeeded", want[1]) or j["operation"] != op \
                    or j["input"] != {"a": a, "b": b}:
                wrong.append((op, a, b, want, j["status"], j["result"], j["error"]))
        self.assertEqual(wrong[:10], [], f"{len(wrong)} jobs with a wrong result")
        self.assertTrue({j["bot_name"] for j in seen.values()} <= {"bot-1", "bot-2", "bot-3"})

        # The database: one row per job, matching the API.
        rows = jobd.db_query("SELECT * FROM jobs")
        self.assertEqual(len(rows), N)
        db = {r["id"]: harness.normalise_db_row(r) for r in rows}
        self.assertEqual(set(db), set(expected))
        mismatched = [i for i in db if db[i] != harness.normalise_api_job(seen[i])]
        self.assertEqual(mismatched[:5], [], "DB rows that differ from the API")

        # The datalake: one line per job, equal to its row.
        self.wait_for(lambda: len(jobd.datalake_count()) >= N, 30, "1000 datalake lines",
                      interval=0.25)
        barrier = self.datalake_barrier(jobd)
        counts = jobd.datalake_count()
        counts.pop(barrier)
        self.assertEqual(set(counts), set(expected))
        self.assertEqual({i: c for i, c in counts.items() if c != 1}, {}, "duplicate lines")
        lake_diff = [o["id"] for _, o in jobd.datalake()
                     if o["id"] in db and harness.normalise_api_job(o) != db[o["id"]]]
        self.assertEqual(lake_diff[:5], [], "datalake lines that differ from the DB")

        # A log line about a job must say which job: one distinct name per job, each
        # naming exactly one id (UUIDv7's first 8 hex digits are a timestamp, the same
        # for every job of the same minute, so they do not).
        for who, pattern, text in (
                ("jobd", r"\bjob (\S+) succeeded:",
                 "\n".join(l for l in jobd.log().splitlines() if "e2e_barrier" not in l)),
                ("jobd-bot", r"\bJob (\S+) completed:",
                 "".join(p.log() for p in self.procs if p.name.startswith("bot-")))):
            names = re.findall(pattern, text)
            self.assertEqual(len(names), N, f"{who}: one line per job")
            ambiguous = [n for n in set(names) if sum(n in i for i in expected) != 1]
            self.assertEqual((len(set(names)), ambiguous[:3]), (N, []),
                             f"{who} log lines do not tell the jobs apart")


if __name__ == "__main__":
    harness.main()
