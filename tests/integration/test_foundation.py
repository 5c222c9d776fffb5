"""
The foundation contract of leadcastd and the leadcast CLI: start-up (embedded
and external PostgreSQL), privileges, /healthz, /metrics, the admin API and
its token, reload (SIGHUP, API, CLI), stop (SIGTERM/SIGINT), database
reconnects, start-up errors, daemon mode, LISTEN/NOTIFY and request limits.
"""
import json
import os
import re
import signal
import socket
import stat
import time

import pytest

import harness
from harness import Raw, cli, wait_until

IS_ROOT = harness.IS_ROOT
SCHEMA_RE = re.compile(r"database schema: (\d+) migrations, (\d+) applied now")
HEALTHZ_200 = 'leadcast_http_requests_total{route="healthz",status="200"}'
RELOAD_OK = 'leadcast_config_reloads_total{result="ok"}'
RELOAD_ERR = 'leadcast_config_reloads_total{result="error"}'
TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-0123456789abcdef"
TOKEN_C = "token-c-0123456789abcdef"


def is_ok(doc):
    return doc["status"] == "ok"


def assert_nothing_left(d):
    """After a failed start: no process, port free, no cluster."""
    assert harness.port_is_free(d.port), "port %d still busy" % d.port
    left = harness.procs_mentioning(d.state) + \
        harness.procs_mentioning(d.conf_path)
    assert not left, "left running: %r" % left
    assert not os.path.exists(os.path.join(d.pgdata, "postmaster.pid"))


def wait_listening(psql):
    """Until the daemon's LISTEN connection is subscribed."""
    wait_until(lambda: psql("SELECT count(*) FROM pg_stat_activity WHERE "
                            "query LIKE 'LISTEN%'") != "0", 10,
               what="the LISTEN connection")


def notify_and_wait(d, psql, timeout=2):
    """NOTIFY leadcast_wake; wait until the daemon counted it."""
    key = "leadcast_db_notifications_total"
    before = d.metric(key)
    psql("NOTIFY leadcast_wake, 'x'")
    wait_until(lambda: d.metric(key) >= before + 1, timeout,
               what="notification counted")
    return before


def err_re(d, line):
    """file:line:col: for d's config file."""
    return re.compile(r"%s:%d:\d+: " % (re.escape(d.conf_path), line))


# ---- 1. first start and restart with the embedded database ----------------

def test_first_start_and_restart_embedded(daemons):
    d = daemons(name="fs")
    uid, gid = harness.daemon_uid_gid()
    assert not os.path.exists(d.state)

    secs = d.start(timeout=30)
    harness.note_timing("first start (initdb) -> /healthz ok", secs)
    assert secs < 10, "first start took %.1f s" % secs

    st = os.stat(d.state)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert (st.st_uid, st.st_gid) == (uid, gid)
    tok = os.stat(os.path.join(d.state, "admin.token"))
    assert stat.S_IMODE(tok.st_mode) == 0o600
    assert tok.st_uid == uid
    assert len(d.token) >= 16
    if IS_ROOT:
        uids = harness.proc_uids(d.pid)
        assert uids == [uid] * 4, "daemon runs with uids %r" % uids
        assert harness.proc_ids(d.pid, "Gid") == [gid] * 4
        assert 0 not in harness.proc_ids(d.pid, "Groups")
    pm = _postmaster_pid(d)
    assert harness.proc_uids(pm)[0] == uid

    names = d.psql("SELECT name FROM schema_migrations ORDER BY name")\
        .splitlines()
    assert "001_core" in names
    total, applied = map(int, SCHEMA_RE.search(d.log()).groups())
    assert total == applied == len(names)
    applied_at = d.psql("SELECT applied_at FROM schema_migrations")
    first = wait_until(lambda: d.psql(
        "SELECT id, pid, stopped_at IS NULL FROM nodes"), 5, what="node row")
    node_id, pid, alive = first.split("|")
    assert (int(pid), alive) == (d.pid, "t")
    d.wait_health(lambda h: h["node"] == int(node_id), 5, "node in healthz")
    # the CLI finds the generated token in the state directory
    r = cli(d.conf_path, "reload")
    assert r.returncode == 0, r.stderr

    rc, _ = d.stop()
    assert rc == 0, d.log()
    secs = d.start(timeout=20)
    harness.note_timing("restart -> /healthz ok", secs)
    assert secs < 2, "restart took %.1f s" % secs
    assert "%d migrations, 0 applied now" % len(names) in d.log_since_start()
    assert d.psql("SELECT applied_at FROM schema_migrations") == applied_at
    rows = wait_until(lambda: (lambda out: out if len(out) == 2 else None)(
        d.psql("SELECT id, pid, stopped_at IS NOT NULL FROM nodes "
               "ORDER BY id").splitlines()), 5, what="second node row")
    assert rows[0] == "%s|%s|t" % (node_id, pid)
    assert rows[1].split("|")[1:] == [str(d.pid), "f"]


