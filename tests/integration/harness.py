"""
harness - start the real leadcastd (and throwaway PostgreSQL clusters) for
the integration suite. Standard library only: the suite runs with Debian's
/usr/bin/python3 and python3-pytest.

What it provides:
  - the daemon user: when the suite runs as root every daemon is started as
    root with `user = lctest` (created once, idempotently), so the privilege
    drop is exercised and the embedded PostgreSQL can run; otherwise
    everything runs as the current user;
  - TempDir: a short, lctest-traversable directory under /tmp (Unix socket
    paths must stay under ~100 bytes);
  - Daemon: writes a configuration, starts leadcastd (foreground or daemon
    mode), talks HTTP to it, runs psql on its embedded cluster, and always
    cleans up (SIGTERM, then SIGKILL, then `pg_ctl stop -m immediate`);
  - PgCluster: an external PostgreSQL on a free 127.0.0.1 port that a test
    can stop and start;
  - small helpers: free ports, HTTP requests, Prometheus text parsing,
    process scans.
"""
import glob
import http.client as httpclient
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("LEADCAST_SRCDIR") or os.path.dirname(
    os.path.dirname(HERE))
_BUILDDIR = os.path.join(SRCDIR, "build")
LEADCASTD = os.environ.get("LEADCASTD") or os.path.join(
    _BUILDDIR, "daemon", "leadcastd")
LEADCAST = os.environ.get("LEADCAST") or os.path.join(
    _BUILDDIR, "daemon", "leadcast")

VERSION = "0.1.0"
IS_ROOT = os.geteuid() == 0
TEST_USER = "lctest"
DAEMON_USER = TEST_USER if IS_ROOT else pwd.getpwuid(os.getuid()).pw_name

# Figures worth showing at the end of the run (conftest prints them).
TIMINGS = []

_lock = threading.Lock()
_used_ports = set()
_all_tempdirs = []


def note_timing(label, seconds):
    TIMINGS.append((label, seconds))
    print("%s: %.2f s" % (label, seconds))


# ---- users and commands ---------------------------------------------------

def ensure_test_user():
    """Create the unprivileged daemon user once (root only)."""
    if not IS_ROOT:
        return
    try:
        pwd.getpwnam(TEST_USER)
        return
    except KeyError:
        pass
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", TEST_USER],
                       capture_output=True, text=True)
    # Another run may have created it meanwhile: only a missing user fails.
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        raise RuntimeError("cannot create user %s: %s" % (TEST_USER, r.stderr))


def daemon_uid_gid():
    pw = pwd.getpwnam(DAEMON_USER)
    return pw.pw_uid, pw.pw_gid


def as_daemon_user(argv):
    """argv run as the daemon user (runuser when we are root)."""
    if IS_ROOT:
        return ["runuser", "-u", TEST_USER, "--"] + list(argv)
    return list(argv)


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin with a server, or pg_config's."""
    best = None
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        try:
            v = int(d.split("/")[-2])
        except ValueError:
            continue
        if os.access(os.path.join(d, "pg_ctl"), os.X_OK) and \
                os.access(os.path.join(d, "initdb"), os.X_OK):
            if best is None or v > best[0]:
                best = (v, d)
    if best:
        return best[1]
    try:
        d = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                           text=True).stdout.strip()
        if d and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    except OSError:
        pass
    return None


def pg_bin(tool):
    return os.path.join(pg_bindir(), tool)


