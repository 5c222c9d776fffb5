"""
Drip campaigns through the real daemon, with short waits: a whole sequence
(email, wait, email, set) started by a capture and its due step's delay;
branches on a lead's opens and clicks of an earlier step; goals ending a
lead's drip when a rep accepts the lead or the lead replies; enrollments
refused for unsubscribed leads and the re-entry policy; pause, resume and
exit; a kill -9 in the middle of a wave and a restart (no step run twice,
none skipped); two daemons sharing the work on one database; versions
(an edit leaves enrolled leads on their version); check-config errors.

Email goes to a maildir; routing (for the accept goal) to the rep by the
same maildir.
"""
import json
import os
import re
import subprocess
import time

import pytest

import harness
import mailtools as mt
from harness import wait_until

ROUTING = """\
time_zone = "UTC"
team "rr" {
	method = round_robin
	offer_window = 5m
	catch_all = "cat"
}
rep "ann" { email = "ann@reps.example"; teams = { "rr" } }
rep "cat" { name = "Cat Catchall"; email = "cat@reps.example" }
rule "default" { team = "rr" }
"""

FROM = 'from = "Acme <hello@acme.example>"\n'
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
           "Gecko) Chrome/120.0 Safari/537.36")

DRIPS = {
    # the whole sequence: captured with source seq
    "seq": FROM + """\
trigger "captured" { if = "source == 'seq'" }
step "hello" { type = email; subject = "Hello {{first_name}}"; html = "drips/a.html" }
step "pause" { type = wait; duration = 2s }
step "second" { type = email; subject = "Second for {{first_name}}"; html = "drips/b.html" }
step "mark" { type = set; tag = "seq-done"; field = "stage"; value = "nurtured"; score = 7 }
""",
    # branches on the first email's opens and clicks (enrolled by API)
    "br": FROM + """\
step "offer" { type = email; subject = "Offer"; html = "drips/a.html" }
step "look" { type = wait; duration = 3s }
step "clicked" { type = branch; if = "clicked contains 'offer'"; then = "hot" }
step "opened" { type = branch; if = "opened contains 'offer'"; then = "warm"; else = "cold" }
step "hot" { type = email; subject = "Hot"; html = "drips/b.html"; next = "end" }
step "warm" { type = email; subject = "Warm"; html = "drips/b.html"; next = "end" }
step "cold" { type = email; subject = "Cold"; html = "drips/b.html" }
step "end" { type = exit }
""",
    # goals: a rep accepts the lead, or the lead replies
    "goal": FROM + """\
goals = { replied, accepted }
trigger "captured" { if = "source == 'goal'" }
step "first" { type = email; subject = "First"; html = "drips/a.html" }
step "later" { type = wait; duration = 4s }
step "second" { type = email; subject = "Second"; html = "drips/b.html" }
""",
    # a text (to leads who consented), then an email
    "txt": FROM + """\
step "hi" { type = sms; template = "sms/drip_hi" }
step "mail" { type = email; subject = "After the text"; html = "drips/b.html" }
""",
    # waves: two emails in a row (kill -9, two daemons)
    "wave": FROM + """\
step "one" { type = email; subject = "One"; html = "drips/b.html" }
step "two" { type = email; subject = "Two"; html = "drips/b.html" }
""",
}

TEMPLATES = {
    "drips/a.html": '<p>Hi {{first_name}}, <a href="https://acme.example/'
                    'pricing">see the plans</a>.</p>',
    "drips/b.html": "<p>Hello again {{first_name}}.</p>",
    "sms/drip_hi": "Hi {{first_name}}, your trial is ready.",
}



def write_drips(tmp, drips=None):
    for name, text in (drips or DRIPS).items():
        mt.write_file(os.path.join(tmp.path, "drips", name + ".conf"), text)
    for name, text in TEMPLATES.items():
        mt.write_file(os.path.join(tmp.path, "tpl", name + ".mustache"), text)


def wait_in_force(d, n=None):
    """The definitions are registered (their triggers watched)."""
    wait_until(lambda: "definitions in force" in d.log_since_start() or
               "definition in force" in d.log_since_start(), 15,
               what="drips in force")


