"""
The routing engine through the real daemon: offers by round-robin (stride
scheduling) with accept, reject and time-out chains, the broadcast round
and the catch-all owner, broadcast first-claim under parallel accepts,
the rep's signed lead card (GET shows, POST answers), the sweeper, a crash
with offers open, two daemons on one database, and the reps API (adding a
rep, availability, the rep's own token).

Offer windows are at least 10 s; tests make an offer time out by moving
its deadline into the past in the database (the daemon keeps deadlines
there, not in timers), which is what the passing of time does.
Offers reach reps by email through the maildir transport.
"""
import concurrent.futures
import json
import os
import re
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
	max_offers = 2
	catch_all = "cat"
}
team "bc" {
	method = broadcast
	offer_window = 5m
	catch_all = "cat"
}
team "solo" {
	method = round_robin
	offer_window = 5m
	max_offers = 3
	catch_all = "cat"
}
rep "ann" { email = "ann@reps.example"; teams = { "rr", "bc" } }
rep "bob" { email = "bob@reps.example"; weight = 2; teams = { "rr", "bc" } }
rep "dan" { email = "dan@reps.example"; teams = { "rr", "bc" } }
rep "eve" { email = "eve@reps.example"; teams = { "solo" } }
rep "cat" { name = "Cat Catchall"; email = "cat@reps.example" }
team "fair" {
	method = round_robin
	catch_all = "cat"
}
rep "w1" { email = "w1@reps.example"; capacity = 0; teams = { "fair" } }
rep "w2" { email = "w2@reps.example"; weight = 2; capacity = 0; teams = { "fair" } }
rep "w3" { email = "w3@reps.example"; capacity = 0; teams = { "fair" } }
rule "broadcast" { when = "source == 'bc'"; team = "bc" }
rule "solo" { when = "source == 'solo'"; team = "solo" }
rule "fair" { when = "source == 'fair'"; team = "fair" }
rule "default" { team = "rr" }
"""


def setup_dir(tmp, routing=ROUTING):
    """Templates (pages, the offer email), notifications, routing.conf."""
    mt.routing_dir(tmp, routing)


def route_daemon(tmp, name="rt", database="embedded", routing=ROUTING):
    setup_dir(tmp, routing)
    outbox = tmp.sub("outbox-" + name, owner_daemon=True)
    d = harness.Daemon(tmp, name=name, database=database, extra_lines=[
        "mail {", '\ttransport = "maildir:%s"' % outbox, "}"])
    d.outbox = mt.Maildir(outbox)
    return d


@pytest.fixture(scope="module")
def rt():
    tmp = harness.TempDir("route")
    d = route_daemon(tmp)
    try:
        d.start(timeout=30)
        d.key = mt.url_key(d)
        yield d
    finally:
        d.cleanup()
        tmp.cleanup()


def api(d, method, path, body=None, token=None, expect=None):
    token = d.token if token is None else token
    if method == "GET":
        r = d.get(path, token=token)
    else:
        r = d.post(path, body=json.dumps(body or {}).encode(), token=token)
    if expect is not None:
        assert r.status == expect, (r, r.text)
    return r


_seq = [0]


def capture(d, source="web", **fields):
    _seq[0] += 1
    lead = {"email": "lead%d.%d@example.com" % (_seq[0], os.getpid()),
            "first_name": "Lee", "last_name": "Number%d" % _seq[0],
            "source": source}
    lead.update(fields)
    r = api(d, "POST", "/api/v1/leads", lead)
    assert r.status in (200, 201), (r, r.text)
    return r.json()["lead"]["id"]


def offers(d, lead):
    """[(id, rep, kind, status)] of a lead's offers, in order."""
    out = d.psql("SELECT id, rep_id, kind, status FROM offers WHERE "
                 "lead_id = %d ORDER BY id" % lead)
    return [(int(l.split("|")[0]),) + tuple(l.split("|")[1:])
            for l in out.splitlines()]


def pending(d, lead):
    return [o for o in offers(d, lead) if o[3] == "pending"]


def wait_pending(d, lead, n=1, timeout=10):
    return wait_until(lambda: len(pending(d, lead)) == n and
                      pending(d, lead), timeout,
                      what="lead %d: %d pending offers" % (lead, n))


def lead_row(d, lead, cols="owner, status"):
    return tuple(d.psql("SELECT %s FROM leads WHERE id = %d" %
                        (cols, lead)).split("|"))