# ---- 2. /healthz and /metrics ----------------------------------------------

def test_healthz_fields(shared):
    doc = shared.wait_health(lambda h: h["node"] > 0, 5, "node id")
    assert set(doc) == {"status", "version", "uptime_seconds", "database",
                        "node"}
    assert doc["status"] == "ok"
    assert doc["version"] == harness.VERSION
    assert isinstance(doc["uptime_seconds"], int) and \
        doc["uptime_seconds"] >= 0
    assert isinstance(doc["node"], int) and doc["node"] > 0
    assert doc["database"] == {"mode": "embedded", "state": "connected"}
    r = shared.get("/healthz")
    assert r.header("Content-Type").startswith("application/json")
    head = shared.request("HEAD", "/healthz")
    assert head.status == 200 and head.body == b""


REQUIRED_METRICS = {
    "leadcast_http_requests_total": "counter",
    "leadcast_db_queries_total": "counter",
    "leadcast_db_errors_total": "counter",
    "leadcast_db_connected": "gauge",
    "leadcast_db_reconnects_total": "counter",
    "leadcast_db_notifications_total": "counter",
    "leadcast_workers_queue_depth": "gauge",
    "leadcast_uptime_seconds": "gauge",
}


def test_metrics(shared):
    before = shared.metric(HEALTHZ_200)
    n = 7
    for _ in range(n):
        shared.healthz()
    values, meta = shared.metrics()
    assert values[HEALTHZ_200] - before == n

    for name, typ in REQUIRED_METRICS.items():
        assert name in meta, "no HELP/TYPE for %s" % name
        assert meta[name][0], "empty HELP for %s" % name
        assert meta[name][1] == typ, name
        assert any(k == name or k.startswith(name + "{") for k in values), \
            "no sample of %s" % name
    assert values["leadcast_db_connected"] == 1
    assert values["leadcast_db_queries_total"] >= 1
    assert values["leadcast_uptime_seconds"] >= 0
    r = shared.get("/metrics")
    assert r.header("Content-Type").startswith("text/plain")

    key404 = 'leadcast_http_requests_total{route="unknown",status="404"}'
    before = values.get(key404, 0)
    r = shared.get("/no/such/page")
    assert r.status == 404
    assert r.text == "not found\n"
    assert shared.metric(key404) == before + 1


def test_metrics_reload_counter_present_from_start(daemons, ext_db):
    d = daemons(database=ext_db)
    d.start()
    values, meta = d.metrics()
    assert meta.get("leadcast_config_reloads_total", [None, None])[1] == \
        "counter"
    assert values.get(RELOAD_OK) == 0 and values.get(RELOAD_ERR) == 0


# ---- 3. the admin API token --------------------------------------------------

def test_api_token(shared):
    r = shared.get("/api/v1/status")
    assert r.status == 401
    assert r.header("WWW-Authenticate").startswith("Bearer")
    assert r.json()["error"]["message"]
    r = shared.get("/api/v1/status", token="not-the-token-0123456789")
    assert r.status == 401 and r.header("WWW-Authenticate")
    r = shared.request("GET", "/api/v1/status", headers={
        "Authorization": "Basic " + shared.token})
    assert r.status == 401

    r = shared.get("/api/v1/status", token=shared.token)
    assert r.status == 200, r
    doc = r.json()
    assert doc["version"] == harness.VERSION
    assert doc["config"] == os.path.realpath(shared.conf_path)
    assert isinstance(doc["uptime_seconds"], int)
    assert doc["database"]["mode"] == "embedded"
    assert doc["database"]["state"] == "connected"
    assert isinstance(doc["database"]["server_version"], int)
    assert doc["database"]["server_version"] > 0
    assert isinstance(doc["database"]["pending"], int)
    assert doc["workers"]["threads"] == 3
    assert {"queue", "completed"} <= set(doc["workers"])
    assert "last_reload" in doc

    r = shared.get("/api/v1/nope", token=shared.token)
    assert r.status == 404
    assert r.header("Content-Type").startswith("application/json")
    assert r.json()["error"]["message"]
    r = shared.post("/api/v1/status", token=shared.token)
    assert r.status == 405 and r.json()["error"]["message"]