def run(argv, timeout=60, check=True, **kw):
    kw.setdefault("cwd", "/")
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (
            " ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


def cli(conf_path, *args, timeout=30):
    """Run the leadcast CLI; returns CompletedProcess."""
    argv = [LEADCAST]
    if conf_path:
        argv += ["-c", conf_path]
    return run(argv + list(args), timeout=timeout, check=False)


# ---- temp dirs, ports, processes -----------------------------------------

class TempDir:
    """A short directory under /tmp that the daemon user can traverse."""

    def __init__(self, tag="t"):
        self.path = tempfile.mkdtemp(prefix="lcit-%s-" % tag, dir="/tmp")
        os.chmod(self.path, 0o755)
        _all_tempdirs.append(self.path)

    def sub(self, name, owner_daemon=False, mode=0o755):
        p = os.path.join(self.path, name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        if owner_daemon and IS_ROOT:
            uid, gid = daemon_uid_gid()
            os.chown(p, uid, gid)
        return p

    def cleanup(self):
        kill_procs_mentioning(self.path)
        if os.environ.get("LCIT_KEEP"):     # keep logs for a post-mortem
            print("kept %s" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)


def free_port():
    """A loopback port nobody listens on (and that we did not hand out)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with _lock:
            if port in _used_ports:
                continue
            _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def port_is_free(port):
    """True if a server could listen on 127.0.0.1:port now (like the
    daemon, with SO_REUSEADDR, so TIME_WAIT leftovers do not count)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def hold_port(port=None):
    """A listening socket on a port, to make it busy. Caller closes it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port or 0))
    s.listen(1)
    return s


def pid_state(pid):
    """The /proc state letter of pid, or None if it does not exist."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def pid_alive(pid):
    st = pid_state(pid)
    return st is not None and st not in ("Z", "X")


def proc_ids(pid, field="Uid"):
    """Integers of a /proc/PID/status field: Uid, Gid (real, effective,
    saved, fs) or Groups."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:]]
    return []


def proc_uids(pid):
    return proc_ids(pid, "Uid")


def procs_mentioning(text):
    """[(pid, cmdline)] of live processes whose command line has text."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd and pid_alive(int(d)):
            out.append((int(d), cmd.strip()))
    return out


def wait_pid_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def kill_pid(pid, timeout=10):
    """SIGTERM, then SIGKILL; only this pid."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_pid_gone(pid, timeout):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_pid_gone(pid, 5)


def kill_procs_mentioning(path):
    """Safety net: stop what is left of the processes using path."""
    for pgdata in glob.glob(os.path.join(path, "**", "postmaster.pid"),
                            recursive=True):
        pg_stop_immediate(os.path.dirname(pgdata))
    for pid, _ in procs_mentioning(path):
        kill_pid(pid, timeout=5)


def pg_stop_immediate(pgdata, wait=True):
    """pg_ctl stop -m immediate as the daemon user. wait=False (-W) when
    someone may start the cluster again at once: pg_ctl would then wait
    for the new postmaster too."""
    if not os.path.exists(os.path.join(pgdata, "postmaster.pid")):
        return
    run(as_daemon_user([pg_bin("pg_ctl"), "-D", pgdata, "-m", "immediate",
                        "-w" if wait else "-W", "-t", "30", "stop"]),
        check=False)


def pg_running(pgdata):
    """pg_ctl status says the cluster in pgdata runs."""
    r = run(as_daemon_user([pg_bin("pg_ctl"), "status", "-D", pgdata]),
            check=False)
    return r.returncode == 0


def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Poll fn() until it returns a true value; return it (or raise)."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except Exception as e:  # noqa: BLE001 - keep polling
            last = e
            if time.monotonic() >= end:
                raise
        else:
            if last:
                return last
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1f s waiting for %s "
                                 "(last: %r)" % (timeout, what, last))
        time.sleep(interval)


# ---- HTTP ----------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.body[:200])


def http_request(port, method, path, body=None, headers=None, timeout=5,
         host="127.0.0.1"):
    """One HTTP/1.1 request; returns Resp, or raises OSError."""
    conn = httpclient.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def bearer(token):
    return {"Authorization": "Bearer " + token}


def parse_metrics(text):
    """Prometheus text -> ({'name{labels}': value}, {name: (help, type)})."""
    values, meta = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            meta.setdefault(name, [None, None])[0] = help_
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            meta.setdefault(name, [None, None])[1] = typ
        elif line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            values[key] = float(val)
    return values, meta


# ---- configuration ---------------------------------------------------------

class Raw(str):
    """A value written as is (a bare word, or deliberately wrong)."""


def _fmt(v):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{ " + ", ".join(_fmt(x) for x in v) + " }"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(top, http_, extra_lines=()):
    lines = ["# written by the leadcast integration suite"]
    for k, v in top.items():
        if v is not None:
            lines.append("%s = %s" % (k, _fmt(v)))
    lines.append("http {")
    for k, v in http_.items():
        if v is not None:
            lines.append("\t%s = %s" % (k, _fmt(v)))
    lines.append("}")
    lines.extend(extra_lines)
    return "\n".join(lines) + "\n"


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError(needle)


# ---- the daemon --------------------------------------------------------------

class Daemon:
    """One leadcastd with its own config file, state dir and port.

    name keeps several daemons apart in one TempDir. Relative paths in the
    config (state_dir, templates) are resolved by the daemon against the
    config file's directory; the daemon runs with cwd=/ to prove it."""

    def __init__(self, tmp, name="d", port=None, database="embedded",
                 top=None, http_=None, extra_lines=()):
        self.tmp = tmp
        self.name = name
        self.port = port or free_port()
        self.conf_path = os.path.join(tmp.path, name + ".conf")
        self.state_rel = name + "-st"
        self.state = os.path.join(tmp.path, self.state_rel)
        self.log_path = os.path.join(tmp.path, name + ".stderr")
        tmp.sub("tpl")
        self.top = {
            "user": DAEMON_USER,
            "state_dir": self.state_rel,
            "log_level": Raw("info"),
            "database": database,
            "workers": 2,
            "shutdown_timeout": Raw("10s"),
            "templates": "tpl",
        }
        self.top.update(top or {})
        self.http = {
            "listen": ["127.0.0.1:%d" % self.port],
            "public_url": "http://127.0.0.1:%d" % self.port,
            "max_body_size": Raw("1M"),
            "max_header_size": Raw("16K"),
            "timeout": Raw("30s"),
        }
        self.http.update(http_ or {})
        self.extra_lines = list(extra_lines)
        self.proc = None
        self.daemon_pid = None       # daemon mode: from the pid file
        self._log_mark = 0
        self.last_start_output = ""
        self.write_config()

    # -- config
    @property
    def pgdata(self):
        return os.path.join(self.state, "pgdata")

    @property
    def sockdir(self):
        return os.path.join(self.state, "run")

    @property
    def pid_file(self):
        return os.path.join(self.state, "leadcastd.pid")

    def config_text(self):
        return render_config(self.top, self.http, self.extra_lines)

    def write_config(self, text=None):
        text = self.config_text() if text is None else text
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.conf_path)
        return text

    @property
    def token(self):
        t = self.top.get("admin_token")
        if t:
            return t
        with open(os.path.join(self.state, "admin.token")) as f:
            return f.read().strip()

    # -- process
    @property
    def pid(self):
        if self.daemon_pid:
            return self.daemon_pid
        return self.proc.pid if self.proc else None

    def running(self):
        if self.daemon_pid:
            return pid_alive(self.daemon_pid)
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, foreground=True):
        """Start leadcastd and return at once (Popen)."""
        assert not self.running(), "already running"
        errf = open(self.log_path, "ab")
        self._log_mark = errf.tell()
        argv = [LEADCASTD, "-c", self.conf_path]
        if foreground:
            argv.append("-f")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=errf, stderr=errf, cwd="/",
                                     start_new_session=True)
        errf.close()
        self.daemon_pid = None
        return self.proc

    def start(self, timeout=20, foreground=True):
        """Start in the foreground and wait for /healthz "ok".
        Returns the seconds it took."""
        t0 = time.monotonic()
        self.spawn(foreground=foreground)
        self.wait_ok(timeout, t0=t0)
        return time.monotonic() - t0

    def start_daemon_mode(self, timeout=30):
        """leadcastd without -f: returns (exit status, stderr, seconds)."""
        t0 = time.monotonic()
        p = self.spawn(foreground=False)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("leadcastd (daemon mode) did not return "
                                 "within %d s" % timeout)
        dt = time.monotonic() - t0
        out = self.log_since_start()
        if rc == 0:
            with open(self.pid_file) as f:
                self.daemon_pid = int(f.read().strip())
        self.proc = None
        return rc, out, dt

    def wait_exit(self, timeout):
        """Wait for a foreground daemon to exit; returns its status."""
        return self.proc.wait(timeout)

    def wait_failed_start(self, timeout=30):
        """For start-up errors: wait for the exit; (status, output)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("leadcastd is still running after %d s; "
                                 "log:\n%s" % (timeout, self.log()))
        return rc, self.log_since_start()

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal and wait; returns (exit status, seconds)."""
        t0 = time.monotonic()
        self.send_signal(sig)
        if self.daemon_pid:
            assert wait_pid_gone(self.daemon_pid, timeout), \
                "daemon pid %d still alive" % self.daemon_pid
            self.daemon_pid = None
            return None, time.monotonic() - t0
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t0

    def cleanup(self):
        """Never leave anything behind: the daemon, then its cluster."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.daemon_pid:
            kill_pid(self.daemon_pid, timeout=15)
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip() or 0)
            if pid and pid_alive(pid) and \
                    self.conf_path in open("/proc/%d/cmdline" % pid).read():
                kill_pid(pid, timeout=15)
        except (OSError, ValueError):
            pass
        pg_stop_immediate(self.pgdata)

    # -- logs
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self):
        with open(self.log_path, "rb") as f:
            f.seek(self._log_mark)
            return f.read().decode(errors="replace")

    def mark(self):
        """A position in the log; log_from(mark) reads what came after."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_from(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    # -- HTTP
    def request(self, method, path, body=None, headers=None, timeout=5,
                port=None):
        return http_request(port or self.port, method, path, body, headers, timeout)

    def get(self, path, token=None, **kw):
        return self.request("GET", path, headers=bearer(token) if token
                            else None, **kw)

    def post(self, path, body=b"{}", token=None, **kw):
        h = {"Content-Type": "application/json"}
        if token:
            h.update(bearer(token))
        return self.request("POST", path, body=body, headers=h, **kw)

    def healthz(self, timeout=5):
        r = self.get("/healthz", timeout=timeout)
        assert r.status == 200, r
        return r.json()

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_metrics(r.text)

    def metric(self, key, default=0.0):
        return self.metrics()[0].get(key, default)

    def status(self, token=None):
        r = self.get("/api/v1/status", token=token or self.token)
        assert r.status == 200, r
        return r.json()

    def wait_ok(self, timeout=20, t0=None):
        """Poll /healthz until status "ok"; seconds since t0 (or now)."""
        t0 = t0 or time.monotonic()
        end = t0 + timeout
        last = None
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("leadcastd exited with %s before it "
                                     "was ready; log:\n%s" % (
                                         self.proc.returncode, self.log()))
            try:
                last = self.healthz(timeout=2)
                if last.get("status") == "ok":
                    return time.monotonic() - t0
            except (OSError, AssertionError, ValueError) as e:
                last = e
            if time.monotonic() > end:
                raise AssertionError("leadcastd not ok after %.1f s (last "
                                     "/healthz: %r); log:\n%s" % (
                                         timeout, last, self.log()))
            time.sleep(0.05)

    def wait_health(self, pred, timeout, what="health"):
        """Poll /healthz until pred(doc); returns the doc."""
        def probe():
            doc = self.healthz(timeout=2)
            return doc if pred(doc) else None
        return wait_until(probe, timeout, what=what)

    # -- the embedded database
    def psql(self, sql, db="leadcast", check=True):
        r = run(as_daemon_user([pg_bin("psql"), "-X", "-q", "-h",
                                self.sockdir, "-U", "leadcast", "-d", db,
                                "-v", "ON_ERROR_STOP=1", "-Atc", sql]),
                timeout=30, check=check)
        return r.stdout.strip() if check else r