def drip_daemon(tmp, name="dr", database="embedded", drips=None, mail=None):
    mt.routing_dir(tmp, ROUTING)
    write_drips(tmp, drips)
    outbox = tmp.sub("outbox-" + name, owner_daemon=True)
    lines = ["mail {", '\ttransport = "maildir:%s"' % outbox]
    for k, v in (mail or {}).items():
        lines.append("\t%s = %s" % (k, v))
    # tests click at once: no click counts as a scanner's for its speed
    d = harness.Daemon(tmp, name=name, database=database,
                       extra_lines=lines + ["}", 'list "news" { }',
                                            "track {", "\tscanner_delay = 0",
                                            "}"])
    d.outbox = mt.Maildir(outbox)
    return d


@pytest.fixture(scope="module")
def dd():
    from test_sms_leads import JsonGateway, sms_conf
    tmp = harness.TempDir("drip")
    gw = JsonGateway()
    # test_sms_leads' gateways, the JSON one by default (no Kannel here)
    mt.write_file(os.path.join(tmp.path, "sms.conf"), sms_conf(
        harness.free_port(), gw.port).replace('default = "kannel"',
                                              'default = "vonage"'))
    src = os.path.join(harness.SRCDIR, "templates", "sms")
    for n in os.listdir(src):
        with open(os.path.join(src, n)) as f:
            mt.write_file(os.path.join(tmp.path, "tpl", "sms", n), f.read())
    d = drip_daemon(tmp)
    d.gw = gw
    try:
        d.start(timeout=30)
        wait_in_force(d)
        d.key = mt.url_key(d)
        d.tmp = tmp
        yield d
    finally:
        d.cleanup()
        gw.close()
        tmp.cleanup()


def api(d, method, path, body=None, expect=None):
    if method == "GET":
        r = d.get(path, token=d.token)
    else:
        r = d.post(path, body=json.dumps(body or {}).encode(), token=d.token)
    if expect is not None:
        assert r.status == expect, (r, r.text)
    return r


_seq = [0]


def capture(d, source="web", **fields):
    _seq[0] += 1
    lead = {"email": "dl%d.%d@example.com" % (_seq[0], os.getpid()),
            "first_name": "Lee%d" % _seq[0], "source": source}
    lead.update(fields)
    r = api(d, "POST", "/api/v1/leads", lead)
    assert r.status in (200, 201), (r, r.text)
    return r.json()["lead"]["id"], lead["email"]


def enrollment(d, drip, lead):
    out = d.psql("SELECT id, status, coalesce(step, ''), seq, "
                 "coalesce(goal, ''), coalesce(reason, '') FROM "
                 "drip_enrollments WHERE drip = '%s' AND lead_id = %d "
                 "ORDER BY id DESC LIMIT 1" % (drip, lead))
    return tuple(out.split("|")) if out else None


def log_steps(d, enr):
    return d.psql("SELECT step FROM drip_log WHERE enrollment_id = %s "
                  "ORDER BY seq" % enr).split()


def mails(d, addr, subject=None):
    return [m for m in d.outbox.messages() if addr in (m[2]["To"] or "") and
            (subject is None or m[2]["Subject"] == subject)]


def wait_mail(d, addr, subject, timeout=10):
    return wait_until(lambda: mails(d, addr, subject), timeout,
                      what="%r to %s" % (subject, addr))


def html_of(msg):
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            return part.get_content()
    return ""


# ---- the whole sequence ------------------------------------------------------------