def test_api_inline_token(daemons, ext_db):
    d = daemons(database=ext_db, top={"admin_token": TOKEN_A})
    d.start()
    assert d.healthz()["database"]["mode"] == "external"
    assert d.get("/api/v1/status", token=TOKEN_A).status == 200
    assert d.get("/api/v1/status", token=TOKEN_B).status == 401
    assert d.get("/api/v1/status").status == 401
    assert not os.path.exists(os.path.join(d.state, "admin.token"))


# ---- 4. reload ------------------------------------------------------------------

def test_sighup_good_reload(daemons):
    d = daemons(top={"admin_token": TOKEN_A})
    d.start()
    ok0 = d.metric(RELOAD_OK)
    assert d.status()["last_reload"] is None
    # a 2 KB body passes with the 1M limit
    assert d.post("/api/v1/nope", body=b" " * 2048, token=TOKEN_A).status \
        == 404
    # at log_level info a notification is not logged
    wait_listening(d.psql)
    mark = d.mark()
    notify_and_wait(d, d.psql)
    assert "notification on leadcast_wake" not in d.log_from(mark)

    d.top["admin_token"] = TOKEN_B
    d.top["log_level"] = Raw("debug")
    d.http["max_body_size"] = Raw("1K")
    d.write_config()
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: d.get("/api/v1/status", token=TOKEN_B).status == 200,
               5, what="new token accepted")
    assert d.get("/api/v1/status", token=TOKEN_A).status == 401
    assert d.metric(RELOAD_OK) == ok0 + 1
    lr = d.status()["last_reload"]
    assert lr["ok"] is True and lr["errors"] == [] and \
        lr["restart_needed"] == ""
    assert isinstance(lr["time"], int) and lr["time"] > 0
    # log_level debug is in force
    mark = d.mark()
    notify_and_wait(d, d.psql)
    assert re.search(r" debug: notification on leadcast_wake: x$",
                     d.log_from(mark), re.M), d.log_from(mark)
    # the new body limit is in force
    assert raw_request(d.port, "POST", "/api/v1/nope", b" " * 2048,
                       token=TOKEN_B)[0] != 404

    # a restart-only key: warned about, not applied
    newport = harness.free_port()
    mark = d.mark()
    d.http["listen"] = ["127.0.0.1:%d" % newport]
    d.write_config()
    d.send_signal(signal.SIGHUP)
    log = wait_until(lambda: (lambda s: s if "reloaded" in s else None)(
        d.log_from(mark)), 5, what="reload logged")
    warn = [l for l in log.splitlines() if " warn: " in l]
    assert any("http.listen" in l for l in warn), log
    assert d.healthz()["status"] == "ok"          # the old port serves
    assert harness.port_is_free(newport)
    lr = d.status()["last_reload"]
    assert lr["ok"] is True and "http.listen" in lr["restart_needed"]
    assert d.metric(RELOAD_OK) == ok0 + 2


