"""test_bad_input.py - everything a confused or hostile client can send gets its
documented status and code in the one error shape, with the request id in the body and
the X-Request-Id header (the seed's "Failed to complete job" told nobody anything), and
none of it harms the server or the jobs it already committed."""

import re

import harness

MISSING_JOB = "0190d6a5-3c1b-7d2e-8f00-123456789abc"


class BadInput(harness.E2ETestCase):
    def test_bad_requests_get_documented_errors_and_harm_nothing(self):
        jobd = self.start_jobd(args=["--max-body", "65536", "--max-input", "8192"])
        req = jobd.request

        # Committed work that must survive everything below.
        bot = self.register_bot(jobd, "hand", ["sum"])
        done = self.submit(jobd, "sum", 613, 342)
        claimed = self.claim_one(jobd, bot, ["sum"])
        r = req("POST", f"/jobs/{done['id']}/complete",
                {"bot_id": bot, "lease": claimed["lease"], "result": 955, "duration_ms": 2})
        self.assertEqual((r.status, r.body["status"], r.body["result"]), (200, "succeeded", 955))
        pending = self.submit(jobd, "product", 6, 7)
        before = [self.get_job(jobd, done["id"]), self.get_job(jobd, pending["id"])]
        before_rows = jobd.db_jobs()

        def post_jobs(raw):
            return req("POST", "/jobs", raw=raw)

        def job(**fields):
            body = {"operation": "sum", "input": {"a": 1, "b": 2}}
            body.update(fields)
            return {k: v for k, v in body.items() if v is not None}

        with self.subTest("malformed JSON names line and column"):
            err = self.assert_error(post_jobs(b'{\n  "operation": "sum",\n  "input": {"a": 1,}\n}'),
                                    400, "invalid_json")
            self.assertRegex(err["message"], r"(?i)line\D{0,3}3\b")
            self.assertRegex(err["message"], r"(?i)col(umn)?\D{0,3}\d+")

        invalid_fields = [
            ("operation", {"input": {"a": 1, "b": 2}}),
            ("input", {"operation": "sum"}),
            ("operation", job(operation=5)),
            ("operation", job(operation="")),
            ("operation", job(operation="sum; DROP TABLE jobs")),
            ("operation", job(operation="x" * 65)),
            ("input", job(input="a=1,b=2")),
            ("input", job(input=[1, 2])),
            ("priority", job(priority="high")),
            ("priority", job(priority=1.5)),
        ]
        for field, body in invalid_fields:
            with self.subTest("POST /jobs invalid field", field=field, body=body):
                self.assert_error(req("POST", "/jobs", body), 422, "invalid_field", [field])

        with self.subTest("claim/register/heartbeat/list invalid fields"):
            claim = {"bot_id": bot, "operations": ["sum"]}
            self.assert_error(req("POST", "/jobs/claim", {**claim, "wait_ms": 30001}), 422,
                              "invalid_field", ["wait_ms"])
            self.assert_error(req("POST", "/jobs/claim", {**claim, "max": 0}), 422,
                              "invalid_field", ["max"])
            self.assert_error(req("POST", "/jobs/claim", {"bot_id": bot, "operations": []}),
                              422, "invalid_field", ["operations"])
            self.assert_error(req("POST", "/jobs/claim", {**claim, "bot_id": MISSING_JOB}), 404,
                              "unknown_bot")
            self.assert_error(req("POST", "/bots/register", {"operations": ["sum"]}), 422,
                              "invalid_field", ["name"])
            self.assert_error(req("POST", f"/bots/{bot}/heartbeat", {"state": "sleepy"}), 422,
                              "invalid_field", ["state"])
            self.assert_error(req("POST", f"/bots/{MISSING_JOB}/heartbeat", {"state": "ready"}),
                              404, "unknown_bot")
            self.assert_error(req("GET", f"/bots/{MISSING_JOB}"), 404, "unknown_bot")
            self.assert_error(req("GET", "/jobs?status=bogus"), 422, "invalid_field", ["status"])
            self.assert_error(req("GET", "/jobs?limit=0"), 422, "invalid_field", ["limit"])
            self.assert_error(req("GET", "/jobs?limit=1001"), 422, "invalid_field", ["limit"])

        with self.subTest("unknown job, unknown route, wrong method"):
            self.assert_error(req("GET", f"/jobs/{MISSING_JOB}"), 404, "not_found")
            self.assert_error(req("POST", f"/jobs/{MISSING_JOB}/complete",
                                  {"bot_id": bot, "lease": "x", "result": 1, "duration_ms": 0}),
                              404, "not_found")
            self.assert_error(req("GET", "/nope"), 404, "no_such_route")
            self.assert_error(req("GET", "/jobs/a/b/c"), 404, "no_such_route")
            r = req("DELETE", "/jobs")
            self.assert_error(r, 405, "method_not_allowed")
            allow = {m.strip() for m in (r.headers.get("Allow") or "").split(",")}
            self.assertTrue({"GET", "POST"} <= allow, f"Allow: {r.headers.get('Allow')!r}")
            r = req("PUT", "/health", {"status": "ok"})
            self.assert_error(r, 405, "method_not_allowed")
            self.assertIn("GET", r.headers.get("Allow") or "")

        with self.subTest("body over --max-body"):
            big = job(pad="x" * 70000)
            self.assert_error(req("POST", "/jobs", big), 413, "body_too_large")

        with self.subTest("input over --max-input"):
            self.assert_error(req("POST", "/jobs", job(input={"a": 1, "b": 2, "pad": "x" * 9000})),
                              413, "input_too_large")

        with self.subTest("lease mismatch, then repeated identical complete"):
            other = self.register_bot(jobd, "other", ["product"])
            c = self.claim_one(jobd, other, ["product"])
            self.assertEqual(c["id"], pending["id"])
            path = f"/jobs/{c['id']}/complete"
            good = {"bot_id": other, "lease": c["lease"], "result": 42, "duration_ms": 1}
            self.assert_error(req("POST", path, {**good, "lease": "not-the-lease"}), 409,
                              "lease_mismatch")
            self.assert_error(req("POST", path, {**good, "bot_id": bot}), 409, "lease_mismatch")
            self.assert_error(req("POST", path, {**good, "duration_ms": -1}), 422,
                              "invalid_field", ["duration_ms"])
            self.assertEqual(self.get_job(jobd, c["id"])["status"], "processing")
            first = req("POST", path, good)
            self.assertEqual((first.status, first.body["result"]), (200, 42), first.body)
            again = req("POST", path, good)
            self.assertEqual(again.status, 200, again.body)
            self.assertEqual(again.body, first.body, "the repeat returns the same finished job")
            j = self.get_job(jobd, c["id"])
            self.assertEqual((j["attempts"], len(j["history"])), (1, 1), j)
            self.assertEqual(len(jobd.db_query("SELECT id FROM jobs WHERE id = ?", (c["id"],))), 1)
            barrier = self.datalake_barrier(jobd)
            counts = jobd.datalake_count()
            self.assertEqual(counts, {done["id"]: 1, c["id"]: 1, barrier: 1})
            before[1] = j

        with self.subTest("garbage, binary and empty bodies"):
            self.assert_error(post_jobs(bytes(range(256)) * 4), 400, "invalid_json")
            self.assert_error(post_jobs(b"\x00\x01\x02"), 400, "invalid_json")
            self.assert_error(post_jobs(b'{"operation":"s\xffum","input":{}}'), 400,
                              "invalid_json")
            self.assert_error(post_jobs(b""), 400, "invalid_json")
            self.assert_error(req("POST", "/jobs/claim", raw=b""), 400, "invalid_json")
            self.assert_error(post_jobs(b"not json at all"), 400, "invalid_json")

        with self.subTest("deeply nested JSON"):
            self.assert_error(post_jobs(b"[" * 30000 + b"]" * 30000), 400, "invalid_json")
            self.assert_error(post_jobs(b'{"operation":"sum","input":' + b'{"a":' * 10000),
                              400, "invalid_json")
            deep = {"a": 1, "b": 2}
            for _ in range(200):
                deep = {"n": deep}
            r = req("POST", "/jobs", job(input=deep))
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(self.get_job(jobd, r.body["id"])["input"], deep)

        with self.subTest("huge numbers"):
            for raw in (b'{"operation":"sum","input":{"a":1e400,"b":1}}',
                        b'{"operation":"sum","input":{"a":99999999999999999999999,"b":1}}',
                        b'{"operation":"sum","input":{"a":1,"b":2},"priority":1e30}',
                        b'{"operation":"sum","input":{"a":1,"b":2},"priority":'
                        b'99999999999999999999}'):
                r = post_jobs(raw)
                self.assertIn(r.status, (400, 422), (raw, r.body))
                self.assert_error(r, r.status, {400: "invalid_json", 422: "invalid_field"}[r.status])
            big = self.submit(jobd, "sum", harness.INT64_MAX, harness.INT64_MIN)
            self.assertEqual(self.get_job(jobd, big["id"])["input"],
                             {"a": harness.INT64_MAX, "b": harness.INT64_MIN},
                             "int64 extremes survive the round trip exactly")
            # Large numbers that are not integers are doubles, on both engines (PostgreSQL's
            # jsonb once wrote 1e20 out as 21 digits jobd could not read: database_error).
            floats = {"a": 1e20, "b": -1.5e300, "c": 0.1}
            r = req("POST", "/jobs", job(input=floats))
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(self.get_job(jobd, r.body["id"])["input"], floats)

        with self.subTest("request ids"):
            r = req("GET", "/nope", headers={"X-Request-Id": "e2e.req-1_A"})
            self.assertEqual(self.assert_error(r, 404, "no_such_route")["request_id"],
                             "e2e.req-1_A")
            r = req("GET", "/nope", headers={"X-Request-Id": "bad id!"})
            self.assertNotEqual(self.assert_error(r, 404, "no_such_route")["request_id"],
                                "bad id!")
            r = req("GET", "/nope", headers={"X-Request-Id": "x" * 65})
            self.assertNotEqual(self.assert_error(r, 404, "no_such_route")["request_id"],
                                "x" * 65)
            ok = req("GET", "/health")
            self.assertTrue(ok.headers.get("X-Request-Id"), "2xx replies carry X-Request-Id too")
            ids = {req("GET", "/health").headers.get("X-Request-Id") for _ in range(5)}
            self.assertEqual(len(ids), 5, "server-made request ids are unique")
            self.assertTrue(re.search(r"e2e\.req-1_A.*GET /nope.*404", jobd.log()),
                            "the client's request id in the server's log line")

        # After all of it: the server is healthy and committed jobs are untouched.
        health = req("GET", "/health")
        self.assertEqual((health.status, health.body["status"]), (200, "ok"))
        self.assertTrue(jobd.alive())
        self.assertEqual([self.get_job(jobd, before[0]["id"]), self.get_job(jobd, before[1]["id"])],
                         before)
        after_rows = jobd.db_jobs()
        self.assertEqual(after_rows[done["id"]], before_rows[done["id"]])


if __name__ == "__main__":
    harness.main()
