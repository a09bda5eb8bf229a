"""harness.py - shared machinery of the end-to-end tests.

Starts the real `jobd`, `jobd-bot` and `jobctl` binaries (paths from JOBD_BIN,
JOBD_BOT_BIN, JOBCTL_BIN) in a temporary directory per test, talks to them over
HTTP as a user's program would, and reads what they leave behind: the SQLite
database (read-only) and the datalake.  Teardown stops every process and, when
a test failed, prints the tail of each process's log.  Standard library only.
"""

import ctypes
import glob
import http.client as http_client
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOBD_BIN = os.environ.get("JOBD_BIN", "")
JOBD_BOT_BIN = os.environ.get("JOBD_BOT_BIN", "")
JOBCTL_BIN = os.environ.get("JOBCTL_BIN", "")

# Sanitizer builds run several times slower; timing limits are multiplied by this.
SLOW = float(os.environ.get("JOBD_E2E_SLOW", "1"))

# The engine every jobd of a test runs on: "sqlite" (its data directory's jobd.db) or
# "postgresql" (a database of the test's own on the throwaway cluster of scripts/test,
# JOBD_TEST_PG).  tests/e2e/CMakeLists.txt registers each engine-neutral test once per
# engine (e2e_also_on_pg).
ENGINE = os.environ.get("JOBD_E2E_ENGINE", "sqlite")

ADMIN_TOKEN = "e2e-admin-token-7f3a9c"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


# ---- the one definition of the job record, read where the code reads it ---------------

def _read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def job_fields():
    """[(name, type)] of JOB_FIELDS in src/store/record.h, in order."""
    text = _read("src/store/record.h")
    start = text.index("#define JOB_FIELDS(X)")
    block = text[start:text.index("#define", start + 1)]
    return re.findall(r"X\((\w+),\s*(REC_\w+)\)", block)


def api_job_fields():
    """Field names of the table under "## The job object" in docs/api.md."""
    text = _read("docs/api.md")
    start = text.index("## The job object")
    end = text.index("\n## ", start + 1)
    return re.findall(r"^\| `(\w+)` \|", text[start:end], re.M)


def parse_time(text):
    """RFC 3339 UTC with milliseconds -> ms since the epoch; raises on any other form."""
    m = TIME_RE.match(text)
    if not m:
        raise AssertionError(f"time {text!r} is not RFC 3339 UTC with milliseconds")
    y, mo, d, h, mi, s, ms = (int(g) for g in m.groups())
    dt = datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1000 + ms


def normalise_api_job(job):
    """A job object as sent by the API or written to the datalake, reduced to the record
    fields with times as ms, so that it compares with normalise_db_row()."""
    out = {}
    for name, kind in job_fields():
        v = job.get(name)
        out[name] = parse_time(v) if kind == "REC_TIME" and v is not None else v
    return out


def normalise_db_row(row):
    """A jobs-table row (sqlite3.Row, or PgRow) reduced like normalise_api_job()."""
    out = {}
    for name, kind in job_fields():
        v = row[name]
        if v is None:
            out[name] = None
        elif kind == "REC_JSON":
            # SQLite hands over the JSON text; pg_rows the value, already read.
            out[name] = v if isinstance(row, PgRow) else json.loads(v)
        elif kind == "REC_TIME":
            out[name] = int(v) if isinstance(v, int) or str(v).isdigit() else parse_time(v)
        elif kind == "REC_INT":
            out[name] = int(v)
        else:
            out[name] = v
    return out


def expected_result(op, a, b):
    """What jobd-bot must answer for op on int64 a, b: ("ok", value) or ("error", words).
    C semantics: quotient truncates toward zero, remainder takes the dividend's sign."""
    def checked(v):
        return ("ok", v) if INT64_MIN <= v <= INT64_MAX else ("error", "overflow")

    if op == "sum":
        return checked(a + b)
    if op == "difference":
        return checked(a - b)
    if op == "product":
        return checked(a * b)
    if op in ("quotient", "remainder"):
        if b == 0:
            return ("error", "division by zero")
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return checked(q) if op == "quotient" else ("ok", a - q * b)
    if op == "power":
        return checked(a**b)
    raise ValueError(op)


# ---- HTTP --------------------------------------------------------------------------------