def test_sighup_bad_reload_and_cli(daemons):
    d = daemons(top={"admin_token": TOKEN_A})
    d.start()
    good = d.config_text()
    err0 = d.metric(RELOAD_ERR)

    d.top["admin_token"] = TOKEN_C               # must not be applied
    d.top["workers"] = Raw("many")
    d.extra_lines = ["frobnicate = yes"]
    text = d.write_config()
    l_workers = harness.line_of(text, "workers = many")
    l_unknown = harness.line_of(text, "frobnicate")
    mark = d.mark()
    d.send_signal(signal.SIGHUP)
    log = wait_until(lambda: (lambda s: s if "reload failed" in s else None)(
        d.log_from(mark)), 5, what="failed reload logged")
    errs = harness.error_lines(log)
    assert any(err_re(d, l_workers).search(l) and "workers" in l
               for l in errs), log
    assert any(err_re(d, l_unknown).search(l) and "frobnicate" in l
               for l in errs), log

    assert d.healthz()["status"] == "ok"
    assert d.get("/api/v1/status", token=TOKEN_C).status == 401
    st = d.status(TOKEN_A)
    assert st["workers"]["threads"] == 2
    lr = st["last_reload"]
    assert lr["ok"] is False
    assert len(lr["errors"]) == 2, lr
    assert err_re(d, l_workers).match(lr["errors"][0]) or \
        err_re(d, l_workers).match(lr["errors"][1])
    assert any(err_re(d, l_unknown).match(e) for e in lr["errors"])
    assert d.metric(RELOAD_ERR) == err0 + 1

    # POST /api/v1/reload on the bad file: 422, config kept
    r = d.post("/api/v1/reload", token=TOKEN_A)
    assert r.status == 422, r
    doc = r.json()
    assert doc["ok"] is False and len(doc["errors"]) == 2
    assert doc["error"]["message"]
    assert d.get("/api/v1/status", token=TOKEN_A).status == 200

    # the CLI: 1 on the bad file (errors shown), 0 on a good one
    r = cli(d.conf_path, "reload")
    assert r.returncode == 1
    assert "frobnicate" in r.stderr and "workers" in r.stderr
    d.write_config(good)
    ok0 = d.metric(RELOAD_OK)
    r = cli(d.conf_path, "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reloaded" in r.stdout
    assert d.metric(RELOAD_OK) == ok0 + 1
    assert d.status(TOKEN_A)["last_reload"]["ok"] is True
    r = cli(d.conf_path, "--json", "reload")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True


def test_cli_reload_applies_new_admin_token(daemons, ext_db):
    d = daemons(database=ext_db, top={"admin_token": TOKEN_A})
    d.start()
    d.top["admin_token"] = TOKEN_B
    d.write_config()
    r = cli(d.conf_path, "reload")
    assert r.returncode == 0, r.stderr
    assert d.get("/api/v1/status", token=TOKEN_B).status == 200


# ---- 5. SIGTERM and SIGINT ----------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_stop_signals(daemons, sig):
    d = daemons(top={"shutdown_timeout": Raw("5s")})
    d.start()
    with open(d.pid_file) as f:
        assert int(f.read()) == d.pid
    assert harness.pg_running(d.pgdata)
    rc, secs = d.stop(sig, timeout=20)
    harness.note_timing("stop on %s" % sig.name, secs)
    assert rc == 0, d.log()
    assert secs < 5, "stop took %.1f s" % secs
    assert not os.path.exists(d.pid_file)
    assert not os.path.exists(os.path.join(d.pgdata, "postmaster.pid"))
    assert not harness.pg_running(d.pgdata)
    assert harness.port_is_free(d.port)
    assert not harness.procs_mentioning(d.state)
    assert "stopped" in d.log_since_start().splitlines()[-1]


# ---- 6. database loss and reconnection ------------------------------------------

def test_external_reconnect(pg_private, daemons):
    # pg_private first: torn down after the daemon
    d = daemons(database=pg_private.uri(pg_private.create_db()))
    d.start()
    rec0 = d.metric("leadcast_db_reconnects_total")

    pg_private.stop("fast")
    t0 = time.monotonic()
    doc = d.wait_health(lambda h: h["status"] == "degraded" and
                        h["database"]["state"] != "connected", 5,
                        "degraded")
    harness.note_timing("external db stopped -> degraded",
                        time.monotonic() - t0)
    assert doc["database"]["mode"] == "external"
    assert isinstance(doc["database"].get("error", ""), str)
    assert d.metric("leadcast_db_connected") == 0
    r = cli(d.conf_path, "status")
    assert r.returncode == 2, r.stdout + r.stderr
    time.sleep(1.5)                     # a few failed attempts (backoff)
    assert d.healthz()["status"] == "degraded"

    pg_private.start()
    t0 = time.monotonic()
    d.wait_ok(10)
    harness.note_timing("external db back -> ok", time.monotonic() - t0)
    assert d.metric("leadcast_db_reconnects_total") >= rec0 + 1
    assert d.metric("leadcast_db_connected") == 1
    assert cli(d.conf_path, "status").returncode == 0
    assert d.get("/api/v1/status", token=d.token).json()["database"][
        "state"] == "connected"


def _postmaster_pid(d):
    try:
        with open(os.path.join(d.pgdata, "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def _kill_embedded_cluster(d):
    """pg_ctl stop -m immediate behind the daemon's back; returns once the
    old postmaster is gone (without -W pg_ctl would wait for the daemon's
    replacement too)."""
    old = _postmaster_pid(d)
    assert old and harness.pid_alive(old)
    harness.pg_stop_immediate(d.pgdata, wait=False)
    assert harness.wait_pid_gone(old, 10), "postmaster %d survived" % old
    return old


def test_embedded_cluster_restarted(daemons):
    d = daemons(top={"shutdown_timeout": Raw("2s")})
    d.start(timeout=30)
    # twice in a row: each crash must be repaired
    for n in (1, 2):
        old = _kill_embedded_cluster(d)
        t0 = time.monotonic()
        d.wait_ok(15)
        harness.note_timing("embedded cluster killed (#%d) -> ok again" % n,
                            time.monotonic() - t0)
        new = _postmaster_pid(d)
        assert new and new != old and harness.pid_alive(new)
    assert d.running()
    assert "001_core" in d.psql("SELECT name FROM schema_migrations")
    rc, _ = d.stop()
    assert rc == 0
    assert not harness.pid_alive(new)
    assert not harness.pg_running(d.pgdata)


def _terminate_backends(pg, db):
    return pg.psql("SELECT count(pg_terminate_backend(pid)) FROM "
                   "pg_stat_activity WHERE datname = '%s' AND pid <> "
                   "pg_backend_pid()" % db, db=db)


def test_backends_terminated_reconnect(daemons, pg_external):
    db = pg_external.create_db()
    d = daemons(database=pg_external.uri(db))
    d.start()
    psql = lambda sql: pg_external.psql(sql, db=db)   # noqa: E731
    wait_listening(psql)
    rec0 = d.metric("leadcast_db_reconnects_total")
    assert int(_terminate_backends(pg_external, db)) >= 2
    wait_until(lambda: d.metric("leadcast_db_reconnects_total") >= rec0 + 2,
               10, what="both connections back")
    d.wait_ok(5)
    # LISTEN was subscribed again on the new connection
    wait_listening(psql)
    notify_and_wait(d, psql, timeout=5)


def test_log_lines_all_formatted(daemons, pg_external):
    db = pg_external.create_db()
    d = daemons(database=pg_external.uri(db))
    d.start()
    wait_listening(lambda sql: pg_external.psql(sql, db=db))
    rec0 = d.metric("leadcast_db_reconnects_total")
    _terminate_backends(pg_external, db)
    wait_until(lambda: d.metric("leadcast_db_reconnects_total") >= rec0 + 2,
               10, what="both connections back")
    rx = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
                    r"(error|warn|info|debug): ")
    bad = [l for l in d.log().splitlines() if not rx.match(l)]
    assert not bad, bad


# ---- 7. external database: migrations, two daemons -----------------------------

def test_external_two_daemons_one_database(daemons, pg_external):
    db = pg_external.create_db()
    a = daemons(name="a", database=pg_external.uri(db))
    b = daemons(name="b", database=pg_external.uri(db))
    t0 = time.monotonic()
    a.spawn()
    b.spawn()
    a.wait_ok(20, t0=t0)
    b.wait_ok(20, t0=t0)
    # each migration applied exactly once, by one daemon or the other
    names = pg_external.psql("SELECT name FROM schema_migrations ORDER BY "
                             "name", db=db).splitlines()
    assert "001_core" in names and len(set(names)) == len(names)
    (ta, aa), (tb, ab) = [map(int, SCHEMA_RE.search(x.log()).groups())
                          for x in (a, b)]
    assert ta == tb == len(names)
    assert aa + ab == len(names), (aa, ab)
    nodes = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(
        pg_external.psql("SELECT pid FROM nodes WHERE stopped_at IS NULL "
                         "ORDER BY pid", db=db).splitlines()), 5,
        what="two node rows")
    assert sorted(int(p) for p in nodes) == sorted([a.pid, b.pid])
    assert pg_external.psql("SELECT tableowner FROM pg_tables WHERE "
                            "tablename = 'nodes'", db=db) == "leadcast"
    # external mode makes no embedded cluster
    assert not os.path.exists(a.pgdata) and not os.path.exists(b.pgdata)
    for x in (a, b):
        rc, _ = x.stop()
        assert rc == 0
    assert pg_external.psql("SELECT count(*) FROM nodes WHERE stopped_at IS "
                            "NULL", db=db) == "0"


# ---- 8. start-up errors ------------------------------------------------------------

def test_startup_missing_config(daemons):
    d = daemons()
    missing = os.path.join(d.tmp.path, "missing.conf")
    d.conf_path = missing
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].startswith(missing + ": ") and "No such file" in lines[0]
    assert len(lines) == 2 and "not started" in lines[1]
    assert_nothing_left(d)