def expire(d, offer_id):
    """Time passes: the offer's window closes."""
    d.psql("UPDATE offers SET deadline = now() - interval '1 second' "
           "WHERE id = %d" % offer_id)


def event_types(d, lead):
    return d.psql("SELECT type FROM events WHERE lead_id = %d ORDER BY id"
                  % lead).split()


def mails_to(d, addr):
    return [m for m in d.outbox.messages() if addr in (m[2]["To"] or "")]


def card_token(d, offer_id, rep):
    num = int(d.psql("SELECT num FROM reps WHERE id = '%s'" % rep))
    return mt.url_token(d.key, "r", offer_id, num)


# ---- offers, answers, chains --------------------------------------------------

def test_offer_accept_by_api(rt):
    lead = capture(rt, company="Acme")
    (oid, rep, kind, st), = wait_pending(rt, lead)
    assert kind == "single"
    assert lead_row(rt, lead) == ("", "offered")
    # the rep is told by email, with the signed card link
    msgs = wait_until(lambda: mails_to(rt, "%s@reps.example" % rep), 10,
                      what="offer email")
    body = msgs[-1][1].decode(errors="replace")
    assert "/r/" + card_token(rt, oid, rep) in body.replace("=\r\n", "")
    r = api(rt, "POST", "/api/v1/offers/%d/accept" % oid, expect=200)
    assert r.json()["lead"]["owner"] == rep
    assert lead_row(rt, lead) == (rep, "assigned")
    assert event_types(rt, lead)[:4] == ["captured", "routed", "offered",
                                         "accepted"]
    # answered once: a second answer is refused and changes nothing
    api(rt, "POST", "/api/v1/offers/%d/reject" % oid, expect=409)
    api(rt, "POST", "/api/v1/offers/999999/accept", expect=404)
    assert lead_row(rt, lead) == (rep, "assigned")


def test_reject_expire_broadcast_catch_all(rt):
    lead = capture(rt)
    (o1, rep1, _, _), = wait_pending(rt, lead)
    api(rt, "POST", "/api/v1/offers/%d/reject" % o1, expect=200)
    (o2, rep2, kind2, _), = wait_until(
        lambda: [o for o in pending(rt, lead) if o[0] != o1], 10,
        what="second offer")
    assert rep2 != rep1 and kind2 == "single"
    expire(rt, o2)
    # max_offers = 2 reached: a broadcast round to the one rep left
    bc = wait_until(lambda: [o for o in pending(rt, lead)
                             if o[2] == "broadcast"], 10, what="broadcast")
    assert [o[1] for o in bc] == [r for r in ("ann", "bob", "dan")
                                  if r not in (rep1, rep2)]
    expire(rt, bc[0][0])
    wait_until(lambda: lead_row(rt, lead) == ("cat", "assigned"), 10,
               what="catch-all owner")
    types = event_types(rt, lead)
    assert types.count("rejected") == 1 and types.count("expired") == 2
    assert types[-1] == "assigned"
    # nobody was asked twice
    reps = [o[1] for o in offers(rt, lead)]
    assert len(reps) == len(set(reps)) == 3


def test_card_get_shows_post_answers(rt):
    lead = capture(rt, company="Cardco")
    (oid, rep, _, _), = wait_pending(rt, lead)
    tok = card_token(rt, oid, rep)
    r = rt.get("/r/" + tok)
    assert r.status == 200 and "Cardco" in r.text
    assert 'action="/r/%s/accept"' % tok in r.text
    # a GET (a mail scanner) changes nothing
    rt.get("/r/%s/accept" % tok)
    assert lead_row(rt, lead) == ("", "offered")
    # tampered, or another rep's token for this offer: unknown
    assert rt.get("/r/" + mt.tamper(tok)).status == 404
    other = "ann" if rep != "ann" else "bob"
    r = rt.request("POST", "/r/%s/accept" % card_token(rt, oid, other))
    assert r.status == 404
    r = rt.request("POST", "/r/%s/accept" % tok)
    assert r.status == 200 and "yours" in r.text
    assert lead_row(rt, lead) == (rep, "assigned")
    r = rt.get("/r/" + tok)
    assert r.status == 200 and 'action="/r/' not in r.text


