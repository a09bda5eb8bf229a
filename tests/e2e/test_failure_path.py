"""test_failure_path.py - jobs a bot cannot compute end `failed` with an error that says
why (division by zero, int64 overflow), never stuck in processing, and are in the
datalake like any finished job."""

import harness

CASES = [
    # (operation, a, b, words the error must contain)
    ("quotient", 7, 0, "division by zero"),
    ("remainder", 7, 0, "division by zero"),
    ("product", harness.INT64_MAX, 2, "overflow"),
    ("sum", harness.INT64_MAX, 1, "overflow"),
    ("difference", harness.INT64_MIN, 1, "overflow"),
    ("power", 2, 63, "overflow"),
]


class FailurePath(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def test_failures_are_reported_with_their_cause(self):
        jobd = self.start_jobd()
        self.start_bots(jobd, 1)
        submitted = [(self.submit(jobd, op, a, b), op, a, b, words) for op, a, b, words in CASES]
        # A job the same bot can compute, after the failures: the bot keeps working.
        ok = self.submit(jobd, "quotient", -7, 2)

        for created, op, a, b, words in submitted:
            with self.subTest(op=op, a=a, b=b):
                self.assertEqual(harness.expected_result(op, a, b), ("error", words))
                job = self.wait_finished(jobd, created["id"])
                self.assertEqual(job["status"], "failed", job)
                self.assertIn(words, job["error"] or "")
                self.assertIsNone(job["result"])
                self.assertEqual(job["input"], {"a": a, "b": b}, "int64 input kept exactly")
                self.assertEqual([h["outcome"] for h in job["history"]], ["failed"])
                self.assertIn(words, job["history"][0]["error"] or "")
                self.wait_job_log(jobd, job["id"], rf"job (\S+) failed: .*{words}")

        job = self.wait_finished(jobd, ok["id"])
        self.assertEqual((job["status"], job["result"]), ("succeeded", -3),
                         "quotient truncates toward zero, as int64 division does")

        ids = [c["id"] for c, *_ in submitted]
        self.wait_for(lambda: all(i in jobd.datalake_count() for i in ids), 10,
                      "the failed jobs' datalake lines")
        lake = {o["id"]: o for _, o in jobd.datalake()}
        rows = jobd.db_jobs()
        for created, op, a, b, words in submitted:
            with self.subTest(op=op, where="datalake"):
                line = lake[created["id"]]
                self.assertEqual(line["status"], "failed")
                self.assertIn(words, line["error"])
                self.assertEqual(harness.normalise_api_job(line), rows[created["id"]])
        self.assertEqual(jobd.datalake_count()[ids[0]], 1)

        stats = jobd.request("GET", "/stats").body
        self.assertEqual(stats["jobs"]["failed"], len(CASES), stats)
        self.assertEqual(stats["jobs"]["processing"], 0, "nothing stuck in processing")
        self.assertEqual(stats["operations"]["quotient"]["failed"], 1, stats)


if __name__ == "__main__":
    harness.main()
