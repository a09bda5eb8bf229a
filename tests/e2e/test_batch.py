"""test_batch.py - batches: POST /jobs with an array is one transaction, all or nothing,
and an error names the bad item; POST /jobs/complete reports many results in one request,
each fenced on its own, and each finished job is recorded once; with "claim" it also leases
the bot its next jobs, waiting for one with wait_ms, and a wait does not report twice."""

import threading
import time

import harness


def job(op, a, b, **extra):
    return dict({"operation": op, "input": {"a": a, "b": b}}, **extra)


class Batch(harness.E2ETestCase):
    needs = ("jobd",)

    def total(self, jobd):
        return jobd.request("GET", "/stats").body["jobs"]["total"]

    def test_submit_batch_all_or_nothing(self):
        jobd = self.start_jobd()
        r = jobd.request("POST", "/jobs", [job("sum", i, i) for i in range(1000)])
        body = self.expect(r, 201, "batch of 1000")
        self.assertEqual([j["input"]["a"] for j in body["jobs"]], list(range(1000)),
                         "jobs come back in the order sent")
        self.assertEqual({j["status"] for j in body["jobs"]}, {"pending"})
        self.assertEqual(len({j["id"] for j in body["jobs"]}), 1000)
        self.assertEqual(self.total(jobd), 1000)

        bad = [job("sum", i, i) for i in range(10)]
        bad[7] = {"operation": "sum"}  # no input
        self.assert_error(jobd.request("POST", "/jobs", bad), 422, "invalid_field",
                          ["jobs[7]", "input"])
        big = [job("sum", 1, 1), job("sum", 1, 1, input={"pad": "x" * 70000})]
        self.assert_error(jobd.request("POST", "/jobs", big), 413, "input_too_large", ["jobs[1]"])
        self.assert_error(jobd.request("POST", "/jobs", []), 422, "invalid_field", ["1 to 10000"])
        self.assert_error(jobd.request("POST", "/jobs", [1, 2]), 422, "invalid_field",
                          ["jobs[0]"])
        self.assertEqual(self.total(jobd), 1000, "a refused batch inserts nothing")

    def test_complete_batch_fenced_per_item(self):
        jobd = self.start_jobd()
        bot = self.register_bot(jobd, "batcher", ["sum"])
        self.expect(jobd.request("POST", "/jobs", [job("sum", i, 1) for i in range(5)]), 201,
                    "submit")
        claimed = self.expect(jobd.request("POST", "/jobs/claim", {
            "bot_id": bot, "operations": ["sum"], "max": 5}), 200, "claim")["jobs"]
        self.assertEqual(len(claimed), 5)
        items = [{"id": j["id"], "lease": j["lease"], "result": j["input"]["a"] + 1,
                  "duration_ms": 1} for j in claimed[:3]]
        items.append({"id": claimed[3]["id"], "lease": claimed[3]["lease"],
                      "error": "no good", "duration_ms": 2})
        items.append({"id": claimed[4]["id"], "lease": "not-the-lease", "result": 0,
                      "duration_ms": 0})
        r = jobd.request("POST", "/jobs/complete", {"bot_id": bot, "results": items})
        results = self.expect(r, 200, "batch complete")["results"]
        self.assertEqual([x["id"] for x in results], [i["id"] for i in items])
        self.assertEqual([x["job"]["status"] for x in results[:4]],
                         ["succeeded"] * 3 + ["failed"])
        self.assertEqual(results[4]["error"]["code"], "lease_mismatch", results[4])
        self.assertNotIn("job", results[4])

        # The same batch again: the finished ones repeat harmlessly, nothing twice.
        again = self.expect(jobd.request("POST", "/jobs/complete",
                                         {"bot_id": bot, "results": items[:4]}), 200, "repeat")
        self.assertEqual([x["job"]["status"] for x in again["results"]],
                         ["succeeded"] * 3 + ["failed"])
        for j in claimed[:4]:
            self.assertEqual(len(self.get_job(jobd, j["id"])["history"]), 1)
        self.assertEqual(self.get_job(jobd, claimed[4]["id"])["status"], "processing")
        barrier = self.datalake_barrier(jobd)
        counts = jobd.datalake_count()
        counts.pop(barrier)
        self.assertEqual(counts, {j["id"]: 1 for j in claimed[:4]})

        self.assert_error(jobd.request("POST", "/jobs/complete", {"bot_id": bot, "results": [
            {"id": claimed[4]["id"], "lease": "x", "duration_ms": 0}]}), 422, "invalid_field",
            ["results[0]", "result"])
        self.assert_error(jobd.request("POST", "/jobs/complete", {"bot_id": bot}), 422,
                          "invalid_field", ["results"])

    def test_complete_batch_claims_the_next_jobs(self):
        jobd = self.start_jobd(args=["--threads", "2"])
        bot = self.register_bot(jobd, "chainer", ["sum"])
        self.expect(jobd.request("POST", "/jobs", [job("sum", i, 1) for i in range(3)]), 201,
                    "submit")
        first = self.claim_one(jobd, bot, ["sum"])

        def report(leased, claim):
            return jobd.request("POST", "/jobs/complete", {"bot_id": bot, "claim": claim, "results": [
                {"id": leased["id"], "lease": leased["lease"],
                 "result": leased["input"]["a"] + 1, "duration_ms": 1}]})

        body = self.expect(report(first, {"operations": ["sum"], "max": 5}), 200, "report+claim")
        self.assertEqual([(x["id"], x["job"]["status"]) for x in body["results"]],
                         [(first["id"], "succeeded")])
        nxt = body["jobs"]
        self.assertEqual(sorted(j["input"]["a"] for j in nxt), [1, 2], "the two pending jobs")
        self.assertEqual({j["status"] for j in nxt}, {"processing"})
        self.assertTrue(all(j["lease"] for j in nxt))

        # Nothing pending and no wait_ms: 200, the report, and no jobs.
        body = self.expect(report(nxt[0], {"operations": ["sum"]}), 200, "nothing pending")
        self.assertEqual(body["results"][0]["job"]["status"], "succeeded")
        self.assertEqual(body["jobs"], [])

        # With wait_ms the request waits for a job like a claim, and is answered with both
        # the report and the job that came; the report is recorded once.
        done = {}

        def wait_report():
            done["reply"] = report(nxt[1], {"operations": ["sum"], "wait_ms": 10000})
            done["at"] = time.monotonic()

        waiter = threading.Thread(target=wait_report)
        waiter.start()
        self.wait_for(lambda: self.get_job(jobd, nxt[1]["id"])["status"] == "succeeded", 5,
                      "the report is recorded before the wait")
        time.sleep(0.3)
        later = self.submit(jobd, "sum", 40, 2)
        submitted = time.monotonic()
        waiter.join(15 * harness.SLOW)
        body = self.expect(done["reply"], 200, "woken report+claim")
        self.assertLess(done["at"] - submitted, 1.0 * harness.SLOW, "woken at once")
        self.assertEqual([x["job"]["status"] for x in body["results"]], ["succeeded"])
        self.assertEqual([j["id"] for j in body["jobs"]], [later["id"]])
        self.assertEqual(len(self.get_job(jobd, nxt[1]["id"])["history"]), 1)

        # A wait that ends empty: after about wait_ms, the report and no jobs.
        t0 = time.monotonic()
        body = self.expect(report(body["jobs"][0], {"operations": ["sum"], "wait_ms": 800}),
                           200, "idle report+claim")
        self.assertGreaterEqual(time.monotonic() - t0, 0.7)
        self.assertEqual((body["results"][0]["job"]["status"], body["jobs"]), ("succeeded", []))
        barrier = self.datalake_barrier(jobd)
        counts = jobd.datalake_count()
        counts.pop(barrier)
        self.assertEqual(set(counts.values()), {1}, "each job in the datalake once")
        self.assertEqual(len(counts), 4)

    def test_complete_batch_claim_errors(self):
        jobd = self.start_jobd()
        bot = self.register_bot(jobd, "chainer", ["sum"])
        self.expect(jobd.request("POST", "/jobs", [job("sum", 1, 1)]), 201, "submit")
        leased = self.claim_one(jobd, bot, ["sum"])
        item = {"id": leased["id"], "lease": leased["lease"], "result": 2, "duration_ms": 0}
        for claim, mention in (([], "claim"), ({"operations": []}, "claim: "),
                               ({"operations": ["sum"], "max": 101}, "claim: "),
                               ({"operations": ["sum"], "wait_ms": -1}, "claim: ")):
            self.assert_error(jobd.request("POST", "/jobs/complete", {
                "bot_id": bot, "results": [item], "claim": claim}), 422, "invalid_field",
                [mention])
        self.assert_error(jobd.request("POST", "/jobs/complete", {
            "bot_id": "no-such-bot", "results": [item], "claim": {"operations": ["sum"]}}),
            404, "unknown_bot")
        self.assertEqual(self.get_job(jobd, leased["id"])["status"], "processing",
                         "a refused request records nothing")

    def test_prefer_return_minimal(self):
        """Prefer: return=minimal (RFC 7240) cuts the job objects of a change's reply to
        their id and status, and claimed jobs to what a bot needs to run and report them;
        without it, replies are whole."""
        jobd = self.start_jobd()
        minimal = {"Prefer": "wait=5, return=minimal"}
        r = jobd.request("POST", "/jobs", [job("sum", i, 1) for i in range(3)]
                         + [job("sum", 9, 9, run_at="2099-01-01T00:00:00.000Z")], headers=minimal)
        body = self.expect(r, 201, "minimal batch submit")
        self.assertEqual(r.headers.get("Preference-Applied"), "return=minimal")
        self.assertEqual([sorted(j) for j in body["jobs"]], [["id", "status"]] * 4)
        self.assertEqual([j["status"] for j in body["jobs"]], ["pending"] * 3 + ["scheduled"])
        stored = self.get_job(jobd, body["jobs"][1]["id"])
        self.assertEqual((stored["input"], stored["status"]), ({"a": 1, "b": 1}, "pending"))

        r = jobd.request("POST", "/jobs", job("sum", 5, 5), headers={"Prefer": "return=minimal"})
        self.assertEqual(sorted(self.expect(r, 201, "minimal submit")), ["id", "status"])
        r = jobd.request("POST", "/jobs", job("sum", 6, 6))
        self.assertIsNone(r.headers.get("Preference-Applied"))
        self.assertEqual(self.expect(r, 201, "whole submit")["input"], {"a": 6, "b": 6})
        r = jobd.request("POST", "/jobs", job("sum", 7, 7), headers={"Prefer": "return=representation"})
        self.assertEqual(self.expect(r, 201, "representation")["input"], {"a": 7, "b": 7})

        bot = self.register_bot(jobd, "brief", ["sum"])
        claimed = self.expect(jobd.request("POST", "/jobs/claim", {
            "bot_id": bot, "operations": ["sum"], "max": 3}), 200, "claim")["jobs"]
        r = jobd.request("POST", "/jobs/complete", {"bot_id": bot, "results": [
            {"id": j["id"], "lease": j["lease"], "result": 1, "duration_ms": 0}
            for j in claimed[:2]] + [{"id": claimed[2]["id"], "lease": "wrong", "result": 1,
                                      "duration_ms": 0}],
            "claim": {"operations": ["sum"]}}, headers=minimal)
        body = self.expect(r, 200, "minimal batch report")
        self.assertEqual(r.headers.get("Preference-Applied"), "return=minimal")
        self.assertEqual([x.get("job") for x in body["results"][:2]],
                         [{"id": j["id"], "status": "succeeded"} for j in claimed[:2]])
        self.assertEqual(body["results"][2]["error"]["code"], "lease_mismatch")
        self.assertEqual(len(body["jobs"]), 1)
        lean = ["attempts", "id", "input", "lease", "lease_expires_at", "operation", "status"]
        leased = body["jobs"][0]
        self.assertEqual(sorted(leased), lean, "claimed jobs carry what a bot needs, no more")
        stored = self.get_job(jobd, leased["id"])  # without the lease: that is the holder's
        same = ["attempts", "id", "input", "operation", "status"]
        self.assertEqual({k: leased[k] for k in same}, {k: stored[k] for k in same})
        self.assertEqual(leased["status"], "processing")

        # A plain claim: lean jobs with the header, whole ones without it.
        r = jobd.request("POST", "/jobs/claim", {"bot_id": bot, "operations": ["sum"]},
                         headers=minimal)
        self.assertEqual(r.headers.get("Preference-Applied"), "return=minimal")
        self.assertEqual([sorted(j) for j in self.expect(r, 200, "minimal claim")["jobs"]], [lean])
        r = jobd.request("POST", "/jobs/claim", {"bot_id": bot, "operations": ["sum"]})
        self.assertIsNone(r.headers.get("Preference-Applied"))
        whole = self.expect(r, 200, "whole claim")["jobs"][0]
        self.assertEqual(whole["bot_name"], "brief")
        self.assertIn("lease", whole)
        r = jobd.request("POST", f"/jobs/{claimed[2]['id']}/complete", {
            "bot_id": bot, "lease": claimed[2]["lease"], "result": 3, "duration_ms": 1},
            headers=minimal)
        self.assertEqual(self.expect(r, 200, "minimal complete"),
                         {"id": claimed[2]["id"], "status": "succeeded"})
        self.assertEqual(self.get_job(jobd, claimed[2]["id"])["result"], 3)

    def test_idempotency_key(self):
        """A submit sent again with its idempotency_key (its reply was lost, say) makes no
        second job; bad keys are refused."""
        jobd = self.start_jobd()
        first = self.expect(jobd.request("POST", "/jobs", job("sum", 1, 2, idempotency_key="k-1")),
                            201, "first submit")
        self.assertEqual(first["idempotency_key"], "k-1")
        again = self.expect(jobd.request("POST", "/jobs", job("sum", 1, 2, idempotency_key="k-1")),
                            201, "the same submit again")
        self.assertEqual(again, first)
        r = jobd.request("POST", "/jobs", [job("sum", 1, 2, idempotency_key="k-1"),
                                           job("sum", 3, 4, idempotency_key="k-2"),
                                           job("sum", 3, 4, idempotency_key="k-2"),
                                           job("sum", 5, 6)], headers={"Prefer": "return=minimal"})
        ids = [j["id"] for j in self.expect(r, 201, "batch with keys")["jobs"]]
        self.assertEqual(ids[0], first["id"])
        self.assertEqual(ids[1], ids[2])
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(self.total(jobd), 3)
        for bad, mention in ((7, "must be a string"), ("", "1 to 128"), ("x" * 129, "1 to 128")):
            self.assert_error(jobd.request("POST", "/jobs", job("sum", 1, 1, idempotency_key=bad)),
                              422, "invalid_field", ["idempotency_key", mention])
        self.assertEqual(self.total(jobd), 3)


if __name__ == "__main__":
    harness.main()
