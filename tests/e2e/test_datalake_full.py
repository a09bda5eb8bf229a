"""test_datalake_full.py - the datalake's disk fills up.  The datalake directory is a tiny
tmpfs (this needs root, or another way to mount; the test is skipped, saying why, when
mounting is not allowed) that a filler file leaves with no room: bots keep completing
jobs in the database while every export fails with "No space left on device" (half-written
batches are cut back), and once the filler is removed the export catches up with each job
in the datalake exactly once, equal to its database row."""

import os
import subprocess

import harness

N = 300


class DatalakeFull(harness.E2ETestCase):
    needs = ("jobd", "jobd-bot")

    def mount_tiny_tmpfs(self, path):
        os.makedirs(path)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
        # Lazy: jobd may still hold a file open when cleanups run.
        self.addCleanup(subprocess.run, ["umount", "-l", path])

    def fill(self, path):
        """Write until the file system refuses: ENOSPC from then on."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)

    def test_full_disk_then_space_returns(self):
        data = os.path.join(self.tmp, "data")
        lake = os.path.join(data, "datalake")
        self.mount_tiny_tmpfs(lake)
        jobd = self.start_jobd(data_dir=data)
        filler = os.path.join(lake, "filler")
        self.fill(filler)

        expected = {}
        for i in range(N):
            expected[self.submit(jobd, "sum", i, 7)["id"]] = i + 7
        self.start_bots(jobd, 2, ["sum"])
        stats = lambda: jobd.request("GET", "/stats").body["jobs"]  # noqa: E731
        self.wait_for(lambda: stats()["succeeded"] == N, 60, f"{N} jobs to complete",
                      interval=0.2)
        self.wait_log(jobd, "No space left on device", 10)
        unexported = jobd.db_query("SELECT count(*) AS n FROM export_queue")[0]["n"]
        self.assertGreater(unexported, 0, "nothing can have been exported to a full disk")
        self.assertEqual(jobd.datalake_count(), {}, "no line made it to the full disk")

        os.unlink(filler)
        self.wait_for(lambda: not jobd.db_query(
            "SELECT 1 FROM export_queue LIMIT 1"), 40, "the export to catch up",
            interval=0.3)
        self.wait_log(jobd, "datalake: export works again", 5)
        rows = self.assert_datalake_once(jobd, expected)
        self.assertEqual({rows[i]["result"] for i in expected} ^ set(expected.values()), set())


if __name__ == "__main__":
    harness.main()
