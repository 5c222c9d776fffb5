"""
The lead and routing commands of the leadcast CLI against the real daemon:
`leads import` (good lines stored, bad lines reported as FILE:LINE: field:
message with the right line numbers across quoted newlines, CRLF, blank
lines and batches of 1000, records over 64 KiB refused), `lead
add/show/list/assign/status`, `rep list/add/on/off/token`, `report routing`
(text, --json, --csv), and what every command shares: --json, exit status
0 ok, 1 error (the API's message with its field), 2 usage. Also the
`subscribers import` that shares the CSV code with `leads import`.

The daemon routes with a small routing.conf: leads from source "manual"
wait in a manual queue (no offers, so imports stay quick); the others are
offered round-robin to ann and bob, with cat as catch-all. Offers reach
reps by email through the maildir transport.
"""
import csv
import io
import json
import os
import re

import pytest

import harness
import mailtools as mt
from harness import cli, wait_until

ROUTING = """\
time_zone = "UTC"
team "east" {
	method = round_robin
	offer_window = 5m
	max_offers = 2
	catch_all = "cat"
}
team "desk" {
	method = manual
}
rep "ann" { name = "Ann Arbor"; email = "ann@reps.example"; teams = { "east" } }
rep "bob" { email = "bob@reps.example"; teams = { "east" } }
rep "cat" { email = "cat@reps.example" }
rule "desk" { when = "source == 'manual' or source == 'csv'"; team = "desk" }
rule "default" { team = "east" }
"""


SCORING = """\
profile "director" { when = "title matches '*director*'"; points = 40 }
grade "warm" { min = 30 }
grade "cold" { min = 0 }
"""


@pytest.fixture(scope="module")
def d():
    tmp = harness.TempDir("clil")
    mt.routing_dir(tmp, ROUTING, SCORING)
    outbox = tmp.sub("outbox", owner_daemon=True)
    dm = harness.Daemon(tmp, name="cl", extra_lines=[
        'list "news" { title = "News" }',
        "mail {", '\ttransport = "maildir:%s"' % outbox, "}"])
    dm.tmp = tmp
    try:
        dm.start(timeout=30)
        yield dm
    finally:
        dm.cleanup()
        tmp.cleanup()


def lc(d, *args, timeout=60):
    return cli(d.conf_path, *args, timeout=timeout)