def test_startup_config_errors_all_listed(daemons):
    d = daemons(top={"workers": Raw("many"), "log_level": Raw("loud"),
                     "templates": "no-such-dir"},
                http_={"max_body_size": Raw("12")},
                extra_lines=["colour = blue"])
    text = d.config_text()
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    lines = out.splitlines()
    expect = [("workers = many", "workers"), ("log_level = loud", "log_level"),
              ("templates =", "templates"), ("max_body_size", "max_body_size"),
              ("colour = blue", "colour")]
    for needle, word in expect:
        rx = err_re(d, harness.line_of(text, needle))
        assert any(rx.match(l) and word in l for l in lines), (word, out)
    assert len(lines) == len(expect) + 1, out
    assert "%d errors" % len(expect) in lines[-1]
    assert not os.path.exists(d.state)
    assert_nothing_left(d)


def test_startup_templates_missing(daemons):
    d = daemons(top={"templates": "gone"})
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    rx = err_re(d, harness.line_of(d.config_text(), "templates ="))
    assert rx.match(out.splitlines()[0]) and "templates" in out, out
    assert_nothing_left(d)


def test_startup_port_in_use(daemons):
    holder = harness.hold_port()
    try:
        d = daemons(port=holder.getsockname()[1])
        d.spawn()
        rc, out = d.wait_failed_start()
        assert rc == 1
        errs = harness.error_lines(out)
        assert len(errs) == 1 and "127.0.0.1:%d" % d.port in errs[0] and \
            "in use" in errs[0], out
        assert not os.path.exists(d.state)
        left = harness.procs_mentioning(d.conf_path)
        assert not left, left
    finally:
        holder.close()
    assert_nothing_left(d)


