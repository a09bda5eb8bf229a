"""test_busy_database.py - a request waiting for the database holds up no other
connection.  Another process holds SQLite's write lock, so sixteen submits wait for it
(up to the busy timeout); meanwhile requests that need no write, on connections of their
own, are answered at once, and the submits succeed once the lock is let go.  Regression
test: libmicrohttpd's few threads each serve many connections, and used to run handlers
themselves, so a request that shared a thread with a waiting submit waited as long; and
once every one of those threads waited in a handler, no new connection was even accepted."""

import sqlite3
import threading
import time

import harness


class BusyDatabase(harness.E2ETestCase):
    def test_waiting_writes_hold_up_no_one(self):
        jobd = self.start_jobd()
        self.submit(jobd, "sum", 1, 2)  # migrated, and the WAL exists
        lock = sqlite3.connect(jobd.db_path, timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        statuses = []

        def submit():
            r = jobd.request("POST", "/jobs", {"operation": "sum", "input": {"a": 1, "b": 2}},
                             timeout=30)
            statuses.append(r.status)

        writers = [threading.Thread(target=submit) for _ in range(16)]
        try:
            # One after another, so that each new connection finds the server's
            # threads as the ones before left them (a thread that waits in a
            # handler accepts no connection).
            for t in writers:
                t.start()
                time.sleep(0.05)
            time.sleep(0.5 * harness.SLOW)  # every submit is waiting for the lock now
            late = []
            for _ in range(16):
                t0 = time.monotonic()
                r = jobd.request("POST", "/jobs", raw=b"{not json", timeout=30)
                took = time.monotonic() - t0
                self.assertEqual(r.status, 400, r.body)
                if took > 1.0 * harness.SLOW:
                    late.append(round(took, 2))
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        for t in writers:
            t.join(30 * harness.SLOW)
        self.assertEqual(late, [], "bad requests answered late (s) while submits waited")
        self.assertEqual(statuses, [201] * 16, "the waiting submits succeed after the lock")


if __name__ == "__main__":
    harness.main()