def lc_json(d, *args):
    r = lc(d, *args, "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def write(d, name, text, newline=""):
    path = os.path.join(d.tmp.path, name)
    with open(path, "w", newline=newline) as f:
        f.write(text)
    return path


def api(d, method, path, body=None):
    if method == "GET":
        r = d.get(path, token=d.token)
    else:
        r = d.post(path, body=json.dumps(body or {}).encode(), token=d.token)
    return r


def rows(d, sql):
    out = d.psql(sql)
    return [l.split("|") for l in out.splitlines()] if out else []


_seq = [0]


def addr(tag):
    _seq[0] += 1
    return "%s%d.%d@example.com" % (tag, _seq[0], os.getpid())


# ---- leads import -----------------------------------------------------------------

def test_import_good_and_bad_lines(d):
    a, b, c, e, f = (addr("imp") for _ in range(5))
    text = (
        "E-mail,First Name,Phone Number,Zip,Favorite Color,Notes\r\n"   # 1
        "%s,Ann,,48104,blue,plain\r\n"                                  # 2
        "not-an-email,Bad,,,red,x\r\n"                                  # 3
        "%s,Bea,,,green,\"two\r\nline note\"\r\n"                       # 4-5
        "\r\n"                                                          # 6
        "%s,Cy,,,\"a \"\"quoted\"\", one\",x\r\n"                         # 7
        "%s,Short\r\n"                                                  # 8
        "nobody@example.com,Q,,,bad\"quote,x\r\n"                       # 9
        "%s,Eve,+1 313 555 0142,,,\r\n"                                 # 10
        "%s,\"Multi\r\nline\r\nname\",,,,\r\n"                           # 11-13
        "also bad,Zed,,,,\r\n"                                          # 14
    ) % (a, b, c, addr("short"), e, f)
    path = write(d, "leads.csv", text)
    r = lc(d, "leads", "import", path, "--source", "csv")
    assert r.returncode == 1, (r.stdout, r.stderr)
    errs = r.stderr.splitlines()
    by_line = {}
    for l in errs:
        m = re.match(re.escape(path) + r":(\d+): (.*)$", l)
        assert m, "not FILE:LINE: %r" % l
        by_line[int(m.group(1))] = m.group(2)
    # a custom field may hold a note of several lines (line 4-5); a
    # standard field may not (11-13)
    assert sorted(by_line) == [3, 8, 9, 11, 14], errs
    assert by_line[3].startswith("email: "), by_line[3]
    assert "columns" in by_line[8]
    assert "quote" in by_line[9]
    assert by_line[11].startswith("first_name: "), by_line[11]
    assert by_line[14].startswith("email: "), by_line[14]
    assert "9 rows: 4 created, 0 merged, 5 rejected" in r.stdout, r.stdout
    got = {x[0]: x[1:] for x in json.loads(d.psql(
        "SELECT json_agg(json_build_array(email, first_name, postal_code, "
        "fields->>'favorite_color', fields->>'notes', source, phone)) "
        "FROM leads WHERE email IN (%s)" % ", ".join(
            mt.sql_str(x) for x in (a, b, c, e, f))))}
    assert sorted(got) == sorted([a, b, c, e])
    assert got[a] == ["Ann", "48104", "blue", "plain", "csv", None]
    assert got[b][3] == "two\r\nline note", got[b]
    assert got[c][2] == 'a "quoted", one'
    assert got[e][5] == "+13135550142"
    assert d.psql("SELECT count(*) FROM leads WHERE first_name IN "
                  "('Bad', 'Zed', 'Short', 'Q')") == "0"

    # the same good lines again are merged, not duplicated
    good = write(d, "again.csv", "Email,First Name\n%s,Ann\n%s,Cy\n" % (a, c))
    r = lc(d, "leads", "import", good, "--source", "csv")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "2 rows: 0 created, 2 merged, 0 rejected" in r.stdout
    assert r.stderr == ""
    assert d.psql("SELECT count(*) FROM leads WHERE email = %s"
                  % mt.sql_str(a)) == "1"


def test_import_json_and_map(d):
    a, b = addr("map"), addr("map")
    path = write(d, "mapped.csv",
                 "Contact,Org,Tier,Ignore me\n"
                 "%s,Acme,gold,zzz\n"
                 "bad@@example,Nope,x,y\n"
                 "%s,Beta,,zzz\n" % (a, b))
    r = lc(d, "leads", "import", path, "--source", "csv", "--map",
           "Contact=email,Org=company,Tier=fields.plan,Ignore me=-", "--json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    assert doc["rows"] == 3 and doc["created"] == 2 and doc["rejected"] == 1
    assert doc["complete"] is True
    assert [(e["line"], e["field"]) for e in doc["errors"]] == [(3, "email")]
    assert r.stderr == ""           # with --json the errors are in the JSON
    got = rows(d, "SELECT company, fields::text FROM leads WHERE email = %s"
               % mt.sql_str(a))
    assert got[0][0] == "Acme"
    assert json.loads(got[0][1]) == {"plan": "gold"}

    # a --map naming a column the file lacks is an error before any row
    r = lc(d, "leads", "import", path, "--source", "csv", "--map",
           "Mail=email")
    assert r.returncode == 1
    assert "%s:1: --map: the file has no column 'Mail'" % path in r.stderr
    # no email or phone column at all
    nocol = write(d, "nocol.csv", "Name,Company\nA,B\n")
    r = lc(d, "leads", "import", nocol, "--source", "csv")
    assert r.returncode == 1
    assert "%s:1: no email or phone column" % nocol in r.stderr


def test_import_batches_and_long_record(d):
    """2,400 rows go in three batches; the API's row indexes in the later
    batches are reported with their own file lines (a record spanning
    lines by its first); a record over 64 KiB is refused with its first
    line and the rest goes on."""
    pid = os.getpid()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["email", "first_name", "notes"])
    bad_lines = []
    line = 2
    for i in range(2400):
        if i in (5, 1500, 2399):
            w.writerow(["bulk%d.%d@@example.com" % (i, pid), "B", ""])
            bad_lines.append(line)
        elif i == 700:
            w.writerow(["bulk%d.%d@example.com" % (i, pid), "L",
                        "x" * 40000 + "\n" + "y" * 30000])
            long_line = line
            line += 1                   # its quoted newline
        elif i == 1200:     # a note of several lines: kept
            w.writerow(["bulk%d.%d@example.com" % (i, pid), "M",
                        "first\nsecond\nthird"])
            line += 2
        else:
            w.writerow(["bulk%d.%d@example.com" % (i, pid), "G", ""])
        line += 1
    path = write(d, "bulk.csv", out.getvalue())
    r = lc(d, "leads", "import", path, "--source", "manual", timeout=300)
    assert r.returncode == 1, (r.stdout, r.stderr)
    reported = [int(m.group(1)) for m in re.finditer(
        re.escape(path) + r":(\d+): ", r.stderr)]
    assert sorted(reported) == sorted(bad_lines + [long_line]), r.stderr
    assert "%s:%d: record longer than 64 KiB" % (path, long_line) in r.stderr
    assert "2400 rows: 2396 created, 0 merged, 4 rejected" in r.stdout
    assert d.psql("SELECT count(*) FROM leads WHERE email LIKE 'bulk%%.%d@%%'"
                  % pid) == "2396"
    assert d.psql("SELECT fields->>'notes' FROM leads WHERE email = "
                  "'bulk1200.%d@example.com'" % pid) == "first\nsecond\nthird"


def test_import_usage_and_missing_file(d):
    r = lc(d, "leads", "import", "x.csv")            # no --source
    assert r.returncode == 2 and "usage:" in r.stderr
    r = lc(d, "leads", "import", "--source", "csv")
    assert r.returncode == 2
    r = lc(d, "leads", "import", "/nonexistent/x.csv", "--source", "csv")
    assert r.returncode == 1
    assert "cannot open /nonexistent/x.csv" in r.stderr


# ---- lead add, show, list, assign, status ----------------------------------------

def add_lead(d, *extra, source="web"):
    email = addr("add")
    doc = lc_json(d, "lead", "add", "--email", email, "--source", source,
                  *extra)
    return email, doc


def test_lead_add_and_show(d):
    email = addr("add")
    r = lc(d, "lead", "add", "--email", email, "--first-name", "Ada",
           "--last-name", "Lovelace", "--company", "Engines Ltd",
           "--field", "title=Sales Director",
           "--phone", "+1 313 555 0199", "--source", "web",
           "--field", "plan=gold", "--field", "country=US")
    assert r.returncode == 0, (r.stdout, r.stderr)
    m = re.match(r"lead (\d+) created\n", r.stdout)
    assert m, r.stdout
    lead = int(m.group(1))
    assert "status" in r.stdout and "owner" in r.stdout
    assert d.psql("SELECT country || '|' || (fields->>'plan') FROM leads "
                  "WHERE id = %d" % lead) == "US|gold"
    # the same address again: merged into that lead
    r = lc(d, "lead", "add", "--email", email, "--source", "web")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("lead %d merged" % lead), r.stdout
    doc = lc_json(d, "lead", "add", "--email", email, "--source", "web")
    assert doc["created"] is False and doc["lead"]["id"] == lead

    # show: fields, score, status, owner, team, history
    wait_until(lambda: api(d, "GET", "/api/v1/leads/%d" % lead).json()
               ["lead"].get("team"), 10, what="lead routed")
    r = lc(d, "lead", "show", str(lead))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for want in ("Ada", "Lovelace", "Engines Ltd", "+13135550199",
                 "fields.plan", "gold", "score", "status", "owner", "team",
                 "history", "captured"):
        assert want in out, (want, out)
    assert re.search(r"^\s+email\s+%s$" % re.escape(email), out, re.M), out
    assert re.search(r"^\s+score\s+40 \(grade warm\)$", out, re.M), out
    doc = lc_json(d, "lead", "show", str(lead))
    assert doc["lead"]["id"] == lead
    assert [e["type"] for e in doc["events"]][0] == "captured"
    assert "offers" in doc and "score_history" in doc
    assert doc["lead"]["score"] == 40 and doc["lead"]["grade"] == "warm"

    # errors: the API's, with the field; an unknown lead
    r = lc(d, "lead", "add", "--email", "not-an-email")
    assert r.returncode == 1
    assert r.stderr.startswith("email: "), r.stderr
    r = lc(d, "lead", "add", "--email", "x@example.com", "--field", "novalue")
    assert r.returncode == 2
    r = lc(d, "lead", "show", "999999999")
    assert r.returncode == 1 and "404" in r.stderr, r.stderr
    r = lc(d, "lead", "show", "999999999", "--json")
    assert r.returncode == 1 and "error" in json.loads(r.stdout)
    r = lc(d, "lead", "add", "--first-name", "Nobody")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_lead_list(d):
    src = "list%d" % os.getpid()
    mine = [addr("lst") for _ in range(5)]
    for e in mine:
        r = lc(d, "lead", "add", "--email", e, "--source", src)
        assert r.returncode == 0, r.stderr
    r = lc(d, "lead", "list", "--source", src)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "EMAIL"]
    assert sorted(l.split()[1] for l in lines[1:-1]) == sorted(mine)
    assert lines[-1] == "5 leads"
    # columns line up: every row's EMAIL starts where the header's does
    col = lines[0].index("EMAIL")
    assert all(l[col - 2:col] == "  " and l[col] != " "
               for l in lines[1:-1]), lines
    # --limit follows "next" page by page and stops at the limit
    doc = lc_json(d, "lead", "list", "--source", src, "--limit", "3")
    assert len(doc["leads"]) == 3 and doc["next"] is not None
    r = lc(d, "lead", "list", "--source", src, "--limit", "2")
    assert r.stdout.splitlines()[-1].startswith("2 leads (more")
    doc = lc_json(d, "lead", "list", "--source", src, "--limit", "600")
    assert len(doc["leads"]) == 5
    # filters
    doc = lc_json(d, "lead", "list", "--source", "no-such-source")
    assert doc["leads"] == []
    r = lc(d, "lead", "list", "--limit", "x")
    assert r.returncode == 2


