"""test_admin_release.py - the seed's stuck-job cure, done safely: an admin releases a
job held by a dead bot, the old lease can no longer finish it (409 lease_released, with a
request id the server log knows), a real bot then finishes it, and it is recorded once.
Also the admin endpoint's guards: no token, wrong token, no token configured."""

import harness


class AdminRelease(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def test_release_then_old_lease_is_refused_and_job_recorded_once(self):
        jobd = self.start_jobd(args=["--lease-ms", "60000"])
        ghost = self.register_bot(jobd, "ghost", ["sum"])
        created = self.submit(jobd, "sum", 613, 342)
        claimed = self.claim_one(jobd, ghost, ["sum"])
        self.assertEqual(claimed["id"], created["id"])
        self.assertEqual(claimed["status"], "processing")
        self.assertTrue(claimed["lease"])
        self.assertRegex(claimed["lease_expires_at"], harness.TIME_RE)
        jid, lease = claimed["id"], claimed["lease"]

        r = jobd.request("POST", f"/jobs/{jid}/release", {"reason": "bot is gone"},
                         token=harness.ADMIN_TOKEN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["status"], "pending")
        job = self.get_job(jobd, jid)
        self.assertEqual(job["status"], "pending")
        self.assertEqual([h["outcome"] for h in job["history"]], ["released"])
        self.assertIn("bot is gone", job["history"][0]["error"] or "")

        r = jobd.request("POST", f"/jobs/{jid}/release", token=harness.ADMIN_TOKEN)
        self.assert_error(r, 409, "not_processing")

        r = jobd.request("POST", f"/jobs/{jid}/complete",
                         {"bot_id": ghost, "lease": lease, "result": 955, "duration_ms": 1})
        err = self.assert_error(r, 409, "lease_released")
        self.assertIn(jid, err["message"])
        self.wait_for(lambda: any(err["request_id"] in line and f"/jobs/{jid}/complete" in line
                                  and "409" in line for line in jobd.log().splitlines()),
                      5, "the 409's request id in the server log")
        r = jobd.request("POST", f"/jobs/{jid}/fail",
                         {"bot_id": ghost, "lease": lease, "error": "late", "duration_ms": 1})
        self.assert_error(r, 409, "lease_released")
        self.assertEqual(self.get_job(jobd, jid)["status"], "pending",
                         "a refused complete changes nothing")

        self.start_bots(jobd, 1, ["sum"])
        job = self.wait_finished(jobd, jid)
        self.assertEqual((job["status"], job["result"], job["bot_name"], job["attempts"]),
                         ("succeeded", 955, "bot-1", 2), job)
        self.assertEqual([h["outcome"] for h in job["history"]], ["released", "succeeded"])

        r = jobd.request("POST", f"/jobs/{jid}/complete",
                         {"bot_id": ghost, "lease": lease, "result": 1, "duration_ms": 1})
        self.assertEqual(r.status, 409, r.body)
        self.assertIn(r.body["error"]["code"], ("lease_released", "already_finished"))

        barrier = self.datalake_barrier(jobd)
        counts = jobd.datalake_count()
        self.assertEqual(counts, {jid: 1, barrier: 1})
        rows = [harness.normalise_db_row(r)
                for r in jobd.db_query("SELECT * FROM jobs WHERE id = ?", (jid,))]
        self.assertEqual([(r["status"], r["result"]) for r in rows], [("succeeded", 955)])
        line = next(o for _, o in jobd.datalake() if o["id"] == jid)
        self.assertEqual((line["result"], line["bot_name"], line["attempts"]), (955, "bot-1", 2))

    def test_release_guards(self):
        jobd = self.start_jobd()
        job = self.submit(jobd, "sum", 1, 2)
        path = f"/jobs/{job['id']}/release"
        self.assert_error(jobd.request("POST", path), 401, "unauthorized")
        self.assert_error(jobd.request("POST", path, token="not-the-token"), 403, "forbidden")
        self.assert_error(jobd.request("POST", path, headers={"Authorization": "Basic eDp5"}),
                          401, "unauthorized")
        self.assert_error(jobd.request("POST", path, token=harness.ADMIN_TOKEN[:-1]),
                          403, "forbidden")
        self.assert_error(jobd.request("POST", "/jobs/0190d6a5-0000-7000-8000-000000000000/"
                                       "release", token=harness.ADMIN_TOKEN), 404, "not_found")
        self.assertNotIn(harness.ADMIN_TOKEN, jobd.log(), "the admin token is never logged")
        self.assertEqual(self.get_job(jobd, job["id"])["status"], "pending")

        off = self.start_jobd(data_dir=f"{self.tmp}/data-no-token", token=None,
                              name="jobd-no-token")
        job = self.submit(off, "sum", 1, 2)
        path = f"/jobs/{job['id']}/release"
        self.assert_error(off.request("POST", path, token=harness.ADMIN_TOKEN), 403,
                          "admin_disabled")


if __name__ == "__main__":
    harness.main()