def test_broadcast_first_claim(rt):
    lead = capture(rt, source="bc")
    bc = wait_pending(rt, lead, n=3)
    assert sorted(o[1] for o in bc) == ["ann", "bob", "dan"]
    assert {o[2] for o in bc} == {"broadcast"}

    def accept(o):
        return api(rt, "POST", "/api/v1/offers/%d/accept" % o[0]).status
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        codes = list(ex.map(accept, bc))
    assert sorted(codes) == [200, 409, 409], codes
    winner = bc[codes.index(200)][1]
    assert lead_row(rt, lead) == (winner, "assigned")
    sts = sorted(o[3] for o in offers(rt, lead))
    assert sts == ["accepted", "withdrawn", "withdrawn"]


def offer_counts(d, team):
    return dict((r, int(n)) for r, n in (l.split("|") for l in d.psql(
        "SELECT rep_id, count(*) FROM offers WHERE team = '%s' AND kind = "
        "'single' GROUP BY 1" % team).splitlines()))


def test_round_robin_weights(rt):
    """w1 weight 1, w2 weight 2, w3 weight 1: 40 leads land 10/20/10
    (stride scheduling), and no rep gets two in a row but w2."""
    leads = [capture(rt, source="fair") for _ in range(40)]
    order = [wait_pending(rt, lead)[0][1] for lead in leads]
    assert offer_counts(rt, "fair") == {"w1": 10, "w2": 20, "w3": 10}
    for a, b in zip(order, order[1:]):
        assert a != b or a == "w2", order


def test_off_duty_rep_skipped(rt):
    api(rt, "POST", "/api/v1/reps/eve/availability", {"available": False},
        expect=200)
    try:
        lead = capture(rt, source="solo")
        # eve is the team's only member: nobody eligible -> the catch-all
        wait_until(lambda: lead_row(rt, lead) == ("cat", "assigned"), 10,
                   what="catch-all while eve is away")
        assert offers(rt, lead) == []
    finally:
        api(rt, "POST", "/api/v1/reps/eve/availability", {"available": True},
            expect=200)
    lead = capture(rt, source="solo")
    (_, rep, _, _), = wait_pending(rt, lead)
    assert rep == "eve"


def test_sweeper_routes_a_forgotten_lead(rt):
    """A lead in routing with no owner, queue, offer or due time (as if a
    node died between two statements) is found and routed."""
    lead = int(rt.psql(
        "INSERT INTO leads (email, status, updated_at) VALUES "
        "('forgotten@example.com', 'routing', now() - interval '1 minute') "
        "RETURNING id").splitlines()[0])
    wait_pending(rt, lead, timeout=25)
    assert "leadcast_routing_total{what=\"swept\"}" in rt.get(
        "/metrics").text


# ---- the reps API -----------------------------------------------------------------

def test_reps_api(rt):
    r = api(rt, "GET", "/api/v1/reps", expect=200)
    ids = [x["id"] for x in r.json()["reps"]]
    assert ids[:5] == ["ann", "bob", "dan", "eve", "cat"]
    # bad input names the field and stores nothing
    r = api(rt, "POST", "/api/v1/reps", {"id": "zed", "email": "z@x.example",
                                         "weight": 500}, expect=400)
    assert r.json()["error"]["field"] == "weight"
    r = api(rt, "POST", "/api/v1/reps", {"id": "zed", "email": "z@x.example",
                                         "teams": ["nope"]}, expect=400)
    assert r.json()["error"]["field"] == "teams"
    r = api(rt, "POST", "/api/v1/reps", {"id": "bad id!"}, expect=400)
    assert r.json()["error"]["field"] == "id"
    api(rt, "POST", "/api/v1/reps", {"id": "ann", "email": "a@x.example"},
        expect=409)
    assert rt.psql("SELECT count(*) FROM reps WHERE id = 'zed'") == "0"
    # a good one joins a team and gets leads
    api(rt, "POST", "/api/v1/reps", {"id": "zed", "name": "Zed",
                                     "email": "zed@reps.example",
                                     "teams": ["solo"]}, expect=201)
    wait_until(lambda: "zed" in [x["id"] for x in api(
        rt, "GET", "/api/v1/reps").json()["reps"]], 5, what="zed listed")
    got = set()
    for _ in range(4):
        lead = capture(rt, source="solo")
        got.add(wait_pending(rt, lead)[0][1])
    assert got == {"eve", "zed"}
    # the rep's own token: its skills yes, its weight no; others' no
    tok = api(rt, "GET", "/api/v1/reps/zed/token", expect=200).json()["token"]
    api(rt, "POST", "/api/v1/reps/zed", {"skills": ["enterprise"],
                                         "territories": ["US"]}, token=tok,
        expect=200)
    r = api(rt, "POST", "/api/v1/reps/zed", {"weight": 50}, token=tok,
            expect=403)
    assert r.json()["error"]["field"] == "weight"
    api(rt, "POST", "/api/v1/reps/eve", {"skills": ["x"]}, token=tok,
        expect=401)
    api(rt, "GET", "/api/v1/reps/zed/token", token=tok, expect=403)
    api(rt, "POST", "/api/v1/reps/zed", {"skills": []},
        token=mt.tamper(tok), expect=401)
    r = wait_until(lambda: [x for x in api(rt, "GET", "/api/v1/reps").json()
                            ["reps"] if x["id"] == "zed" and x["skills"]],
                   5, what="zed's skills")
    assert r[0]["skills"] == ["enterprise"]


