"""test_jobctl.py - the operator's tool against a real server: submit, get, list, stats,
health, release, explain, cancel and retry round trip, and errors that print the API's code and exit 1."""

import re
import subprocess

import harness

MISSING_JOB = "0190d6a5-3c1b-7d2e-8f00-123456789abc"


class Jobctl(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot", "jobctl")

    def ok(self, jobd, *args, **kw):
        r = self.jobctl(jobd, *args, **kw)
        self.assertEqual(r.returncode, 0, f"jobctl {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def fails(self, jobd, code, *args, **kw):
        r = self.jobctl(jobd, *args, **kw)
        self.assertEqual(r.returncode, 1, f"jobctl {' '.join(args)}: {r.stdout}{r.stderr}")
        self.assertIn(code, r.stdout + r.stderr)
        return r

    def test_round_trip(self):
        jobd = self.start_jobd()
        self.ok(jobd, "health")
        self.start_bots(jobd, 1, ["sum"])

        out = self.ok(jobd, "submit", "sum", "613", "342")
        m = harness.UUID_RE.search(out)
        self.assertTrue(m, f"submit prints the job id: {out!r}")
        jid = m.group(0)
        out = self.wait_for(lambda: (lambda o: o if "succeeded" in o else None)(
            self.ok(jobd, "get", jid)), 15, "jobctl get to show succeeded")
        self.assertIn(jid, out)
        self.assertRegex(out, r"\b955\b")
        self.assertIn("bot-1", out)
        self.assertIn(jid, self.ok(jobd, "list"))
        stats = self.ok(jobd, "stats")
        self.assertIn("succeeded", stats)
        self.assertRegex(stats, r"\b1\b")

        # --key: the same submit again prints the first job and makes no second
        first = harness.UUID_RE.search(self.ok(jobd, "submit", "sum", "1", "2", "--key", "k9"))
        again = harness.UUID_RE.search(self.ok(jobd, "submit", "sum", "1", "2", "--key", "k9"))
        self.assertEqual(first.group(0), again.group(0))
        self.assertEqual(self.get_job(jobd, first.group(0))["idempotency_key"], "k9")

        # release: a job held by a bot that went quiet
        out = self.ok(jobd, "submit", "product", "6", "7")
        held = harness.UUID_RE.search(out).group(0)
        quiet = self.register_bot(jobd, "quiet", ["product"])
        self.assertEqual(self.claim_one(jobd, quiet, ["product"])["id"], held)
        self.fails(jobd, "unauthorized", "release", held, token=None)
        self.fails(jobd, "forbidden", "release", held, token="wrong-token")
        self.ok(jobd, "release", held)
        job = self.get_job(jobd, held)
        self.assertEqual(job["status"], "pending")
        self.assertEqual([h["outcome"] for h in job["history"]], ["released"])
        self.assertRegex(self.ok(jobd, "get", held), r"\bpending\b")
        self.fails(jobd, "not_processing", "release", held)

        # explain, cancel and retry: the pending job waits for a bot that offers product
        self.assertIn('"reason"', self.ok(jobd, "explain", held))
        self.fails(jobd, "unauthorized", "cancel", held, token=None)
        self.ok(jobd, "cancel", held, "--reason", "not needed")
        job = self.get_job(jobd, held)
        self.assertEqual(job["status"], "cancelled")
        self.assertIn("not needed", [e["reason"] for e in job["events"]])
        self.assertRegex(self.ok(jobd, "explain", held), r"(?i)cancel")
        self.ok(jobd, "retry", held, "--reason", "needed after all")
        self.assertEqual(self.get_job(jobd, held)["status"], "pending")

    def test_errors_print_the_code_and_exit_1(self):
        jobd = self.start_jobd()
        self.fails(jobd, "not_found", "get", MISSING_JOB)
        self.fails(jobd, "invalid_field", "submit", "no such op!", "1", "2")
        r = self.jobctl(jobd, "get")  # usage error
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip(), "a usage error says what is wrong")
        down = harness.free_port()
        r = subprocess.run([harness.JOBCTL_BIN, "--server", f"http://127.0.0.1:{down}",
                                    "health"], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0, "health against no server must fail")
        self.assertTrue(re.search(r"(?i)connect|refused|unreachable|down", r.stderr),
                        f"says it cannot connect: {r.stderr!r}")


if __name__ == "__main__":
    harness.main()