def test_whole_sequence(dd):
    d = dd
    t0 = time.time()
    lead, addr = capture(d, source="seq")
    wait_mail(d, addr, "Hello Lee%d" % _seq[0])
    first = time.time() - t0
    m2 = wait_mail(d, addr, "Second for Lee%d" % _seq[0], timeout=10)
    enr = wait_until(lambda: (lambda e: e if e and e[1] == "done" else None)(
        enrollment(d, "seq", lead)), 5, what="enrollment done")
    assert enr[3] == "4", enr
    assert log_steps(d, enr[0]) == ["hello", "pause", "second", "mark"]
    # the set step: tag, field, score (with its history)
    row = d.psql("SELECT fields->'tags', fields->>'stage', score FROM leads "
                 "WHERE id = %d" % lead).split("|")
    assert json.loads(row[0]) == ["seq-done"] and row[1] == "nurtured", row
    assert int(row[2]) == 7
    assert "tagged" in d.psql("SELECT string_agg(type, ' ') FROM events "
                              "WHERE lead_id = %d" % lead)
    # one message per email step, tracked, with List-Unsubscribe
    assert len(mails(d, addr)) == 2
    msg = m2[0][2]
    assert msg["List-Unsubscribe"] and "/u/" in msg["List-Unsubscribe"]
    # the step after the wait ran within 1 s of its due time
    delay = float(d.psql(
        "SELECT extract(epoch FROM b.created_at - a.created_at) - 2 FROM "
        "drip_log a, drip_log b WHERE a.enrollment_id = %s AND a.seq = 1 "
        "AND b.enrollment_id = a.enrollment_id AND b.seq = 2" % enr[0]))
    harness.note_timing("drip: capture -> first email in the maildir", first)
    harness.note_timing("drip: due step delay (wait 2s)", delay)
    assert 0 <= delay < 1.0, delay
    # the report counts each step
    r = api(d, "GET", "/api/v1/drips/seq", expect=200).json()
    steps = {s["step"]: s for s in r["steps"]}
    assert steps["hello"]["entered"] >= 1 and steps["hello"]["sent"] >= 1
    assert r["enrollments"].get("done", 0) >= 1


# ---- branches on opens and clicks ---------------------------------------------------

def test_branches_on_open_and_click(dd):
    d = dd
    leads = [capture(d, source="br") for _ in range(4)]
    for lead, _ in leads:
        api(d, "POST", "/api/v1/drips/br/enroll", {"lead": lead}, expect=201)
    (clicker, ca), (opener, oa), (idle, ia), (scanned, sa) = leads
    for addr in (ca, oa, ia, sa):
        wait_mail(d, addr, "Offer")
    # a link scanner fetches the last lead's link: not the lead's click
    html = html_of(mails(d, sa, "Offer")[0][2])
    link = re.search(r'href="http://127\.0\.0\.1:\d+(/c/[^"]+)"', html)
    assert d.request("GET", link.group(1), headers={
        "User-Agent": "curl/8.0"}).status == 302
    # the clicker clicks the link, the opener loads the pixel
    html = html_of(mails(d, ca, "Offer")[0][2])
    click = re.search(r'href="(http://127\.0\.0\.1:\d+/c/[^"]+)"', html)
    assert click, html
    ua = {"User-Agent": BROWSER}
    r = d.request("GET", click.group(1)[click.group(1).index("/c/"):],
                  headers=ua)
    assert r.status == 302
    html = html_of(mails(d, oa, "Offer")[0][2])
    pixel = re.search(r'src="http://127\.0\.0\.1:\d+(/o/[^"]+)"', html)
    assert pixel, html
    assert d.request("GET", pixel.group(1), headers=ua).status == 200
    wait_mail(d, ca, "Hot")
    wait_mail(d, oa, "Warm")
    wait_mail(d, ia, "Cold")
    wait_mail(d, sa, "Cold")
    for addr, got in ((ca, "Hot"), (oa, "Warm"), (ia, "Cold"), (sa, "Cold")):
        subjects = sorted(m[2]["Subject"] for m in mails(d, addr))
        assert subjects == sorted(["Offer", got]), (addr, subjects)
    e = enrollment(d, "br", clicker)
    wait_until(lambda: enrollment(d, "br", clicker)[1] == "done", 5)
    assert log_steps(d, e[0]) == ["offer", "look", "clicked", "hot", "end"]
    e = enrollment(d, "br", idle)
    wait_until(lambda: enrollment(d, "br", idle)[1] == "done", 5)
    assert log_steps(d, e[0]) == ["offer", "look", "clicked", "opened",
                                  "cold", "end"]
    rep = {s["step"]: s for s in api(d, "GET", "/api/v1/drips/br/report",
                                     expect=200).json()["steps"]}
    assert rep["offer"]["sent"] >= 3
    assert rep["offer"]["opened"] >= 1 and rep["offer"]["clicked"] >= 1


# ---- SMS steps -------------------------------------------------------------------------