# ---- an external PostgreSQL ------------------------------------------------

class PgCluster:
    """A throwaway cluster on 127.0.0.1:port, run as the daemon user.

    Superuser "postgres" (trust auth); role "leadcast" owns the databases
    the daemons use."""

    def __init__(self, tag="pg"):
        self.tmp = TempDir(tag)
        self.dir = self.tmp.path
        if IS_ROOT:
            uid, gid = daemon_uid_gid()
            os.chown(self.dir, uid, gid)
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "pg.log")
        self.port = None
        self._ndb = 0

    def init(self):
        run(as_daemon_user([pg_bin("initdb"), "-D", self.data, "-U",
                            "postgres", "--auth=trust", "-E", "UTF8",
                            "--locale=C", "--no-sync"]), timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nfsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 60\n")
        return self

    def start(self):
        for attempt in range(3):
            if self.port is None:
                self.port = free_port()
            r = run(as_daemon_user([
                pg_bin("pg_ctl"), "-D", self.data, "-l", self.logfile,
                "-w", "-t", "60", "-o",
                "-p %d -k %s -c listen_addresses=127.0.0.1" % (
                    self.port, self.dir), "start"]), timeout=90, check=False)
            if r.returncode == 0:
                return self
            # the port may have been taken meanwhile: try another one
            # (only before the first successful start; later it is fixed)
            if attempt == 2 or self._ndb:
                raise RuntimeError("pg_ctl start failed: %s%s\n%s" % (
                    r.stdout, r.stderr, self.read_log()))
            self.port = None
        return self

    def stop(self, mode="fast"):
        run(as_daemon_user([pg_bin("pg_ctl"), "-D", self.data, "-m", mode,
                            "-w", "-t", "60", "stop"]), timeout=90)

    def running(self):
        return pg_running(self.data)

    def read_log(self):
        try:
            with open(self.logfile) as f:
                return f.read()
        except OSError:
            return ""

    def psql(self, sql, db="postgres", check=True):
        r = run([pg_bin("psql"), "-X", "-q", "-h", "127.0.0.1", "-p",
                 str(self.port), "-U", "postgres", "-d", db, "-v",
                 "ON_ERROR_STOP=1", "-Atc", sql], timeout=30, check=check)
        return r.stdout.strip() if check else r

    def setup_roles(self):
        self.psql("CREATE ROLE leadcast LOGIN")
        return self

    def create_db(self):
        """A fresh database owned by leadcast; returns its name."""
        self._ndb += 1
        name = "lc%d_%d" % (os.getpid(), self._ndb)
        self.psql("CREATE DATABASE %s OWNER leadcast" % name)
        return name

    def uri(self, db):
        return "postgresql://leadcast@127.0.0.1:%d/%s" % (self.port, db)

    def destroy(self):
        try:
            if os.path.exists(os.path.join(self.data, "postmaster.pid")):
                pg_stop_immediate(self.data)
        finally:
            self.tmp.cleanup()


def new_cluster(tag="pg"):
    c = PgCluster(tag)
    try:
        c.init().start().setup_roles()
    except BaseException:
        c.destroy()
        raise
    return c


def leftover_tempdirs():
    return [d for d in _all_tempdirs if os.path.exists(d)]


def error_lines(text):
    """Log lines at level error (foreground log format)."""
    return [l for l in text.splitlines() if " error: " in l]
