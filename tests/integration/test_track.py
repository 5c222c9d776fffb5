"""
Tracking at scale (issue 6), through the real daemon: opens and clicks
answered on the tracking threads (track.listen, SO_REUSEPORT) from the
link table in memory, each hit stored once with its class (human, machine,
scanner) and reason; scanner judgements made by the database (a click soon
after sending, a honeypot link, every link clicked at once); a flood from
one address rate-limited; hits spooled while PostgreSQL is down and
replayed once, never twice; human hits scored by scoring.conf, a threshold
routing the lead to sales.

Each test speaks from its own loopback address (127.0.0.N), so that the
per-address rate limit of one test does not touch another.
"""
import http.client
import json
import os
import time
import urllib.parse

import pytest

import harness
import mailtools as mt
from harness import wait_until

ROUTING = """\
time_zone = "UTC"
team "rr" { method = round_robin; offer_window = 5m; catch_all = "ann" }
team "hold" { method = manual }
rep "ann" { email = "ann@reps.example"; teams = { "rr" } }
rule "hold" { when = "source == 'hold'"; team = "hold" }
rule "default" { team = "rr" }
"""

SCORING = """\
behavior "open" { event = open; points = 1 }
behavior "click" { event = click; points = 10 }
behavior "pricing" { event = click; when = "event.tag == 'pricing'";
	points = 20 }
behavior "hot" { event = hot_page; when = "event.page == 'pricing'";
	points = 7 }
threshold "ready" { min = 30; action = route; team = "rr" }
"""

BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
           "Gecko) Chrome/120.0 Safari/537.36")


def track_lines(port, **keys):
    out = ["track {", '\tlisten = { "127.0.0.1:%d" }' % port, "\tthreads = 2"]
    for k, v in keys.items():
        out.append("\t%s = %s" % (k, harness._fmt(v)))
    return out + ["}"]