def test_sms_step_once_with_consent_only(dd):
    d = dd
    yes, yaddr = capture(d, source="sms", phone="+15555550123")
    no, naddr = capture(d, source="sms", phone="+15555550124")
    r = d.post("/api/v1/sms/consent", body=json.dumps(
        {"lead": yes, "consent": True, "source": "test"}).encode(),
        token=d.token)
    assert r.status == 200, r
    for lead in (yes, no):
        api(d, "POST", "/api/v1/drips/txt/enroll", {"lead": lead},
            expect=201)
    wait_mail(d, yaddr, "After the text")
    wait_mail(d, naddr, "After the text")
    texts = wait_until(lambda: [q for q in d.gw.requests
                                if q[2].get("to") == "15555550123"], 10,
                       what="the text at the gateway")
    assert texts[0][2]["text"] == "Hi Lee%d, your trial is ready." % (
        _seq[0] - 1), texts
    assert not [q for q in d.gw.requests if q[2].get("to") == "15555550124"]
    e = enrollment(d, "txt", yes)
    assert d.psql("SELECT count(*) FROM sms WHERE idem_key = 'drip:%s:0'"
                  % e[0]) == "1"
    e = enrollment(d, "txt", no)
    out = d.psql("SELECT outcome, detail FROM drip_log WHERE "
                 "enrollment_id = %s AND seq = 0" % e[0])
    assert out.startswith("skipped|") and "consent" in out, out


# ---- goals ------------------------------------------------------------------------------

def test_goal_exit_on_accept_and_reply(dd):
    d = dd
    acc, acc_addr = capture(d, source="goal")
    rep, rep_addr = capture(d, source="goal")
    wait_mail(d, acc_addr, "First")
    wait_mail(d, rep_addr, "First")
    # a rep accepts the first lead's offer
    offer = wait_until(lambda: d.psql(
        "SELECT id FROM offers WHERE lead_id = %d AND status = 'pending'"
        % acc), 10, what="an offer")
    api(d, "POST", "/api/v1/offers/%s/accept" % offer, expect=200)
    # the other lead replies
    api(d, "POST", "/api/v1/events", {"lead": rep, "type": "reply"},
        expect=201)
    for lead, goal in ((acc, "accepted"), (rep, "replied")):
        e = wait_until(lambda: (lambda e: e if e[1] == "exited" else None)(
            enrollment(d, "goal", lead)), 5, what="exit by %s" % goal)
        assert e[4] == goal, e
    time.sleep(4.5)            # the second email's time comes and goes
    for addr in (acc_addr, rep_addr):
        assert [m[2]["Subject"] for m in mails(d, addr)] == ["First"]
    r = api(d, "GET", "/api/v1/drips/goal", expect=200).json()
    assert r["goals_reached"] == {"accepted": 1, "replied": 1}, r
    first = [s for s in r["steps"] if s["step"] == "later"][0]
    assert first["exited_by_goal"] == 2 and first["converted"] == 2, r


# ---- enrollment by command: refusals, re-entry, pause, exit ----------------------------

def test_enroll_refused_pause_resume_exit(dd):
    d = dd
    lead, addr = capture(d, source="cmd")
    d.psql("INSERT INTO subscriptions (list_id, lead_id, status) SELECT id, "
           "%d, 'unsubscribed' FROM lists WHERE name = 'news'" % lead)
    r = api(d, "POST", "/api/v1/drips/wave/enroll", {"lead": lead})
    assert r.status == 409, r.text
    assert "unsubscribed" in r.json()["error"]["message"]
    assert enrollment(d, "wave", lead)[1] == "refused"
    assert enrollment(d, "wave", lead)[5] == "unsubscribed"
    # bad input changes nothing
    assert api(d, "POST", "/api/v1/drips/wave/enroll",
               {"lead": "x"}).status == 400
    assert api(d, "POST", "/api/v1/drips/nosuch/enroll",
               {"lead": lead}).status == 404
    assert api(d, "POST", "/api/v1/drips/wave/enroll",
               {"lead": 99999999}).status == 404
    # pause the drip: an enrolled lead waits, resume: it runs
    api(d, "POST", "/api/v1/drips/goal/pause", expect=200)
    other, oaddr = capture(d, source="goal")
    e = wait_until(lambda: enrollment(d, "goal", other), 5)
    assert e[1] == "paused", e
    time.sleep(1.5)
    assert mails(d, oaddr, "First") == []
    api(d, "POST", "/api/v1/drips/goal/resume", expect=200)
    wait_mail(d, oaddr, "First", timeout=5)
    # exit by command: the second email never comes
    r = api(d, "POST", "/api/v1/drips/goal/exit", {"lead": other},
            expect=200)
    assert enrollment(d, "goal", other)[1] == "exited"
    # already in / never again: a second enroll is refused
    api(d, "POST", "/api/v1/drips/br/enroll", {"lead": other}, expect=201)
    r = api(d, "POST", "/api/v1/drips/br/enroll", {"lead": other})
    assert r.status == 409 and "already" in r.json()["error"]["message"]
    # the CLI
    out = harness.cli(d.conf_path, "drip", "list")
    assert "seq" in out.stdout and "wave" in out.stdout, out.stdout
    out = harness.cli(d.conf_path, "drip", "status", "goal")
    assert "later" in out.stdout, out.stdout