def test_lead_assign_and_status(d):
    email, doc = add_lead(d, source="manual")
    lead = doc["lead"]["id"]
    r = lc(d, "lead", "assign", str(lead), "bob", "--note", "knows them")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("lead %d assigned to bob" % lead), r.stdout
    assert d.psql("SELECT owner FROM leads WHERE id = %d" % lead) == "bob"
    r = lc(d, "lead", "status", str(lead), "qualified", "--note", "budget ok")
    assert r.returncode == 0, r.stderr
    assert "lead %d is now qualified" % lead in r.stdout
    assert d.psql("SELECT status FROM leads WHERE id = %d" % lead) == \
        "qualified"
    doc = lc_json(d, "lead", "list", "--owner", "bob", "--status",
                  "qualified", "--team", "desk", "--limit", "500")
    assert lead in [x["id"] for x in doc["leads"]]
    assert all(x["owner"] == "bob" and x["status"] == "qualified"
               for x in doc["leads"]), doc
    doc = lc_json(d, "lead", "show", str(lead))
    ev = {e["type"]: e for e in doc["events"]}
    assert ev["assigned"]["data"]["rep"] == "bob", ev
    # a status change: an event "status" {from, to, note}
    st = [e for e in doc["events"] if e["type"] in ("status", "qualified")
          and e["data"].get("to") == "qualified"]
    assert st and st[0]["data"]["note"] == "budget ok", ev
    # the history as text: time, event, rep, details
    out = lc(d, "lead", "show", str(lead)).stdout
    hist = out[out.index("\nhistory\n"):].splitlines()
    assert hist[2].split()[:2] == ["TIME", "EVENT"], hist
    assigned = [l for l in hist if "  assigned  " in l][0]
    assert re.search(r"\d\d:\d\d:\d\d\S*\s+assigned\s+bob\s", assigned), \
        assigned
    assert [l for l in hist if "to=qualified" in l and "note=budget ok" in l
            ], hist
    # errors name the field
    r = lc(d, "lead", "assign", str(lead), "nobody-here")
    assert r.returncode == 1 and r.stderr.startswith("rep: "), r.stderr
    r = lc(d, "lead", "status", str(lead), "bogus")
    assert r.returncode == 1 and r.stderr.startswith("status: "), r.stderr
    r = lc(d, "lead", "assign", str(lead))
    assert r.returncode == 2