def hit(port, path, src="127.0.0.1", ua=BROWSER, method="GET", headers=None):
    """One request to the tracking port from loopback address src."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5,
                                   source_address=(src, 0))
    h = dict(headers or {})
    if ua:
        h["User-Agent"] = ua
    try:
        c.request(method, path, headers=h)
        r = c.getresponse()
        return harness.Resp(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def one(d, sql):
    return d.psql(sql)


class Setup:
    pass


def make_campaign(d, name, links, sent_ago="1 hour", email=None, lead=None):
    """A sent campaign of one delivery; links: [(url, tag)]. Returns
    (delivery id, {url: link id})."""
    cid = one(d, "INSERT INTO campaigns (name, status) VALUES (%s, 'done') "
              "RETURNING id" % mt.sql_str(name))
    if lead is None:
        lead = one(d, "INSERT INTO leads (email) VALUES (%s) RETURNING id" %
                   mt.sql_str(email or name + "@example.com"))
    did = one(d, "INSERT INTO deliveries (campaign_id, lead_id, email, "
              "status, sent_at) VALUES (%s, %s, 'x@example.com', 'sent', "
              "now() - interval %s) RETURNING id" % (cid, lead,
                                                    mt.sql_str(sent_ago)))
    ids = {}
    for url, tag in links:
        ids[url] = int(one(d, "INSERT INTO campaign_links (campaign_id, url, "
                           "tag) VALUES (%s, %s, %s) RETURNING id" % (
                               cid, mt.sql_str(url), mt.sql_str(tag))))
    return int(did), ids


def events_of(d, did, cols="type, class, coalesce(reason, '')"):
    out = d.psql("SELECT %s FROM events WHERE delivery_id = %d ORDER BY id"
                 % (cols, did))
    return [tuple(l.split("|")) for l in out.splitlines()]


@pytest.fixture(scope="module")
def trk():
    tmp = harness.TempDir("trk")
    mt.routing_dir(tmp, ROUTING, SCORING)
    outbox = tmp.sub("outbox", owner_daemon=True)
    tport = harness.free_port()
    mt.write_file(os.path.join(tmp.path, "tpl", "fw", "main.html.mustache"),
                  "<p>Hello {{first_name}}{{^first_name}}there{{/first_name}}"
                  "</p><p><a href=\"{{forward_url}}\" data-notrack>Forward"
                  "</a></p>")
    mt.write_file(os.path.join(tmp.path, "camp", "fwd.conf"),
                  mt.campaign_text(**{"from": "News <news@example.com>",
                                      "subject": "The fwd news",
                                      "html": "fw/main.html",
                                      "lists": ["fwlist"]}))
    d = harness.Daemon(tmp, name="trk", top={"campaigns": "camp"},
                       extra_lines=['list "fwlist" { }',
        "mail {", '\ttransport = "maildir:%s"' % outbox, "}"] + track_lines(
        tport, rate=harness.Raw('"10/m"'),
        machine_networks=["127.0.0.9"], scanner_delay=harness.Raw("3s"),
        settle=harness.Raw("200ms"), sites=["site.example"],
        hot_pages=["pricing=*/pricing*"], forward_rate="2/h",
        trusted_proxies=["127.0.0.20"]))
    d.tport = tport
    d.outbox = mt.Maildir(outbox)
    try:
        d.start(timeout=30)
        d.key = mt.url_key(d)
        yield d
    finally:
        d.cleanup()
        tmp.cleanup()


def test_open_click_classified(trk):
    d, key, port = trk, trk.key, trk.tport
    did, links = make_campaign(d, "c1", [("https://shop.example.com/a", ""),
                                         ("https://shop.example.com/b", "")])
    otok = mt.url_token(key, "o", did)
    src = "127.0.0.11"
    # a human open and click, on the tracking threads
    r = hit(port, "/o/%s.gif" % otok, src)
    assert r.status == 200 and r.body.startswith(b"GIF89a") and \
        len(r.body) == 43
    a = links["https://shop.example.com/a"]
    r = hit(port, "/c/" + mt.url_token(key, "c", did, a), src)
    assert (r.status, r.header("Location")) == (302,
                                                "https://shop.example.com/a")
    # Gmail's image proxy: machine; a script: scanner; HEAD: scanner;
    # an address of machine_networks: machine
    hit(port, "/o/%s.gif" % otok, src, ua="Mozilla/5.0 (Windows NT 5.1; "
        "rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)")
    hit(port, "/o/%s.gif" % otok, src, ua="python-requests/2.31")
    r = hit(port, "/o/%s.gif" % otok, src, method="HEAD")
    assert r.status == 200
    hit(port, "/o/%s.gif" % otok, "127.0.0.9")
    want = [("open", "human", ""), ("click", "human", ""),
            ("open", "machine", "agent:GoogleImageProxy"),
            ("open", "scanner", "agent:python-"),
            ("open", "scanner", "head-request"),
            ("open", "machine", "network:127.0.0.9")]
    got = wait_until(lambda: (lambda e: e if len(e) >= 6 else None)(
        events_of(d, did)), 10, what="six events")
    assert sorted(got) == sorted(want), got
    # every hit has its own id; the click has its link
    assert one(d, "SELECT count(DISTINCT hit_id) FROM events WHERE "
               "delivery_id = %d" % did) == "6"
    assert one(d, "SELECT link_id FROM events WHERE type = 'click' AND "
               "delivery_id = %d" % did) == str(a)

    # bad input: fast 404s, never a redirect, nothing written
    before = one(d, "SELECT count(*) FROM events")
    ctok = mt.url_token(key, "c", did, a)
    for path in ["/o/%s.gif" % mt.tamper(otok), "/c/" + mt.tamper(ctok),
                 "/c/" + ctok[:-2], "/c/" + otok, "/o/%s.gif" % ctok,
                 "/c/" + mt.url_token(key, "c", did, 987654),
                 "/c/" + "A" * 5000, "/o/x.gif?" + "q=1&" * 1000,
                 "/u/" + mt.url_token(key, "u", did)]:
        r = hit(port, path, "127.0.0.12")
        assert r.status in (404, 400, 414), (path[:60], r)
        assert r.header("Location") is None
    r = hit(port, "/o/%s.gif" % otok, "127.0.0.12", ua="A" * 5000)
    assert r.status in (200, 400, 431), r
    time.sleep(0.5)
    assert int(one(d, "SELECT count(*) FROM events")) <= int(before) + 1
    assert one(d, "SELECT count(*) FROM events WHERE user_agent LIKE "
               "'AAAAAAAAAA%' AND class <> 'scanner'") == "0"


def test_link_made_after_start(trk):
    """A link not yet in memory is looked up once through the loop."""
    d, key, port = trk, trk.key, trk.tport
    did, links = make_campaign(d, "c2", [("https://new.example.com/x", "")])
    lid = links["https://new.example.com/x"]
    for _ in range(2):
        r = hit(port, "/c/" + mt.url_token(key, "c", did, lid), "127.0.0.13")
        assert (r.status, r.header("Location")) == (
            302, "https://new.example.com/x")
    wait_until(lambda: len(events_of(d, did)) == 2, 5, what="two clicks")


def test_scanner_judgements(trk):
    d, key, port = trk, trk.key, trk.tport
    src = "127.0.0.14"
    # a click seconds after sending (scanner_delay = 3s)
    did, links = make_campaign(d, "c3", [("https://a.example.com/", "")],
                               sent_ago="0 seconds")
    hit(port, "/c/" + mt.url_token(key, "c", did, links[
        "https://a.example.com/"]), src)
    # the hidden honeypot link
    did2, links2 = make_campaign(d, "c4", [("https://b.example.com/", ""),
                                           ("https://b.example.com/trap",
                                            "honeypot")])
    hit(port, "/c/" + mt.url_token(key, "c", did2, links2[
        "https://b.example.com/trap"]), src)
    # every link of a message clicked at once
    did3, links3 = make_campaign(d, "c5", [("https://c.example.com/1", ""),
                                           ("https://c.example.com/2", ""),
                                           ("https://c.example.com/3", "")])
    for url in sorted(links3):
        hit(port, "/c/" + mt.url_token(key, "c", did3, links3[url]), src)
    assert wait_until(lambda: events_of(d, did) == [
        ("click", "scanner", "soon-after-sending")], 5)
    assert wait_until(lambda: events_of(d, did2) == [
        ("click", "scanner", "honeypot")], 5)
    assert wait_until(lambda: events_of(d, did3) == [
        ("click", "scanner", "every-link-at-once")] * 3, 5), \
        events_of(d, did3)


def test_flood_rate_limited(trk):
    """track.rate = 10/m: the 11th hit from one address is answered and
    not recorded."""
    d, key, port = trk, trk.key, trk.tport
    did, links = make_campaign(d, "c6", [("https://d.example.com/", "")])
    otok = mt.url_token(key, "o", did)
    for _ in range(15):
        assert hit(port, "/o/%s.gif" % otok, "127.0.0.15").status == 200
    time.sleep(0.5)
    assert len(events_of(d, did)) == 10
    assert hit(port, "/o/%s.gif" % otok, "127.0.0.16").status == 200
    wait_until(lambda: len(events_of(d, did)) == 11, 5)
    assert d.metric("leadcast_track_limited_total") >= 5


def test_human_hits_score_and_route(trk):
    """Only human events score; crossing a route threshold sends a lead
    nobody owns to sales (an offer email to ann)."""
    d, key, port = trk, trk.key, trk.tport
    r = d.post("/api/v1/leads", json.dumps({
        "email": "nurture@example.com", "source": "hold"}).encode(),
        token=d.token)
    assert r.status in (200, 201), r
    lead = r.json()["lead"]["id"]
    did, links = make_campaign(d, "c7", [
        ("https://e.example.com/", ""),
        ("https://e.example.com/pricing", "pricing")], lead=lead)
    otok = mt.url_token(key, "o", did)
    src = "127.0.0.17"
    hit(port, "/o/%s.gif" % otok, src, ua="python-requests/2.31")
    hit(port, "/o/%s.gif" % otok, src)
    wait_until(lambda: one(d, "SELECT score FROM leads WHERE id = %s" %
                           lead) == "1", 10, what="open scored")
    time.sleep(0.5)
    assert one(d, "SELECT score FROM leads WHERE id = %s" % lead) == "1"
    assert one(d, "SELECT count(*) FROM score_history WHERE lead_id = %s" %
               lead) == "1"
    # a tagged click: 10 + 20 points, 31 >= 30: routed to rr, offered to ann
    hit(port, "/c/" + mt.url_token(key, "c", did, links[
        "https://e.example.com/pricing"]), src)
    wait_until(lambda: one(d, "SELECT score FROM leads WHERE id = %s" %
                           lead) == "31", 10, what="click scored")
    wait_until(lambda: one(d, "SELECT count(*) FROM offers WHERE lead_id = "
                           "%s" % lead) != "0", 10, what="an offer")
    assert one(d, "SELECT rep_id || ' ' || team FROM offers WHERE "
               "lead_id = %s" % lead) == "ann rr"


def private_daemon(daemons, pg_private, name, **track_keys):
    """A daemon on a database of pg_private (rate = none, track_keys
    more), started, with a sent delivery. Returns (daemon, database,
    tracking port, a query function, the delivery's open token)."""
    db = pg_private.create_db()
    tport = harness.free_port()
    d = daemons(name, database=pg_private.uri(db),
                extra_lines=track_lines(tport, rate=harness.Raw("none"),
                                        **track_keys))
    d.start(timeout=30)
    key = pg_private.psql("SELECT value FROM settings WHERE name = "
                          "'url_key'", db=db)

    def q(sql):
        return pg_private.psql(sql, db=db)
    cid = q("INSERT INTO campaigns (name) VALUES (%s) RETURNING id" %
            mt.sql_str(name))
    did = int(q("INSERT INTO deliveries (campaign_id, email, status, "
                "sent_at) VALUES (%s, 'a@example.com', 'sent', now() - "
                "interval '1 hour') RETURNING id" % cid))
    return d, db, tport, q, mt.url_token(key, "o", did)


def test_spool_when_database_down(daemons, pg_private):
    """PostgreSQL stopped: hits are answered and spooled; started again:
    replayed, each counted once even when the spool is replayed twice."""
    d, db, tport, q, otok = private_daemon(daemons, pg_private, "sp")
    assert hit(tport, "/o/%s.gif" % otok).status == 200
    wait_until(lambda: q("SELECT count(*) FROM events") == "1", 10)
    pg_private.stop()
    for _ in range(30):
        assert hit(tport, "/o/%s.gif" % otok).status == 200
    spool = os.path.join(d.state, "track.spool")
    wait_until(lambda: os.path.exists(spool) and
               open(spool).read().count("\n") == 30, 10, what="30 spooled")
    saved = open(spool).read()
    pg_private.start()
    wait_until(lambda: q("SELECT count(*) FROM events") == "31", 30,
               what="the spool replayed")
    wait_until(lambda: not os.path.exists(spool + ".replay"), 10)
    # a fresh hit on the new session (its statement prepared there anew)
    assert hit(tport, "/o/%s.gif" % otok).status == 200
    wait_until(lambda: q("SELECT count(*) FROM events") == "32", 10,
               what="a fresh hit after the restart")
    # the same lines again (as after a crash before the spool was removed)
    with open(spool, "w") as f:
        f.write(saved)
    wait_until(lambda: not os.path.exists(spool) and
               not os.path.exists(spool + ".replay"), 15, what="replayed")
    assert q("SELECT count(*) FROM events") == "32"
    assert d.metric("leadcast_track_duplicates_total") >= 30
    # a torn last line and garbage are skipped, not fatal
    with open(spool, "w") as f:
        f.write("garbage\n" + saved.splitlines()[0][:40])
    wait_until(lambda: not os.path.exists(spool) and
               not os.path.exists(spool + ".replay"), 15)
    assert q("SELECT count(*) FROM events") == "32"
    # hits answered while stopping are spooled, and the daemon exits 0
    # (clean under the sanitizers when built with them)
    pg_private.stop()
    for _ in range(5):
        assert hit(tport, "/o/%s.gif" % otok).status == 200
    rc, _ = d.stop()
    assert rc == 0, d.log()[-3000:]
    assert "Sanitizer" not in d.log(), d.log()[-3000:]
    assert open(spool).read().count("\n") == 5


def test_statement_prepared_again(daemons, pg_private):
    """Hits are stored by statements prepared once per database session:
    when preparing fails (here the table is away), the batch is spooled,
    nothing is stored twice, and the statements are prepared again once
    they can be: the spool replayed, a fresh hit stored."""
    d, db, tport, q, otok = private_daemon(daemons, pg_private, "pp")
    q("ALTER TABLE events RENAME TO events_away")
    for _ in range(3):
        assert hit(tport, "/o/%s.gif" % otok).status == 200
    spool = os.path.join(d.state, "track.spool")
    wait_until(lambda: d.metric("leadcast_track_spooled_total") >= 3, 10,
               what="3 spooled")
    time.sleep(1.5)                     # a replay tried, and failed
    q("ALTER TABLE events_away RENAME TO events")
    wait_until(lambda: q("SELECT count(*) FROM events WHERE type = "
                         "'open'") == "3", 15, what="the spool replayed")
    wait_until(lambda: not os.path.exists(spool) and
               not os.path.exists(spool + ".replay"), 10)
    assert hit(tport, "/o/%s.gif" % otok).status == 200
    wait_until(lambda: q("SELECT count(*) FROM events WHERE type = "
                         "'open'") == "4", 10, what="a fresh hit")
    assert q("SELECT count(DISTINCT hit_id) FROM events") == "4"


def test_spool_when_database_behind(daemons, pg_private):
    """PostgreSQL taking no hits (events locked) while they keep coming:
    with every batch slot taken and the queue past half full, whole
    batches are spooled from the loop (the tracking threads never wait for
    the disk), and all are stored once when it catches up."""
    import subprocess
    d, db, tport, q, otok = private_daemon(daemons, pg_private, "bh",
                                           queue=256, batch=10)
    path = "/o/%s.gif" % otok
    lock = subprocess.Popen([harness.pg_bin("psql"), "-X", "-q", "-h",
                             "127.0.0.1", "-p", str(pg_private.port), "-U",
                             "postgres", "-d", db], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        lock.stdin.write("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE;\n")
        lock.stdin.flush()
        wait_until(lambda: q("SELECT count(*) FROM pg_locks WHERE mode = "
                             "'ExclusiveLock' AND relation = "
                             "'events'::regclass AND granted") == "1", 10,
                   what="events locked")
        # fewer than the queue holds: without the loop's spooling they
        # would all wait in memory
        c = http.client.HTTPConnection("127.0.0.1", tport, timeout=5)
        for _ in range(200):
            c.request("GET", path, headers={"User-Agent": BROWSER})
            r = c.getresponse()
            r.read()
            assert r.status == 200
        c.close()
        wait_until(lambda: d.metric("leadcast_track_spooled_total") >= 10,
                   10, what="batches spooled")
        lock.stdin.write("COMMIT;\n")
        lock.stdin.flush()
    finally:
        lock.stdin.close()
        lock.wait(10)
    wait_until(lambda: q("SELECT count(*) FROM events") == "200", 30,
               what="all 200 stored")
    time.sleep(1.5)
    assert q("SELECT count(*) FROM events") == "200"
    assert q("SELECT count(DISTINCT hit_id) FROM events") == "200"


def test_campaign_report(trk):
    """GET /api/v1/reports/campaigns and leadcast report campaigns: human
    and machine opens apart, clicks per link, click-to-open, per domain,
    side by side with a total."""
    d, key, port = trk, trk.key, trk.tport
    src = "127.0.0.18"
    dids = {}
    for who in ("r1@alpha.example", "r2@alpha.example", "r3@beta.example"):
        lead = one(d, "INSERT INTO leads (email) VALUES (%s) RETURNING id" %
                   mt.sql_str(who))
        if not dids:
            did, links = make_campaign(d, "rep-a", [
                ("https://r.example.com/1", ""),
                ("https://r.example.com/2", "pricing")], lead=lead)
            cid = one(d, "SELECT campaign_id FROM deliveries WHERE id = %d" %
                      did)
        else:
            did = int(one(d, "INSERT INTO deliveries (campaign_id, lead_id, "
                          "email, status, sent_at) VALUES (%s, %s, %s, "
                          "'sent', now() - interval '1 hour') RETURNING id" %
                          (cid, lead, mt.sql_str(who))))
        one(d, "UPDATE deliveries SET email = %s WHERE id = %d" % (
            mt.sql_str(who), did))
        dids[who] = did
    other, _ = make_campaign(d, "rep-b", [("https://r.example.com/3", "")])
    l1, l2 = links["https://r.example.com/1"], links["https://r.example.com/2"]
    a1, a2, b1 = (dids["r1@alpha.example"], dids["r2@alpha.example"],
                  dids["r3@beta.example"])
    for did in (a1, a1, a2):            # human opens: 3 total, 2 unique
        hit(port, "/o/%s.gif" % mt.url_token(key, "o", did), src)
    hit(port, "/o/%s.gif" % mt.url_token(key, "o", b1), src,
        ua="YahooMailProxy; https://help.yahoo.com")    # machine
    hit(port, "/c/" + mt.url_token(key, "c", a1, l2), src)      # human
    hit(port, "/c/" + mt.url_token(key, "c", a1, l2), src)
    hit(port, "/c/" + mt.url_token(key, "c", b1, l1), src, ua="curl/8")
    hit(port, "/o/%s.gif" % mt.url_token(key, "o", other), src)
    wait_until(lambda: one(d, "SELECT count(*) FROM events WHERE "
                       "delivery_id IN (%d, %d, %d, %d)" % (a1, a2, b1,
                                                            other)) == "8",
               10, what="8 events")
    r = d.get("/api/v1/reports/campaigns?campaigns=rep-a,rep-b",
              token=d.token)
    assert r.status == 200, r
    doc = r.json()
    a, b = doc["campaigns"]
    assert (a["name"], b["name"]) == ("rep-a", "rep-b")
    assert a["recipients"] == 3 and a["sent"] == 3
    assert (a["human_opens"], a["unique_human_opens"]) == (3, 2)
    assert (a["machine_opens"], a["unique_machine_opens"]) == (1, 1)
    assert (a["human_clicks"], a["unique_human_clicks"]) == (2, 1)
    assert a["clicks"] == 3 and a["scanner_hits"] == 1
    assert float(a["click_to_open"]) == 0.5
    links_by = {x["url"]: x for x in a["links"]}
    assert links_by["https://r.example.com/2"]["human_clicks"] == 2
    assert links_by["https://r.example.com/2"]["tag"] == "pricing"
    assert links_by["https://r.example.com/1"]["human_clicks"] == 0
    dom = {x["domain"]: x for x in a["domains"]}
    assert dom["alpha.example"]["unique_human_opens"] == 2
    assert dom["beta.example"]["unique_machine_opens"] == 1
    assert doc["total"]["recipients"] == 4
    assert doc["total"]["unique_human_opens"] == 3
    # unknown campaign, bad dates: errors naming the field
    r = d.get("/api/v1/reports/campaigns?campaigns=nope", token=d.token)
    assert r.status == 404 and r.json()["error"]["field"] == "campaigns"
    r = d.get("/api/v1/reports/campaigns?since=yesterday", token=d.token)
    assert r.status == 400 and r.json()["error"]["field"] == "since"
    # the CLI, side by side, as text and CSV
    out = harness.cli(d.conf_path, "report", "campaigns", "rep-a", "rep-b")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    head = next(l for l in lines if "rep-a" in l and "rep-b" in l)
    assert "TOTAL" in head
    row = next(l for l in lines if l.startswith("opened (human, unique)"))
    assert row.split()[-3:] == ["2", "1", "3"], row
    assert any(l.startswith("click-to-open") and "50.0%" in l for l in lines)
    out = harness.cli(d.conf_path, "report", "campaigns", "rep-a", "--csv")
    assert out.returncode == 0, out.stderr
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    camp = [x for x in rows if x["kind"] == "campaign"][0]
    assert camp["campaign"] == "rep-a" and camp["human_opens"] == "3"
    assert camp["click_to_open"] == "50.00"
    assert {x["key"] for x in rows if x["kind"] == "domain"} == {
        "alpha.example", "beta.example"}


def test_web_visits(trk):
    """A click to the marketer's site carries the visitor token (lc=) and
    sets the lc cookie; /v.gif with it records visits and hot pages (page
    URL and referrer), scored; without a valid token nothing is kept."""
    d, key, port = trk, trk.key, trk.tport
    src = "127.0.0.19"
    lead = one(d, "INSERT INTO leads (email) VALUES ('web@example.com') "
               "RETURNING id")
    did, links = make_campaign(d, "c8", [
        ("https://www.site.example/landing?x=1#top", ""),
        ("https://elsewhere.example/", ""),
        ("https://elsewhere.example/unclicked", "")], lead=lead)
    vtok = mt.url_token(key, "v", did)
    r = hit(port, "/c/" + mt.url_token(key, "c", did, links[
        "https://www.site.example/landing?x=1#top"]), src)
    assert r.status == 302
    assert r.header("Location") == \
        "https://www.site.example/landing?x=1&lc=%s#top" % vtok
    ck = r.header("Set-Cookie")
    assert ck.startswith("lc=%s;" % vtok) and "HttpOnly" in ck and \
        "SameSite=Lax" in ck
    # a link elsewhere is left alone
    r = hit(port, "/c/" + mt.url_token(key, "c", did, links[
        "https://elsewhere.example/"]), src)
    assert r.header("Location") == "https://elsewhere.example/"
    q = urllib.parse.urlencode
    r = hit(port, "/v.gif?" + q({"lc": vtok, "u": "https://www.site.example/"
                                 "pricing?plan=pro", "r": "https://www."
                                 "search.example/?q=acme"}), src)
    assert r.status == 200 and r.body.startswith(b"GIF89a")
    # the no-JavaScript pixel: the cookie, and the page as the referrer
    hit(port, "/v.gif", src, headers={
        "Cookie": "other=1; lc=%s" % vtok,
        "Referer": "https://www.site.example/blog/post"})
    # no token, a bad one, a page that is not http(s): nothing kept
    hit(port, "/v.gif?" + q({"u": "https://www.site.example/x"}), src)
    hit(port, "/v.gif?" + q({"lc": mt.tamper(vtok), "u":
                             "https://www.site.example/x"}), src)
    hit(port, "/v.gif?" + q({"lc": mt.url_token(key, "o", did), "u":
                             "https://www.site.example/x"}), src)
    hit(port, "/v.gif?" + q({"lc": vtok, "u": "javascript:alert(1)"}), src)
    want = [("hot_page", "https://www.site.example/pricing?plan=pro",
             "https://www.search.example/?q=acme", "pricing"),
            ("visit", "https://www.site.example/blog/post", "", "")]
    got = wait_until(lambda: (lambda e: e if len(e) == 2 else None)([
        tuple(x.split("|")) for x in d.psql(
            "SELECT type, data->>'url', coalesce(data->>'referrer', ''), "
            "coalesce(data->>'page', '') FROM events WHERE delivery_id = %d "
            "AND type IN ('visit', 'hot_page') ORDER BY id" % did)
        .splitlines()]), 10, what="two visits")
    assert got == want
    time.sleep(0.5)
    assert one(d, "SELECT count(*) FROM events WHERE delivery_id = %d AND "
               "type IN ('visit', 'hot_page')" % did) == "2"
    # scored: two clicks (10 each) and the pricing page (7)
    wait_until(lambda: one(d, "SELECT score FROM leads WHERE id = %s" %
                           lead) == "27", 10, what="visits scored")


def test_forward_to_a_friend(trk):
    """/fw/TOKEN: a form; a post sends the friend one copy through the
    sender (not subscribing them), records a forward on the reader's
    message; suppressed addresses get nothing; posts are rate-limited."""
    d, key = trk, trk.key
    lead = one(d, "INSERT INTO leads (email, first_name) VALUES "
               "('reader@example.com', 'Rita') RETURNING id")
    cid = one(d, "INSERT INTO campaigns (name, status) VALUES ('fwd', "
              "'done') ON CONFLICT (name) DO UPDATE SET status = 'done' "
              "RETURNING id")
    did = int(one(d, "INSERT INTO deliveries (campaign_id, lead_id, email, "
                  "status, sent_at) VALUES (%s, %s, 'reader@example.com', "
                  "'sent', now() - interval '1 hour') RETURNING id" %
                  (cid, lead)))
    ftok = mt.url_token(key, "f", did)
    r = d.get("/fw/" + ftok)
    assert r.status == 200 and "<form" in r.text and 'name="to"' in r.text
    assert d.get("/fw/" + mt.tamper(ftok)).status == 404
    assert d.get("/fw/" + mt.url_token(key, "u", did)).status == 404

    def post(to):
        return d.request("POST", "/fw/" + ftok, body=("to=" + to).encode(),
                         headers={"Content-Type":
                                  "application/x-www-form-urlencoded"})
    assert post("not-an-address").status == 400
    d.psql("INSERT INTO suppressions (email, reason) VALUES "
           "('blocked@example.org', 'complaint')")
    r = post("friend%40example.org")
    assert r.status == 200 and "on its way" in r.text, r
    r = post("blocked%40example.org")
    assert r.status == 200          # says nothing about why
    r = post("third%40example.org")
    assert r.status == 429          # forward_rate = 2/h per message
    wait_until(lambda: one(d, "SELECT count(*) FROM events WHERE type = "
                       "'forward' AND delivery_id = %d" % did) == "1", 10,
               what="the forward event")

    def sent_to(addr):
        return d.psql("SELECT count(*) FROM deliveries WHERE email = '%s' "
                      "AND status = 'sent'" % addr)
    wait_until(lambda: sent_to("friend@example.org") == "1", 20,
               what="the copy sent")
    assert sent_to("blocked@example.org") == "0"
    assert sent_to("third@example.org") == "0"
    # the friend is subscribed to nothing, and is not a lead
    assert one(d, "SELECT count(*) FROM leads WHERE email = "
               "'friend@example.org'") == "0"
    # the report counts it
    r = d.get("/api/v1/reports/campaigns?campaigns=fwd", token=d.token)
    assert r.json()["campaigns"][0]["forwards"] == 1
    assert r.json()["campaigns"][0]["recipients"] == 1     # not the copy


def test_trusted_proxy(trk):
    """X-Forwarded-For counts only from track.trusted_proxies."""
    d, key, port = trk, trk.key, trk.tport
    did, _ = make_campaign(d, "c9", [("https://p.example.com/", "")])
    otok = mt.url_token(key, "o", did)
    hit(port, "/o/%s.gif" % otok, "127.0.0.20",
        headers={"X-Forwarded-For": "203.0.113.5, 127.0.0.9"})
    hit(port, "/o/%s.gif" % otok, "127.0.0.21",
        headers={"X-Forwarded-For": "127.0.0.9"})
    got = wait_until(lambda: (lambda e: e if len(e) == 2 else None)(
        events_of(d, did, "host(ip), class")), 10, what="two opens")
    assert sorted(got) == [("127.0.0.21", "human"), ("127.0.0.9", "machine")]


def raw_exchange(port, src, data, want, heads=(), timeout=5):
    """Send data on one connection from src; read until want answers have
    come (or the peer closes); answers numbered in heads (from 0) are to
    HEAD requests. Returns ([(status, headers, body)], closed)."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src, 0))
    buf, out, closed = b"", [], False
    try:
        s.sendall(data)
        while len(out) < want:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return out, True
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            hdrs = {k.lower(): v.strip() for k, v in
                    (l.split(":", 1) for l in lines[1:])}
            if len(out) in heads:
                n = 0
            elif "content-length" in hdrs:
                n = int(hdrs["content-length"])
            else:       # HTTP/1.0: the body ends with the connection
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                out.append((int(lines[0].split()[1]), hdrs, buf))
                return out, True
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    return out, True
                buf += chunk
            out.append((int(lines[0].split()[1]), hdrs, buf[:n]))
            buf = buf[n:]
        s.settimeout(0.5)
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        return out, closed
    finally:
        s.close()


def test_connections_reused_and_closed(trk):
    """Replies are written as soon as they are made: keep-alive,
    pipelined, HEAD, HTTP/1.0 and Connection: close requests on one
    connection each get their whole answer, in order, and the connection
    stays open or closes as HTTP says; every hit is stored once."""
    d, key, port = trk, trk.key, trk.tport
    did, links = make_campaign(d, "c10", [("https://k.example.com/", "")])
    otok = mt.url_token(key, "o", did)
    ctok = mt.url_token(key, "c", did, links["https://k.example.com/"])

    def req(path, method="GET", version="1.1", extra=""):
        return ("%s %s HTTP/%s\r\nHost: t\r\nUser-Agent: %s\r\n%s\r\n" % (
            method, path, version, BROWSER, extra)).encode()

    # three pipelined requests, then the connection stays open
    out, closed = raw_exchange(port, "127.0.0.31", req("/o/%s.gif" % otok) +
                               req("/c/" + ctok) + req("/o/%s.gif" % otok), 3)
    assert [o[0] for o in out] == [200, 302, 200] and not closed, out
    assert out[0][2].startswith(b"GIF89a") and len(out[2][2]) == 43
    assert out[1][1]["location"] == "https://k.example.com/"
    # a link not yet in memory (answered on a later loop turn), then a pixel
    lid = one(d, "INSERT INTO campaign_links (campaign_id, url) SELECT "
              "campaign_id, 'https://k.example.com/late' FROM deliveries "
              "WHERE id = %d RETURNING id" % did)
    out, closed = raw_exchange(port, "127.0.0.32", req(
        "/c/" + mt.url_token(key, "c", did, int(lid))) +
        req("/o/%s.gif" % otok), 2)
    assert [o[0] for o in out] == [302, 200] and not closed, out
    assert out[0][1]["location"] == "https://k.example.com/late"
    # HEAD: headers only; HTTP/1.0 without keep-alive: closed after it
    out, closed = raw_exchange(port, "127.0.0.33", req(
        "/o/%s.gif" % otok, "HEAD") + req("/o/%s.gif" % otok, version="1.0"),
        2, heads=(0,))
    assert [o[0] for o in out] == [200, 200] and closed, out
    assert out[1][2].startswith(b"GIF89a")
    # Connection: close on HTTP/1.1: answered, then closed
    out, closed = raw_exchange(port, "127.0.0.34", req(
        "/o/%s.gif" % otok, extra="Connection: close\r\n"), 1)
    assert [o[0] for o in out] == [200] and closed, out
    # a bad request among good ones: answered 404, the rest still served
    out, closed = raw_exchange(port, "127.0.0.35", req("/o/nothing.gif") +
                               req("/o/%s.gif" % otok), 2)
    assert [o[0] for o in out] == [404, 200] and not closed, out
    wait_until(lambda: len(events_of(d, did)) == 9, 10, what="nine hits")
    time.sleep(0.3)
    assert len(events_of(d, did)) == 9
    assert one(d, "SELECT count(DISTINCT hit_id) FROM events WHERE "
               "delivery_id = %d" % did) == "9"


def test_parents_deleted(trk):
    """events keep no foreign keys (the writers read the parents in the
    same statement): an administrator's DELETE of a delivery, a campaign or
    a link still leaves the events, with those columns NULL, as the keys'
    ON DELETE SET NULL did; a lead's deletion still takes its events, as
    the key's ON DELETE CASCADE did (a statement trigger since 017)."""
    d, key, port = trk, trk.key, trk.tport
    did, links = make_campaign(d, "c11", [("https://z.example.com/", "")])
    lid = links["https://z.example.com/"]
    hit(port, "/o/%s.gif" % mt.url_token(key, "o", did), "127.0.0.41")
    hit(port, "/c/" + mt.url_token(key, "c", did, lid), "127.0.0.41")
    wait_until(lambda: len(events_of(d, did)) == 2, 10, what="two hits")
    cid = one(d, "SELECT campaign_id FROM deliveries WHERE id = %d" % did)
    lead = one(d, "SELECT lead_id FROM deliveries WHERE id = %d" % did)
    # the link alone, then the delivery, then the campaign
    one(d, "DELETE FROM campaign_links WHERE id = %d" % lid)
    assert one(d, "SELECT count(*) FROM events WHERE delivery_id = %d AND "
               "link_id IS NOT NULL" % did) == "0"
    one(d, "DELETE FROM deliveries WHERE id = %d" % did)
    assert one(d, "SELECT count(*) FROM events WHERE delivery_id = %d" %
               did) == "0"
    assert one(d, "SELECT count(*) FROM events WHERE campaign_id = %s" %
               cid) == "2"
    one(d, "DELETE FROM campaigns WHERE id = %s" % cid)
    assert one(d, "SELECT count(*) FROM events WHERE lead_id = %s AND "
               "type IN ('open', 'click') AND delivery_id IS NULL AND "
               "campaign_id IS NULL AND link_id IS NULL" % lead) == "2"
    one(d, "DELETE FROM leads WHERE id = %s" % lead)
    assert one(d, "SELECT count(*) FROM events WHERE lead_id = %s" %
               lead) == "0"