# ---- a wave, kill -9, restart ----------------------------------------------------------

def enroll_many(d, drip, n, prefix, due="now()"):
    d.psql("WITH l AS (INSERT INTO leads (email, first_name, source) "
           "SELECT '%s' || i || '@example.com', 'W' || i, 'bulk' FROM "
           "generate_series(1, %d) i RETURNING id) INSERT INTO "
           "drip_enrollments (drip, version, lead_id, status, step, "
           "next_run_at, trigger) SELECT '%s', (SELECT max(version) FROM "
           "drip_versions WHERE drip = '%s'), id, 'active', 'one', %s, "
           "'test' FROM l" % (prefix, n, drip, drip, due))


def check_exactly_once(d, prefix, n):
    """Every enrollment ran both steps once; one delivery per step run."""
    rows = d.psql("SELECT count(*), count(*) FILTER (WHERE e.status = "
                  "'done'), (SELECT count(*) FROM drip_log g JOIN "
                  "drip_enrollments x ON x.id = g.enrollment_id JOIN leads y "
                  "ON y.id = x.lead_id WHERE y.email LIKE '%s%%'), "
                  "(SELECT count(*) FROM deliveries dl JOIN leads y ON y.id = "
                  "dl.lead_id WHERE y.email LIKE '%s%%'), "
                  "(SELECT count(*) FROM (SELECT lead_id, campaign_id FROM "
                  "deliveries dl JOIN leads y ON y.id = dl.lead_id WHERE "
                  "y.email LIKE '%s%%' GROUP BY 1, 2 HAVING count(*) > 1) z) "
                  "FROM drip_enrollments e JOIN leads l ON l.id = e.lead_id "
                  "WHERE l.email LIKE '%s%%'" % (prefix, prefix, prefix,
                                                  prefix)).split("|")
    assert [int(x) for x in rows] == [n, n, 2 * n, 2 * n, 0], rows


def test_kill9_mid_wave_nothing_twice_nothing_skipped(tmp):
    n = 600
    d = drip_daemon(tmp, name="k9", drips={"wave": DRIPS["wave"]})
    d.start(timeout=30)
    wait_until(lambda: d.psql("SELECT count(*) FROM drip_versions") == "1",
               10)
    # half the wave due in a second, half in four: the kill lands between
    enroll_many(d, "wave", n, "k9-", due="now() + interval '1 second' + "
                "(id % 2) * interval '3 seconds'")
    wait_until(lambda: int(d.psql("SELECT count(*) FROM drip_log")) >= 200,
               20, interval=0.01, what="200 step runs")
    d.proc.kill()                                   # kill -9
    d.proc.wait(10)
    ran = int(d.psql("SELECT count(*) FROM drip_log"))
    assert 0 < ran < 2 * n, ran
    d.start(timeout=30)
    wait_until(lambda: d.psql("SELECT count(*) FROM drip_enrollments WHERE "
                              "status = 'done'") == str(n), 60,
               what="every enrollment done")
    print("kill -9 after %d of %d step runs" % (ran, 2 * n))
    check_exactly_once(d, "k9-", n)
    # every message delivered: each step's email reached the maildir
    try:
        wait_until(lambda: d.psql("SELECT count(*) FROM deliveries WHERE "
                                  "status = 'sent' AND drip_enrollment IS "
                                  "NOT NULL") == str(2 * n), 60,
                   what="every step's email sent")
    except AssertionError:
        print(d.psql("SELECT status, count(*) FROM deliveries GROUP BY 1"))
        print(d.log_since_start()[-3000:])
        raise
    d.stop()