def test_startup_pg_bindir_missing(daemons):
    d = daemons(top={"pg_bindir": "/nonexistent"})
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    errs = harness.error_lines(out)
    assert len(errs) == 1 and "/nonexistent" in errs[0], out
    assert "install" in errs[0] and "postgresql" in errs[0].lower()
    assert not os.path.exists(d.pgdata)
    assert_nothing_left(d)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to own a dir by another "
                    "user")
def test_startup_state_dir_owned_by_other_user(daemons):
    d = daemons()
    os.mkdir(d.state, 0o700)              # owned by root, daemon is lctest
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    errs = harness.error_lines(out)
    assert len(errs) == 1 and d.state in errs[0] and "owned" in errs[0], out
    assert os.listdir(d.state) == []
    assert_nothing_left(d)


def test_startup_external_database_refused(daemons):
    closed = harness.free_port()
    d = daemons(database="postgresql://leadcast@127.0.0.1:%d/leadcast" %
                closed)
    t0 = time.monotonic()
    d.spawn()
    rc, out = d.wait_failed_start(timeout=30)
    secs = time.monotonic() - t0
    assert rc == 1
    assert secs < 15, "took %.1f s to give up" % secs
    errs = harness.error_lines(out)
    assert len(errs) == 1 and "connect" in errs[0], out
    assert_nothing_left(d)


def test_startup_second_daemon_same_state_dir(daemons, ext_db):
    a = daemons(name="a", database=ext_db)
    a.start()
    b = daemons(name="b", database=ext_db, top={"state_dir": a.state_rel})
    b.state = a.state
    b.write_config()
    b.spawn()
    rc, out = b.wait_failed_start()
    assert rc == 1
    errs = harness.error_lines(out)
    assert len(errs) == 1 and "another leadcastd" in errs[0] and \
        str(a.pid) in errs[0], out
    assert harness.port_is_free(b.port)
    assert a.healthz()["status"] == "ok"
    with open(a.pid_file) as f:
        assert int(f.read()) == a.pid


@pytest.mark.skipif(not IS_ROOT, reason="user is only used when started "
                    "as root")
@pytest.mark.parametrize("user,expect", [
    ("no-such-user-lcit", "does not exist"),
    ("root", "refusing to run as root")], ids=["missing", "root"])
def test_startup_bad_user(daemons, user, expect):
    d = daemons(top={"user": user})
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    errs = harness.error_lines(out)
    assert len(errs) == 1 and expect in errs[0], out
    assert not os.path.exists(d.state)
    assert_nothing_left(d)