class Reply(tuple):
    """(status, headers, body): body is the parsed JSON, None when empty, or the raw
    bytes when the server sent something that is not JSON."""

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    body = property(lambda self: self[2])


def http_request(port, method, path, body=None, raw=None, headers=None, token=None, timeout=15):
    """One request to 127.0.0.1:port on a fresh connection.  body is JSON-encoded;
    raw is sent as is.  Returns a Reply."""
    conn = http_client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    hdrs.update(headers or {})
    try:
        try:
            conn.request(method, path, body=data, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) before reading the whole body
        resp = conn.getresponse()
        payload = resp.read()
        if not payload:
            parsed = None
        else:
            try:
                parsed = json.loads(payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                parsed = payload
        return Reply((resp.status, resp.headers, parsed))
    finally:
        conn.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- processes ---------------------------------------------------------------------------

def _die_with_parent():
    """Runs in the child before exec: if the test runner is killed (CTest timeout), the
    kernel kills this process too, so no server is left holding a port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    """A started program with its log file (stdout and stderr together)."""

    def __init__(self, name, argv, log_path, env):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.rc = None
        self.killed = False
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, env=env,
                                      preexec_fn=_die_with_parent)

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        """Send sig (SIGKILL, SIGSTOP, SIGCONT...) if the process still runs."""
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout seconds.  Returns the exit code (negative for
        a signal) and records whether it had to be killed."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.popen.kill()
                self.popen.wait()
        self.rc = self.popen.returncode
        self._log.close()
        return self.rc

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])


class Jobd(Proc):
    """The server, with helpers for its HTTP API, its database and its datalake."""

    def __init__(self, name, data_dir, port, token, args, log_path, db_url=None):
        self.data_dir = data_dir
        self.port = port
        self.token = token
        self.db_url = db_url  # PostgreSQL: the database it runs on; None: SQLite
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        env.pop("JOBD_ADMIN_TOKEN", None)
        if token is not None:
            env["JOBD_ADMIN_TOKEN"] = token
        argv = [JOBD_BIN, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, *args]
        super().__init__(name, argv, log_path, env)

    def wait_ready(self, timeout=15):
        """Poll /health until 200; raise with the log tail if jobd exits or times out."""
        deadline = time.monotonic() + timeout * SLOW
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before "
                                     f"answering /health:\n{self.tail()}")
            try:
                r = self.request("GET", "/health", timeout=2)
                if r.status == 200:
                    return r
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy after {timeout}s (last: {last!r}):\n"
                             f"{self.tail()}")

    def request(self, method, path, body=None, **kw):
        return http_request(self.port, method, path, body, **kw)

    # ---- database, read-only ----
    @property
    def db_path(self):
        return os.path.join(self.data_dir, "jobd.db")

    def db_query(self, sql, params=()):
        """The rows of sql (SQL both engines read alike, `?` for each of params), each
        indexed by column name."""
        if self.db_url:
            values = iter(params)
            return pg_rows(self.db_url, re.sub(r"\?", lambda _: _pg_literal(next(values)), sql))
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def db_columns(self, table="jobs"):
        if self.db_url:
            return [r["name"] for r in self.db_query(
                "SELECT column_name AS name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = ? ORDER BY ordinal_position",
                (table,))]
        return [r["name"] for r in self.db_query(f"PRAGMA table_info({table})")]

    def db_jobs(self):
        """{id: normalised row} of every job in the database."""
        return {r["id"]: normalise_db_row(r) for r in self.db_query("SELECT * FROM jobs")}

    # ---- datalake ----
    def datalake(self):
        """[(relative path, object)] of every complete line in the datalake."""
        out = []
        root = os.path.join(self.data_dir, "datalake", "results")
        for path in sorted(glob.glob(os.path.join(root, "date=*", "*.jsonl"))):
            with open(path, "rb") as f:
                data = f.read().decode("utf-8")
            lines = data.split("\n")
            for line in lines[:-1]:  # the last piece is empty or still being written
                try:
                    out.append((os.path.relpath(path, root), json.loads(line)))
                except ValueError as e:
                    raise AssertionError(f"{path}: line is not JSON ({e}): {line!r}")
        return out

    def datalake_count(self):
        """{job id: number of datalake lines}."""
        counts = {}
        for _, obj in self.datalake():
            counts[obj.get("id")] = counts.get(obj.get("id"), 0) + 1
        return counts


class Bot(Proc):
    def __init__(self, name, server_url, operations, log_path, args=()):
        argv = [JOBD_BOT_BIN, "--server", server_url, "--name", name, *args]
        if operations:
            argv += ["--operations", ",".join(operations)]
        super().__init__(name, argv, log_path, dict(os.environ))


# ---- the test case base ------------------------------------------------------------------

class E2ETestCase(unittest.TestCase):
    """Each test gets its own temporary directory, removed when the test passes and kept
    (its path printed, with every process's log tail) when it fails or JOBD_E2E_KEEP is
    set."""

    needs = ("jobd",)  # binaries a test class needs: jobd, jobd-bot, jobctl

    def setUp(self):
        bins = {"jobd": JOBD_BIN, "jobd-bot": JOBD_BOT_BIN, "jobctl": JOBCTL_BIN}
        for b in self.needs:
            if not bins[b] or not os.access(bins[b], os.X_OK):
                self.fail(f"{b} binary not found (set {b.upper().replace('-', '_')}_BIN; "
                          f"got {bins[b]!r})")
        if ENGINE == "postgresql" or isinstance(self, PgTestCase):
            # Registered before _stop_all, so it runs after it (cleanups are LIFO).
            self.db_url = pg_database(f"e2e_{os.getpid()}_{self._testMethodName.lower()}")
            self.addCleanup(pg_drop_database, self.db_url)
        else:
            self.db_url = None
        self.tmp = tempfile.mkdtemp(prefix=f"jobd-e2e-{self._testMethodName}-")
        self.procs = []
        self.addCleanup(self._stop_all)

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        super().run(result)
        tmp = getattr(self, "tmp", None)
        if len(result.failures) + len(result.errors) > before:
            for p in getattr(self, "procs", []):
                sys.stderr.write(f"\n---- {p.name} (rc {p.rc}) {p.log_path}, last lines ----\n"
                                 f"{p.tail()}\n")
            if tmp:
                sys.stderr.write(f"\n(test directory kept: {tmp})\n")
        elif tmp and os.environ.get("JOBD_E2E_KEEP"):
            sys.stderr.write(f"\n(JOBD_E2E_KEEP: test directory kept: {tmp})\n")
        elif tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return result

    def _stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        reports = [f"{p.name}: {line}" for p in self.procs for line in p.log().splitlines()
                   if any(m in line for m in SANITIZER_MARKS)]
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports[:20]))

    def _log_path(self, name):
        os.makedirs(os.path.join(self.tmp, "logs"), exist_ok=True)
        return os.path.join(self.tmp, "logs", f"{name}.log")

    # ---- starting things ----
    def start_jobd(self, data_dir=None, port=None, token=ADMIN_TOKEN, args=(), name="jobd"):
        """Start jobd (by default on a fresh port and <tmp>/data) and wait for /health."""
        data_dir = data_dir or os.path.join(self.tmp, "data")
        db_url = args[list(args).index("--db") + 1] if "--db" in args else None
        if ENGINE == "postgresql" and db_url is None:
            db_url = self.db_url  # every jobd of the test on the test's database
            args = ("--db", db_url, *args)
        for attempt in range(3):
            p = Jobd(name, data_dir, port or free_port(), token, list(args), self._log_path(name),
                     db_url)
            self.procs.append(p)
            try:
                p.wait_ready()
                return p
            except AssertionError:
                # Another program may have taken the free port between pick and bind.
                if port is None and attempt < 2 and not p.alive() and "in use" in p.log():
                    continue
                raise
        raise AssertionError("unreachable")

    def run_jobd(self, *args, timeout=30):
        """Run jobd to completion (e.g. `migrate status`); returns CompletedProcess."""
        env = dict(os.environ, JOBD_ADMIN_TOKEN=ADMIN_TOKEN)
        return subprocess.run([JOBD_BIN, *args], capture_output=True, text=True, env=env,
                              timeout=timeout * SLOW, stdin=subprocess.DEVNULL)

    def start_bots(self, jobd, n, operations=None, args=(), first=1):
        """Start bots bot-<first> .. with extra command-line args (e.g. --work-ms)."""
        bots = []
        for i in range(first, first + n):
            name = f"bot-{i}"
            b = Bot(name, jobd.url, operations, self._log_path(name), args)
            self.procs.append(b)
            bots.append(b)
        return bots

    def jobctl(self, jobd, *args, token=ADMIN_TOKEN, timeout=20):
        env = dict(os.environ)
        env.pop("JOBD_ADMIN_TOKEN", None)
        if token is not None:
            env["JOBD_ADMIN_TOKEN"] = token
        return subprocess.run([JOBCTL_BIN, "--server", jobd.url, *args], capture_output=True,
                              text=True, env=env, timeout=timeout * SLOW,
                              stdin=subprocess.DEVNULL)

    # ---- waiting ----
    def wait_for(self, fn, timeout, what, interval=0.05):
        """Poll fn() until it returns something truthy; return it.  Fails after timeout."""
        deadline = time.monotonic() + timeout * SLOW
        last = None
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() >= deadline:
                self.fail(f"timed out after {timeout * SLOW:.0f}s waiting for {what}; "
                          f"last value: {last!r}"[:2000])
            time.sleep(interval)

    def wait_log(self, proc, text, timeout=5):
        return self.wait_for(lambda: text in proc.log(), timeout, f"{text!r} in {proc.name} log")

    def wait_job_log(self, proc, job_id, pattern, timeout=5):
        """Wait for a line of proc's log matching `pattern`, whose group 1 names the job;
        assert that name is a piece (8 or more characters) of job_id.  Returns the line."""
        def find():
            return next((m for m in re.finditer(pattern, proc.log())
                         if job_id in m.group(0) or _names(m.group(1), job_id)), None)
        m = self.wait_for(find, timeout, f"/{pattern}/ naming job {job_id} in {proc.name} log")
        return m.group(0)

    # ---- the API, as a bot or a user would use it ----
    def submit(self, jobd, op, a, b):
        body = {"operation": op, "input": {"a": a, "b": b}}
        return self.expect(jobd.request("POST", "/jobs", body), 201, f"POST /jobs {body}")

    def get_job(self, jobd, job_id):
        return self.expect(jobd.request("GET", f"/jobs/{job_id}"), 200, f"GET /jobs/{job_id}")

    def wait_finished(self, jobd, job_id, timeout=15):
        def done():
            j = self.get_job(jobd, job_id)
            return j if j["status"] in ("succeeded", "failed") else None
        return self.wait_for(done, timeout, f"job {job_id} to finish")

    def register_bot(self, jobd, name, operations):
        body = self.expect(jobd.request("POST", "/bots/register",
                                        {"name": name, "operations": operations}),
                           201, "POST /bots/register")
        self.assertEqual(body.get("bot_id"), (body.get("bot") or {}).get("id"), body)
        return body["bot_id"]

    def claim(self, jobd, bot_id, operations, wait_ms=0, timeout=15):
        return jobd.request("POST", "/jobs/claim",
                            {"bot_id": bot_id, "operations": operations, "wait_ms": wait_ms},
                            timeout=timeout + wait_ms / 1000)

    def claim_one(self, jobd, bot_id, operations):
        body = self.expect(self.claim(jobd, bot_id, operations), 200, "POST /jobs/claim")
        self.assertEqual(len(body.get("jobs", [])), 1, body)
        return body["jobs"][0]

    def datalake_barrier(self, jobd):
        """Finish one more job by hand and wait for its datalake line.  The datalake is
        written in finish order, so afterwards every job finished earlier is exported and
        any duplicate line it would get is already there.  Returns the barrier's id."""
        bot = self.register_bot(jobd, "barrier-bot", ["e2e_barrier"])
        job = self.submit(jobd, "e2e_barrier", 0, 0)
        claimed = self.claim_one(jobd, bot, ["e2e_barrier"])
        self.assertEqual(claimed["id"], job["id"])
        r = jobd.request("POST", f"/jobs/{job['id']}/complete",
                         {"bot_id": bot, "lease": claimed["lease"], "result": 0,
                          "duration_ms": 0})
        self.assertEqual(r.status, 200, r.body)
        self.wait_for(lambda: job["id"] in jobd.datalake_count(), 15,
                      "the barrier job's datalake line")
        return job["id"]

    def assert_datalake_once(self, jobd, ids):
        """After a barrier: the jobs of `ids` (and no others) are in the datalake exactly once
        each, every line equal to its database row.  Returns the rows {id: row}."""
        barrier = self.datalake_barrier(jobd)
        counts = jobd.datalake_count()
        self.assertEqual(counts.pop(barrier), 1)
        self.assertEqual(set(counts), set(ids), "every job in the datalake")
        self.assertEqual({i: c for i, c in counts.items() if c != 1}, {}, "duplicate lines")
        rows = jobd.db_jobs()
        lake = {o["id"]: normalise_api_job(o) for _, o in jobd.datalake()}
        self.assertEqual([i for i in ids if lake[i] != rows[i]][:5], [],
                         "datalake lines that differ from the database")
        return rows

    # ---- assertions ----
    def expect(self, reply, status, what):
        """Assert a success reply: `status` and a JSON object body, which it returns."""
        self.assertEqual(reply.status, status, f"{what} -> {reply.status} {reply.body!r}")
        self.assertIsInstance(reply.body, dict, f"{what} -> {reply.status} with body "
                              f"{reply.body!r}, not a JSON object")
        return reply.body

    def assert_error(self, reply, status, code, mentions=()):
        """The documented error: status, {"error":{"code","message","request_id"}} and
        nothing else, X-Request-Id equal to request_id, the message naming `mentions`."""
        st, headers, body = reply
        self.assertEqual((st, body.get("error", {}).get("code") if isinstance(body, dict)
                          else body), (status, code), f"full body: {body!r}")
        self.assertEqual(list(body.keys()), ["error"], body)
        err = body["error"]
        self.assertEqual(sorted(err.keys()), ["code", "message", "request_id"], err)
        for k in ("code", "message", "request_id"):
            self.assertIsInstance(err[k], str, f"{k} in {err}")
            self.assertTrue(err[k], f"empty {k} in {err}")
        self.assertEqual(headers.get("X-Request-Id"), err["request_id"])
        self.assertIn("application/json", headers.get("Content-Type", ""))
        for m in mentions:
            self.assertIn(m, err["message"], f"message does not name {m!r}")
        return err


def _names(token, job_id):
    return len(token) >= 8 and token in job_id


def run_concurrently(fns):
    """Call each fn in its own thread; return their results (exceptions re-raised)."""
    results = [None] * len(fns)
    errors = []

    def call(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ---- PostgreSQL (label pg) ----------------------------------------------------------------

PG_URL = os.environ.get("JOBD_TEST_PG", "")  # postgresql://.../postgres, from scripts/lib.sh
PG_CTL = os.environ.get("JOBD_TEST_PG_CTL", "")  # its pg_ctl command line
SKIP = 77  # the pg tests' SKIP_RETURN_CODE in CTest


def psql(url, sql):
    """Run sql on the database at url with psql; returns its output, raises on an error."""
    r = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError(f"psql {sql[:100]!r}: {r.stderr.strip()}")
    return r.stdout


class PgRow(dict):
    """A row of pg_rows: its JSON columns hold values, not JSON text."""


def pg_rows(url, sql):
    """The rows of query sql as PgRow dicts (JSON values as Python values, BIGINT as
    int)."""
    rows = json.loads(psql(url, f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t"))
    return [PgRow(r) for r in rows]


def _pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError(f"db_query parameter {v!r}: only None, int and str")
    return str(v) if isinstance(v, int) else "'" + v.replace("'", "''") + "'"


def pg_database(name):
    """Create database `name` (cut to 63 characters) on JOBD_TEST_PG; returns its URL."""
    name = name[:63]
    psql(PG_URL, f"CREATE DATABASE {name}")
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def pg_drop_database(url):
    psql(PG_URL, f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


class PgTestCase(E2ETestCase):
    """A test on the throwaway PostgreSQL that scripts/test starts: each test gets a database
    of its own (self.db_url, made by E2ETestCase.setUp), dropped after every process is
    stopped."""

    def start_servers(self, n, args=()):
        """n jobd servers jobd-1..n on self.db_url with server ids s1..sn, sharing one data
        directory: its datalake then holds every server's part files side by side."""
        data_dir = os.path.join(self.tmp, "data")
        return [self.start_jobd(data_dir=data_dir, name=f"jobd-{i}",
                                args=("--db", self.db_url, "--server-id", f"s{i}", *args))
                for i in range(1, n + 1)]

    def db(self, sql):
        return pg_rows(self.db_url, sql)

    def pg_ctl(self, *args):
        """Run the cluster's pg_ctl (e.g. "stop", "-m", "fast")."""
        r = subprocess.run(shlex.split(PG_CTL) + list(args), capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, f"pg_ctl {args}: {r.stdout}{r.stderr}")

    def check_run(self, jobd, expected):
        """After a run of `expected` ({id: (op, a, b)}) through servers sharing the database
        and data directory of jobd: every job succeeded once with the right result; no job
        was ever held by two bots at once (its attempts never overlap, one ended
        succeeded); and the datalake, across every server's part files, has exactly one
        line per job, equal to its row."""
        rows = {r["id"]: r for r in self.db("SELECT * FROM jobs")}
        self.assertEqual(set(rows), set(expected), "one row per submitted job")
        wrong = [(i, expected[i], rows[i]["status"], rows[i]["result"]) for i in expected
                 if (rows[i]["status"], rows[i]["result"])
                 != ("succeeded", expected_result(*expected[i])[1])]
        self.assertEqual(wrong[:5], [], f"{len(wrong)} jobs without the right result")
        attempts = {}
        for a in self.db("SELECT job_id, attempt, bot_id, started_at, ended_at, outcome"
                         " FROM attempts ORDER BY job_id, attempt"):
            attempts.setdefault(a["job_id"], []).append(a)
        overlap, succeeded = [], []
        for jid, tries in attempts.items():
            for x, y in zip(tries, tries[1:]):
                if x["ended_at"] is None or x["ended_at"] > y["started_at"]:
                    overlap.append((jid, x, y))
            if [t["outcome"] for t in tries].count("succeeded") != 1:
                succeeded.append((jid, tries))
        self.assertEqual(overlap[:3], [], "a job held by two bots at once")
        self.assertEqual(succeeded[:3], [], "a job without exactly one succeeded attempt")
        self.assertEqual(set(attempts), set(expected), "every job has its attempts")
        self.wait_for(lambda: not self.db("SELECT job_id FROM export_queue LIMIT 1"),
                      60, "every job to be exported")
        counts = jobd.datalake_count()
        self.assertEqual(set(counts), set(expected), "every job in the datalake")
        self.assertEqual({i: c for i, c in counts.items() if c != 1}, {}, "duplicate lines")
        lake = {o["id"]: normalise_api_job(o) for _, o in jobd.datalake()}
        db = {i: normalise_db_row(r) for i, r in rows.items()}
        self.assertEqual([i for i in expected if lake[i] != db[i]][:5], [],
                         "datalake lines that differ from the database")
        files = {os.path.basename(rel) for rel, _ in jobd.datalake()}
        self.assertTrue(files <= {"part-s1.jsonl", "part-s2.jsonl", "part-s3.jsonl"}, files)


def random_jobs(n, seed):
    """n (op, a, b) of every operation, with operands whose answers fit int64."""
    rng = random.Random(seed)
    ops = ["sum", "difference", "product", "quotient", "remainder", "power"]
    jobs = []
    for i in range(n):
        op = ops[i % len(ops)]
        if op == "power":
            a, b = rng.randint(-40, 40), rng.randint(0, 9)
        elif op in ("quotient", "remainder"):
            a, b = rng.randint(-10**12, 10**12), rng.choice([-1, 1]) * rng.randint(1, 10**6)
        else:
            a, b = rng.randint(-10**15, 10**15), rng.randint(-10**3, 10**3)
        jobs.append((op, a, b))
    return jobs


def main_pg():
    """main() of the pg tests: without a PostgreSQL to test on, say so and exit SKIP."""
    if not PG_URL:
        print("skipped: JOBD_TEST_PG is not set (scripts/test starts a PostgreSQL and sets it)")
        sys.exit(SKIP)
    main()


def main():
    if ENGINE == "postgresql" and not PG_URL:
        print("skipped: JOBD_E2E_ENGINE=postgresql, but JOBD_TEST_PG is not set (scripts/test"
              " starts a PostgreSQL and sets it)")
        sys.exit(SKIP)
    unittest.main(verbosity=2)