# ---- two daemons on one database ------------------------------------------------------

def test_two_daemons_one_database(tmp, pg_external):
    n = 600
    db = pg_external.create_db()
    a = drip_daemon(tmp, name="na", database=pg_external.uri(db),
                    drips={"wave": DRIPS["wave"]})
    b = drip_daemon(tmp, name="nb", database=pg_external.uri(db),
                    drips={"wave": DRIPS["wave"]})
    for d in (a, b):
        d.top["admin_token"] = "t" * 32
        d.write_config()
        d.psql = lambda sql, **kw: pg_external.psql(sql, db=db)
    a.start(timeout=30)
    b.start(timeout=30)
    wait_until(lambda: a.psql("SELECT count(*) FROM drip_versions") == "1",
               10)
    enroll_many(a, "wave", n, "two-", due="now() + interval '1 second'")
    wait_until(lambda: a.psql("SELECT count(*) FROM drip_enrollments WHERE "
                              "status = 'done'") == str(n), 60,
               what="every enrollment done")
    check_exactly_once(a, "two-", n)
    nodes = a.psql("SELECT count(DISTINCT node_id) FROM drip_enrollments")
    print("enrollments run by %s nodes" % nodes)
    assert nodes == "2", nodes
    a.stop()
    b.stop()


# ---- versions ---------------------------------------------------------------------------

def test_edit_makes_a_version_enrolled_leads_stay(dd):
    d = dd
    path = os.path.join(d.tmp.path, "drips", "goal.conf")
    lead, addr = capture(d, source="goal")
    wait_mail(d, addr, "First")
    v1 = enrollment(d, "goal", lead)
    old = open(path).read()
    mt.write_file(path, old.replace('subject = "Second"',
                                    'subject = "Second, edited"'))
    try:
        api(d, "POST", "/api/v1/reload", expect=200)
        wait_until(lambda: d.psql("SELECT max(version) FROM drip_versions "
                                  "WHERE drip = 'goal'") == "2", 10)
        # the lead enrolled before the edit finishes on version 1
        wait_mail(d, addr, "Second", timeout=10)
        assert mails(d, addr, "Second, edited") == []
        assert d.psql("SELECT version FROM drip_enrollments WHERE id = %s"
                      % v1[0]) == "1"
        # a new lead gets the new version
        lead2, addr2 = capture(d, source="goal")
        wait_mail(d, addr2, "Second, edited", timeout=15)
    finally:
        mt.write_file(path, old)
        api(d, "POST", "/api/v1/reload", expect=200)


# ---- configuration ------------------------------------------------------------------------

@pytest.mark.parametrize("text,line,msg", [
    (FROM + 'step "a" { type = email; subject = "x"; html = "drips/no" }\n',
     2, "html: no template 'drips/no'"),
    (FROM + 'step "a" { type = branch; if = "score > 1"; then = "zz" }\n',
     2, "then: no step 'zz'"),
    (FROM + 'step "a" { type = set; tag = "t"; next = "b" }\n'
     'step "b" { type = set; tag = "u"; next = "a" }\n',
     3, "loops back to 'a' without a wait"),
    (FROM + 'step "a" { type = exit }\nstep "b" { type = exit }\n',
     3, "step 'b' is unreachable"),
    (FROM + 'step "a" { type = wait; until = "mon 09:00-09:00" }\n',
     2, "empty"),
])
def test_check_config_errors(tmp, text, line, msg):
    d = drip_daemon(tmp, name="cc", drips={"bad": text})
    out = harness.cli(d.conf_path, "check-config")
    assert out.returncode != 0
    want = "%s:%d:" % (os.path.join(tmp.path, "drips", "bad.conf"), line)
    assert want in out.stdout + out.stderr, out.stdout + out.stderr
    assert msg in out.stdout + out.stderr, out.stdout + out.stderr
