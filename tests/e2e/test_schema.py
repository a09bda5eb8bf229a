"""test_schema.py - schema discipline, the cure for the seed's SQL that drifted from its
table: jobd reports and moves schema versions, refuses to run on a schema it was not
built for (naming both versions), and refuses to start when a column its statements use
is missing, naming the statement and the database's "no such column" - at start-up, not
at the first complete."""

import re
import sqlite3
import subprocess

import harness


class Schema(harness.E2ETestCase):
    def versions(self, data_dir):
        r = self.run_jobd("migrate", "status", "--data-dir", data_dir)
        self.assertEqual(r.returncode, 0, f"migrate status failed: {r.stdout}{r.stderr}")
        out = r.stdout + r.stderr
        cur = re.search(r"(?i)(?:current|schema version)\D{0,30}?(\d+)", out)
        latest = re.search(r"(?i)latest\D{0,30}?(\d+)", out)
        self.assertTrue(cur and latest, f"migrate status must print current and latest: {out!r}")
        return int(cur.group(1)), int(latest.group(1))

    def refuse(self, data_dir, *args):
        """Run jobd, which must exit non-zero by itself; returns its stderr."""
        try:
            r = self.run_jobd("--listen", f"127.0.0.1:{harness.free_port()}", "--data-dir",
                              data_dir, *args, timeout=15)
        except subprocess.TimeoutExpired:
            self.fail(f"jobd {' '.join(args)} kept running instead of refusing to start")
        self.assertNotEqual(r.returncode, 0, f"jobd started: {r.stderr}")
        self.assertTrue(r.stderr.strip(), "a refusal says why on stderr")
        return r.stderr

    def test_migrate_status_down_no_migrate_and_up(self):
        data = f"{self.tmp}/data"
        r = self.run_jobd("migrate", "up", "--data-dir", data)
        self.assertEqual(r.returncode, 0, r.stderr)
        cur, latest = self.versions(data)
        self.assertGreaterEqual(latest, 1)
        self.assertEqual(cur, latest)

        jobd = self.start_jobd(data_dir=data, args=["--no-migrate"])
        self.assertEqual(jobd.request("GET", "/health").body["schema_version"], latest)
        self.assertEqual(jobd.stop(), 0, "SIGTERM -> exit 0")
        self.assertFalse(jobd.killed)

        r = self.run_jobd("migrate", "down", "--data-dir", data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.versions(data), (latest - 1, latest))

        err = self.refuse(data, "--no-migrate")
        self.assertRegex(err, rf"\b{latest - 1}\b", "names the database's version")
        self.assertRegex(err, rf"\b{latest}\b", "names the version jobd needs")
        self.assertEqual(self.versions(data), (latest - 1, latest), "--no-migrate changed it")

        jobd = self.start_jobd(data_dir=data, name="jobd-migrating")
        self.assertEqual(jobd.request("GET", "/health").body["schema_version"], latest)
        job = self.submit(jobd, "sum", 2, 3)
        self.assertEqual(self.get_job(jobd, job["id"])["input"], {"a": 2, "b": 3})
        self.assertEqual(jobd.stop(), 0)
        self.assertEqual(self.versions(data), (latest, latest))

    def test_newer_schema_is_refused(self):
        data = f"{self.tmp}/data"
        self.assertEqual(self.run_jobd("migrate", "up", "--data-dir", data).returncode, 0)
        cur, latest = self.versions(data)
        # What a newer jobd would leave behind: one more row in the store's version table.
        db = sqlite3.connect(f"{data}/jobd.db")
        cols = [r[1] for r in db.execute("PRAGMA table_info(schema_version)")]
        self.assertIn("version", cols, "the store records versions in schema_version")
        values = {c: (latest + 1 if c == "version" else 0 if c.endswith("_at") else "future")
                  for c in cols}
        db.execute(f"INSERT INTO schema_version ({', '.join(values)}) "
                   f"VALUES ({', '.join('?' * len(values))})", list(values.values()))
        db.commit()
        db.close()
        self.assertEqual(self.versions(data), (latest + 1, latest))
        for args in ((), ("--no-migrate",)):
            with self.subTest(args=args):
                err = self.refuse(data, *args)
                self.assertRegex(err, rf"\b{latest + 1}\b", "names the database's version")
                self.assertRegex(err, rf"\b{latest}\b", "names the version jobd knows")

    def test_renamed_column_is_refused_at_start(self):
        data = f"{self.tmp}/data"
        jobd = self.start_jobd(data_dir=data)
        job = self.submit(jobd, "sum", 613, 342)
        self.assertEqual(jobd.stop(), 0)

        db = sqlite3.connect(f"{data}/jobd.db")
        db.execute("ALTER TABLE jobs RENAME COLUMN result TO sum")  # the seed's bug
        db.commit()
        db.close()

        err = self.refuse(data)
        self.assertIn("no such column", err)
        self.assertRegex(err, r"no such column:? \S*result", "names the missing column")
        self.assertRegex(err, r"(?i)statement|select|insert|update",
                         "names the statement that does not fit")

        db = sqlite3.connect(f"{data}/jobd.db")
        db.execute("ALTER TABLE jobs RENAME COLUMN sum TO result")
        db.commit()
        db.close()
        jobd = self.start_jobd(data_dir=data, name="jobd-repaired")
        self.assertEqual(self.get_job(jobd, job["id"])["input"], {"a": 613, "b": 342})


if __name__ == "__main__":
    harness.main()