# ---- durability: crash, two daemons ---------------------------------------------

def test_crash_with_offers_open(tmp):
    """kill -9 with offers open; after the restart their windows still close
    (the deadlines are in the database) and the leads move on."""
    d = route_daemon(tmp, name="crash")
    d.start(timeout=30)
    leads = [capture(d) for _ in range(5)]
    first = {lead: wait_pending(d, lead)[0] for lead in leads}
    d.proc.kill()                                   # kill -9
    d.proc.wait(10)
    d.start(timeout=30)
    for o in first.values():
        expire(d, o[0])
    for lead, o in first.items():
        (_, rep, _, _), = wait_until(
            lambda: [p for p in pending(d, lead) if p[0] != o[0]], 15,
            what="lead %d offered again" % lead)
        assert rep != o[1]
        assert [x[3] for x in offers(d, lead)][0] == "expired"
    d.stop()


def test_two_daemons_one_database(tmp, pg_external):
    """Leads captured on both nodes at once: each gets exactly one offer,
    and the round-robin stays fair across the nodes (1:2:1)."""
    db = pg_external.create_db()
    a = route_daemon(tmp, name="na", database=pg_external.uri(db))
    b = route_daemon(tmp, name="nb", database=pg_external.uri(db))
    for d in (a, b):
        d.top["admin_token"] = "t" * 32
        d.write_config()
        d.psql = lambda sql, **kw: pg_external.psql(sql, db=db)
    a.start(timeout=30)
    b.start(timeout=30)

    def cap(i):
        return capture(a if i % 2 else b, source="fair")
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        leads = list(ex.map(cap, range(80)))
    try:
        for lead in leads:
            wait_pending(a, lead)
    except AssertionError:
        print(a.log()[-3000:], b.log()[-3000:])
        print(a.psql("SELECT id, status, owner, route_at, team FROM leads "
                     "WHERE NOT EXISTS (SELECT 1 FROM offers WHERE lead_id "
                     "= leads.id)"))
        raise
    rows = a.psql("SELECT lead_id, count(*) FROM offers GROUP BY 1")
    assert len(rows.splitlines()) == 80
    assert all(l.endswith("|1") for l in rows.splitlines()), rows
    assert offer_counts(a, "fair") == {"w1": 20, "w2": 40, "w3": 20}
    a.stop()
    b.stop()


# ---- configuration ------------------------------------------------------------------

def test_check_config_routing_errors(tmp):
    d = route_daemon(tmp, name="cc", routing=ROUTING.replace(
        'rule "default" { team = "rr" }', 'rule "default" { team = "nope" }'))
    out = harness.run([harness.LEADCAST, "-c", d.conf_path, "check-config"],
                      check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    line = harness.line_of(ROUTING, 'rule "default"')
    assert re.search(r"routing\.conf:%d:\d+: .*nope" % line, text), text
    os.unlink(os.path.join(tmp.path, "notifications", "offer.conf"))
    mt.write_file(os.path.join(tmp.path, "routing.conf"), ROUTING)
    out = harness.run([harness.LEADCAST, "-c", d.conf_path, "check-config"],
                      check=False)
    assert out.returncode != 0 and "offer" in out.stdout + out.stderr