# ---- reps ---------------------------------------------------------------------------

def test_rep_commands(d):
    rid = "zed%d" % (os.getpid() % 10000)
    r = lc(d, "rep", "add", rid, "--email", "%s@reps.example" % rid,
           "--name", "Zed Zulu", "--team", "east", "--weight", "2",
           "--capacity", "5", "--time-zone", "America/Detroit",
           "--hours", "mon-fri 09:00-17:00", "--hours", "sat 10:00-12:00",
           "--skill", "enterprise,smb", "--language", "en",
           "--territory", "US", "--product", "widgets")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.strip() == "rep %s added" % rid
    doc = wait_until(lambda: [x for x in lc_json(d, "rep", "list")["reps"]
                              if x["id"] == rid], 10, what="rep listed")[0]
    assert doc["origin"] == "api" and doc["teams"] == ["east"]
    assert doc["weight"] == 2 and doc["capacity"] == 5
    r = lc(d, "rep", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "TEAMS"]
    row = [l for l in lines if l.startswith(rid + " ")][0]
    assert "Zed Zulu" in row and re.search(r"\b0/5\b", row) and \
        row.rstrip().endswith("api"), row
    assert [l for l in lines if l.startswith("ann ")][0].rstrip().endswith(
        "config")

    # off and on duty
    r = lc(d, "rep", "off", rid)
    assert r.returncode == 0 and r.stdout.strip() == "rep %s is off duty" % rid
    wait_until(lambda: [x for x in lc_json(d, "rep", "list")["reps"]
                        if x["id"] == rid and x["on_duty"] is False], 10,
               what="off duty")
    r = lc(d, "rep", "on", rid)
    assert r.returncode == 0 and r.stdout.strip() == "rep %s is on duty" % rid
    wait_until(lambda: [x for x in lc_json(d, "rep", "list")["reps"]
                        if x["id"] == rid and x["on_duty"] is True], 10,
               what="on duty")

    # the rep's token works as the rep's own credential
    r = lc(d, "rep", "token", rid)
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert tok and "\n" not in tok
    rr = d.post("/api/v1/reps/%s" % rid, body=json.dumps(
        {"skills": ["x"]}).encode(), token=tok)
    assert rr.status == 200, rr

    # errors: the API's field; usage
    r = lc(d, "rep", "add", rid + "b", "--email", "b@reps.example",
           "--weight", "500")
    assert r.returncode == 1 and r.stderr.startswith("weight: "), r.stderr
    r = lc(d, "rep", "add", "ann", "--email", "a@reps.example")
    assert r.returncode == 1 and "409" in r.stderr, r.stderr
    r = lc(d, "rep", "add", rid + "c", "--email", "c@x", "--capacity", "1.5")
    assert r.returncode == 2
    r = lc(d, "rep", "on", "nobody-at-all")
    assert r.returncode == 1
    r = lc(d, "rep", "fly")
    assert r.returncode == 2 and "unknown action 'fly'" in r.stderr