def test_startup_migration_failure_stops_embedded_cluster(daemons):
    d = daemons(top={"shutdown_timeout": Raw("5s")})
    d.start(timeout=30)
    # make 001_core run again over its own tables: it must fail
    d.psql("DELETE FROM schema_migrations WHERE name = '001_core'")
    rc, _ = d.stop()
    assert rc == 0
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    errs = harness.error_lines(out)
    assert len(errs) == 1 and "001_core" in errs[0], out
    assert not harness.pg_running(d.pgdata), "embedded cluster left running"
    assert_nothing_left(d)


def test_startup_failure_removes_pid_file(daemons):
    d = daemons(top={"pg_bindir": "/nonexistent"})
    d.spawn()
    rc, _ = d.wait_failed_start()
    assert rc == 1
    assert not os.path.exists(d.pid_file), "stale pid file: %s" % open(
        d.pid_file).read().strip()


# ---- 8b. crash recovery ----------------------------------------------------

def test_restart_after_sigkill_adopts_cluster(daemons):
    d = daemons(top={"shutdown_timeout": Raw("5s")})
    d.start(timeout=30)
    wait_until(lambda: d.psql("SELECT count(*) FROM nodes") == "1", 5,
               what="node row")
    first_pid = d.pid
    d.proc.kill()                               # a crash: no clean-up
    d.proc.wait(10)
    pm = _postmaster_pid(d)
    assert pm and harness.pid_alive(pm)         # the cluster outlives it
    secs = d.start(timeout=20)
    harness.note_timing("restart after SIGKILL -> ok", secs)
    assert _postmaster_pid(d) == pm              # adopted, not restarted
    # the new daemon sees the crashed one is dead and retires its row (and
    # releases its leases), rather than waiting for its heartbeat to lapse
    rows = wait_until(lambda: (lambda r: r if r == [
        "%d|f" % first_pid, "%d|t" % d.pid] else None)(
        d.psql("SELECT pid, stopped_at IS NULL FROM nodes ORDER BY id")
        .splitlines()), 5, what="crashed node retired")
    assert rows == ["%d|f" % first_pid, "%d|t" % d.pid]
    rc, _ = d.stop()
    assert rc == 0
    assert not harness.pid_alive(pm)
    assert not harness.pg_running(d.pgdata)



# ---- 9. the CLI ------------------------------------------------------------------------

def test_cli_check_config(daemons):
    d = daemons()
    r = cli(d.conf_path, "check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK: %s\n" % d.conf_path
    r = cli(d.conf_path, "--json", "check-config")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"ok": True, "config": d.conf_path,
                                    "errors": []}

    d.top["workers"] = Raw("0")
    d.extra_lines = ["bogus = 1"]
    text = d.write_config()
    r = cli(d.conf_path, "check-config")
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert err_re(d, harness.line_of(text, "workers =")).match(lines[0])
    assert any(err_re(d, harness.line_of(text, "bogus")).match(l)
               for l in lines)
    assert "2 errors" in lines[-1]
    r = cli(d.conf_path, "check-config", "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["config"] == d.conf_path
    assert len(doc["errors"]) == 2 and all(
        e.startswith(d.conf_path + ":") for e in doc["errors"])
    # nothing was started or created by checking
    assert not os.path.exists(d.state)


def test_cli_version():
    r = cli(None, "version")
    assert r.returncode == 0 and r.stdout == "leadcast %s\n" % harness.VERSION
    r = cli(None, "--json", "version")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"version": harness.VERSION}
    r = harness.run([harness.LEADCASTD, "-V"])
    assert r.stdout.strip() == "leadcastd %s" % harness.VERSION
    r = cli(None, "frobnicate")
    assert r.returncode == 1 and "unknown command" in r.stderr


def test_cli_status(shared, daemons):
    r = cli(shared.conf_path, "status")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^status:\s+ok$", r.stdout, re.M)
    r = cli(shared.conf_path, "status", "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["status"] == "ok" and doc["version"] == harness.VERSION

    stopped = daemons()                  # configured, never started
    r = cli(stopped.conf_path, "status")
    assert r.returncode == 1
    assert "not answering" in r.stderr
    r = cli(stopped.conf_path, "--json", "status")
    assert r.returncode == 1
    assert json.loads(r.stdout)["status"] == "down"
    stopped.top["admin_token"] = TOKEN_A
    stopped.write_config()
    r = cli(stopped.conf_path, "reload")
    assert r.returncode == 1 and "not answering" in r.stderr


# ---- 10. daemon mode ----------------------------------------------------------------

def test_daemon_mode(daemons):
    d = daemons()
    rc, out, secs = d.start_daemon_mode(timeout=30)
    harness.note_timing("daemon mode: command returned", secs)
    assert rc == 0, out
    assert out == "", out
    pid = d.daemon_pid
    assert harness.pid_alive(pid)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert d.conf_path.encode() in f.read()
    if IS_ROOT:
        assert harness.proc_uids(pid) == [harness.daemon_uid_gid()[0]] * 4
    first = d.healthz()
    if first["status"] != "ok":
        print("daemon mode: first /healthz after the command returned: %r"
              % first)
    d.wait_ok(2)
    assert cli(d.conf_path, "status").returncode == 0

    os.kill(pid, signal.SIGTERM)
    assert harness.wait_pid_gone(pid, 15)
    d.daemon_pid = None
    assert wait_until(lambda: not os.path.exists(d.pid_file), 2,
                      what="pid file removed")
    assert harness.port_is_free(d.port)
    assert not os.path.exists(os.path.join(d.pgdata, "postmaster.pid"))
    assert not harness.procs_mentioning(d.state)


def test_daemon_mode_startup_error(daemons):
    holder = harness.hold_port()
    try:
        d = daemons(port=holder.getsockname()[1])
        rc, out, _ = d.start_daemon_mode(timeout=30)
        assert rc == 1
        lines = out.splitlines()
        assert len(lines) == 1, out
        assert "cannot listen on 127.0.0.1:%d" % d.port in lines[0]
        time.sleep(0.2)
        assert not harness.procs_mentioning(d.conf_path)
    finally:
        holder.close()
    assert_nothing_left(d)


# ---- 11. LISTEN/NOTIFY ---------------------------------------------------------

def test_notify_wakes_daemon(shared):
    key = "leadcast_db_notifications_total"
    wait_listening(shared.psql)
    t0 = time.monotonic()
    before = notify_and_wait(shared, shared.psql, timeout=2)
    harness.note_timing("NOTIFY -> counted", time.monotonic() - t0)
    time.sleep(0.2)
    assert shared.metric(key) == before + 1
    # another channel is not listened to
    shared.psql("NOTIFY some_other_channel, 'y'")
    time.sleep(0.3)
    assert shared.metric(key) == before + 1


# ---- 12. request limits -----------------------------------------------------------

def raw_request(port, method, path, body=b"", token=None, headers=(),
                chunked=False, timeout=5):
    """Send a request byte by byte on a socket; (status or None, text).
    The server may answer early and close: send errors are tolerated."""
    head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
            "Content-Type: application/json", "Connection: close"]
    if token:
        head.append("Authorization: Bearer " + token)
    head += list(headers)
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = b""
        for i in range(0, len(body), 4096):
            part = body[i:i + 4096]
            payload += b"%x\r\n%s\r\n" % (len(part), part)
        payload += b"0\r\n\r\n"
    else:
        head.append("Content-Length: %d" % len(body))
        payload = body
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            for i in range(0, len(data), 8192):
                s.sendall(data[i:i + 8192])
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return (int(m.group(1)) if m else None), got.decode(errors="replace")


def test_request_body_over_limit(shared):
    tok = shared.token
    ok0 = shared.metric(RELOAD_OK)
    err0 = shared.metric(RELOAD_ERR)
    # under the 1K limit: reaches the router
    st, _ = raw_request(shared.port, "POST", "/api/v1/nope", b" " * 900, tok)
    assert st == 404
    big = b" " * (100 * 1024)
    for chunked in (False, True):
        st, text = raw_request(shared.port, "POST", "/api/v1/reload", big,
                               tok, chunked=chunked)
        print("100 KB body (chunked=%s): HTTP %s" % (chunked, st))
        assert st != 200, text[:300]
        assert st in (None, 413), text[:300]
        assert shared.healthz()["status"] == "ok"
    # the handler never ran
    assert shared.metric(RELOAD_OK) == ok0
    assert shared.metric(RELOAD_ERR) == err0
    assert shared.status()["last_reload"] is None


def test_request_headers_over_limit(shared):
    st, text = raw_request(shared.port, "GET", "/healthz",
                           headers=["X-Big: " + "a" * 32 * 1024])
    print("32 KB header: HTTP %s" % st)
    assert st != 200, text[:300]
    assert shared.healthz()["status"] == "ok"