# ---- the routing report ----------------------------------------------------------------

def test_report_routing(d):
    # some offers, one accepted
    _, doc = add_lead(d, source="web")
    lead = doc["lead"]["id"]
    offer = wait_until(lambda: d.psql(
        "SELECT id FROM offers WHERE lead_id = %d AND status = 'pending'"
        % lead), 10, what="an offer")
    r = api(d, "POST", "/api/v1/offers/%s/accept" % offer.split()[0])
    assert r.status == 200, r

    doc = lc_json(d, "report", "routing", "--since", "1d")
    assert set(["rep", "team", "rule", "source"]) <= set(doc["by"]), doc
    team = {x["key"]: x for x in doc["by"]["team"]}
    assert team["east"]["offered"] >= 1 and team["east"]["accepted"] >= 1

    r = lc(d, "report", "routing", "--since", "7d")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("routing since ")
    for g in ("by rep", "by team", "by rule", "by source"):
        assert g in out, out
    hdr = [l for l in out.splitlines() if l.startswith("TEAM ")][0]
    assert "OFFERED" in hdr and "ACCEPT %" in hdr and "TO ACCEPT p50" in hdr
    east = [l for l in out.splitlines() if l.startswith("east ")][0]
    assert re.search(r"\d+%", east), east
    assert re.search(r"\b\d+(\.\d)?(ms|s|m|h|d)\b", east), east

    r = lc(d, "report", "routing", "--since", "2020-01-01", "--csv")
    assert r.returncode == 0, r.stderr
    table = list(csv.reader(io.StringIO(r.stdout)))
    assert table[0][:3] == ["by", "key", "offered"]
    assert "acceptance_pct" in table[0] and "accept_p90_s" in table[0]
    assert {row[0] for row in table[1:]} >= {"rep", "team", "rule", "source"}
    east = [row for row in table[1:] if row[:2] == ["team", "east"]][0]
    assert int(east[2]) >= 1

    # a date far ahead: nothing since then
    doc = lc_json(d, "report", "routing", "--since", "2099-01-01")
    assert all(not v or all(x["offered"] == 0 for x in v)
               for v in doc["by"].values()), doc
    r = lc(d, "report", "routing", "--since", "last tuesday")
    assert r.returncode == 2 and "neither a date" in r.stderr
    r = lc(d, "report", "routing", "--csv", "--json")
    assert r.returncode == 2
    r = lc(d, "report", "routed")
    assert r.returncode == 2


# ---- shared behaviour -----------------------------------------------------------------

def test_daemon_down_is_exit_1(daemons):
    dm = daemons(name="down", top={"admin_token": "t" * 40})  # not started
    for args in (("lead", "list"), ("rep", "list"), ("report", "routing"),
                 ("lead", "show", "1")):
        r = cli(dm.conf_path, *args)
        assert r.returncode == 1, (args, r.stderr)
        assert "not answering" in r.stderr


def test_subscribers_import_shares_the_csv_code(d):
    """subscribers import goes through the same reader: line numbers of
    rejected rows, exit 2 when some were rejected."""
    a, b = addr("sub"), addr("sub")
    path = write(d, "subs.csv",
                 "Email Address,First Name\n"
                 "%s,\"Multi\nline\"\n"
                 "not-an-email,X\n"
                 "%s,B\n" % (a, b))
    r = lc(d, "subscribers", "import", path, "--list", "news")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert re.findall(re.escape(path) + r":(\d+): (\w+): ", r.stderr) == \
        [("2", "first_name"), ("4", "email")], r.stderr
    assert "3 rows, 1 imported into news" in r.stdout
