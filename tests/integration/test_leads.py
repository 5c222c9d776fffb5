"""
The lead API through the real daemon (daemon/leads.c): capture (create,
merge by email or by phone written another way, phone numbers to E.164
with default_country, score history kept, an owned lead never re-routed,
a lead captured before routing entering it when it comes back), bad input
naming its field and storing nothing, import with good and bad rows, the
lead with its events, offers and score history, the list with filters and
paging, behavior events (once, caps, bots, a threshold routing the lead,
another telling the owner), manual assignment, funnel status (recycled
goes back to routing), pull queues (10 parallel `next` calls from several
reps never get the same lead; claim; capacity; eligibility), the queue
listing, and the routing report on a known scenario.

One daemon (embedded PostgreSQL, maildir transport) serves the module;
each test keeps to its own sources and teams so that they do not see
each other's leads.
"""
import calendar
import concurrent.futures
import json
import os
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
team "hold" { method = manual }
team "order" { method = manual }
team "pool" { method = pull }
team "pool2" { method = pull }
team "pool3" { method = pull }
rep "ann" { email = "ann@reps.example"; teams = { "rr" } }
rep "bob" { email = "bob@reps.example"; teams = { "rr" } }
rep "cat" { email = "cat@reps.example" }
rep "p1" { email = "p1@reps.example"; teams = { "pool" }; capacity = 0 }
rep "p2" { email = "p2@reps.example"; teams = { "pool" }; capacity = 0 }
rep "p3" { email = "p3@reps.example"; teams = { "pool" }; capacity = 0;
	hours = { "mon 00:00-00:01" } }
rep "us" { email = "us@reps.example"; teams = { "pool2" };
	territories = { "US" } }
rep "any" { email = "any@reps.example"; teams = { "pool2" };
	territories = { "*" } }
rep "full" { email = "full@reps.example"; teams = { "pool3" };
	capacity = 1 }
rule "hold" { when = "source matches 'hold*'"; team = "hold" }
rule "order-hi" { when = "source == 'order-hi'"; team = "order";
	priority = 90 }
rule "order-lo" { when = "source == 'order-lo'"; team = "order";
	priority = 10 }
rule "pool" { when = "source == 'pool'"; team = "pool" }
rule "pool2" { when = "source == 'pool2'"; team = "pool2";
	require = { "territory" } }
rule "pool3" { when = "source == 'pool3'"; team = "pool3" }
rule "default" { team = "rr" }
"""

SCORING = """\
profile "director" { when = "title matches '*director*'"; points = 20 }
profile "big" { when = "company_size >= 1000"; points = 15 }
profile "vip" { when = "fields.vip == true"; points = 50 }
behavior "demo" { event = form; when = "event.form == 'demo'"; points = 30;
	repeat = once }
behavior "click" { event = click; points = 5; cap = 10; window = 7d }
behavior "visit" { event = visit; points = 2 }
decay { half_life = 30d; applies_to = behavior }
grade "hot" { min = 60 }
grade "warm" { min = 30 }
grade "cold" { min = 0 }
threshold "ready" { min = 60; action = route; team = "rr" }
threshold "warm" { min = 30; action = notify_owner }
"""


@pytest.fixture(scope="module")
def ld():
    tmp = harness.TempDir("leads")
    mt.routing_dir(tmp, ROUTING, SCORING)
    outbox = tmp.sub("outbox", owner_daemon=True)
    d = harness.Daemon(tmp, name="ld", top={"default_country": "US"},
                       extra_lines=["mail {", '\ttransport = "maildir:%s"' %
                                    outbox, "}"])
    d.outbox = mt.Maildir(outbox)
    try:
        d.start(timeout=30)
        yield d
    finally:
        d.cleanup()
        tmp.cleanup()


def api(d, method, path, body=None, expect=None, raw=None, timeout=10):
    if method == "GET":
        r = d.get(path, token=d.token, timeout=timeout)
    else:
        r = d.post(path, body=raw if raw is not None else
                   json.dumps(body if body is not None else {}).encode(),
                   token=d.token, timeout=timeout)
    if expect is not None:
        assert r.status == expect, (r, r.text)
    return r


_seq = [0]


def email():
    _seq[0] += 1
    return "lead%d.%d@example.com" % (_seq[0], os.getpid())


def capture(d, expect=201, **fields):
    fields.setdefault("source", "hold")
    if "email" not in fields and "phone" not in fields:
        fields["email"] = email()
    r = api(d, "POST", "/api/v1/leads", fields, expect=expect)
    return r.json()


def q1(d, sql):
    return d.psql(sql)


def lead_row(d, lead, cols="owner, status"):
    return tuple(d.psql("SELECT %s FROM leads WHERE id = %d" %
                        (cols, lead)).split("|"))


def nleads(d):
    return int(d.psql("SELECT count(*) FROM leads"))


def event_types(d, lead):
    return d.psql("SELECT type FROM events WHERE lead_id = %d ORDER BY id"
                  % lead).split()


def pending(d, lead):
    return d.psql("SELECT rep_id FROM offers WHERE lead_id = %d AND status = "
                  "'pending' ORDER BY id" % lead).split()


def mails_to(d, addr):
    return [m for m in d.outbox.messages() if addr in (m[2]["To"] or "")]


def err(r):
    return r.json()["error"]["field"]


# ---- capture -------------------------------------------------------------------

def test_capture_creates_and_merges(ld):
    e = email()
    doc = capture(ld, email=e, first_name="Ada", title="Sales Director",
                  fields={"plan": "pro"})
    lead = doc["lead"]
    assert doc["created"] is True
    assert lead["email"] == e and lead["score"] == 20
    assert lead["grade"] == "cold" and lead["source"] == "hold"
    lid = lead["id"]
    # the same person again (address in capitals): merged, filled in
    doc = capture(ld, expect=200, email=e.upper(), last_name="Lovelace",
                  company_size=5000, source="web", fields={"seats": 10})
    assert doc["created"] is False
    lead = doc["lead"]
    assert lead["id"] == lid
    assert (lead["first_name"], lead["last_name"]) == ("Ada", "Lovelace")
    assert lead["source"] == "hold"                 # the first source stays
    assert lead["fields"] == {"plan": "pro", "seats": 10}
    assert lead["score"] == 35 and lead["grade"] == "warm"
    # the history is kept: the first profile row and the delta
    rows = ld.psql("SELECT kind, points, reason FROM score_history WHERE "
                   "lead_id = %d ORDER BY id" % lid).splitlines()
    assert rows == ["profile|20|director +20",
                    "profile|15|director +20, big +15"]
    assert event_types(ld, lid)[:1] == ["captured"]
    assert "merged" in event_types(ld, lid)
    # unchanged profile: no new row
    capture(ld, expect=200, email=e)
    assert int(ld.psql("SELECT count(*) FROM score_history WHERE lead_id = "
                       "%d" % lid)) == 2


def test_phone_normalized_and_merged_by_phone(ld):
    doc = capture(ld, phone="(313) 555-0142", first_name="Pat")
    assert doc["created"] is True
    lid = doc["lead"]["id"]
    assert doc["lead"]["phone"] == "+13135550142"       # default_country US
    doc = capture(ld, expect=200, phone="+1 313.555.0142",
                  company="Phoneco")
    assert doc["lead"]["id"] == lid and doc["lead"]["company"] == "Phoneco"
    doc = capture(ld, expect=200, phone="011 1 313 555 0142")
    assert doc["lead"]["id"] == lid
    # another country's number in international form
    doc = capture(ld, phone="+44 (0)20 7946 0958")
    assert doc["lead"]["phone"] == "+442079460958"


def test_capture_bad_input(ld):
    before = nleads(ld)
    r = api(ld, "POST", "/api/v1/leads", raw=b'{"email": ', expect=400)
    assert "invalid JSON" in r.json()["error"]["message"]
    r = api(ld, "POST", "/api/v1/leads", {"first_name": "Nobody"},
            expect=400)
    assert err(r) == "email"
    r = api(ld, "POST", "/api/v1/leads", {"email": "not-an-address"},
            expect=400)
    assert err(r) == "email"
    r = api(ld, "POST", "/api/v1/leads", {"email": email(),
                                          "phone": "call me"}, expect=400)
    assert err(r) == "phone"
    assert "not a phone number" in r.json()["error"]["message"]
    r = api(ld, "POST", "/api/v1/leads", {"phone": "555-0142"}, expect=400)
    assert err(r) == "phone"
    r = api(ld, "POST", "/api/v1/leads", {"email": email(), "plan": "x"},
            expect=400)
    assert err(r) == "plan"
    r = api(ld, "POST", "/api/v1/leads", {"email": email(),
                                          "company_size": "lots"},
            expect=400)
    assert err(r) == "company_size"
    r = api(ld, "POST", "/api/v1/leads", {"email": email(),
                                          "fields": {"a b": 1}}, expect=400)
    assert err(r) == "fields.a b"
    assert nleads(ld) == before


def test_merged_owned_lead_not_rerouted(ld):
    lid = capture(ld)["lead"]["id"]
    e = ld.psql("SELECT email FROM leads WHERE id = %d" % lid)
    api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "ann"},
        expect=200)
    rnd = lead_row(ld, lid, "round")
    doc = capture(ld, expect=200, email=e, title="Director",
                  source="other")
    assert doc["lead"]["owner"] == "ann"
    assert doc["lead"]["status"] == "assigned"
    assert lead_row(ld, lid, "round") == rnd
    assert lead_row(ld, lid, "route_at, queue") == ("", "")
    assert pending(ld, lid) == []


def test_lead_from_before_routing_enters_it(ld):
    """A lead stored before routing (a subscriber, status new) that comes
    back through capture is routed; one that is lost stays lost."""
    e = email()
    lid = int(ld.psql("INSERT INTO leads (email, source) VALUES ('%s', "
                      "'hold-old') RETURNING id" % e).splitlines()[0])
    doc = capture(ld, expect=200, email=e)
    assert doc["lead"]["status"] == "routing"
    assert doc["lead"]["round"] == 1
    wait_until(lambda: lead_row(ld, lid, "queue") == ("hold",), 10,
               what="the lead in the hold queue")
    e2 = email()
    lost = int(ld.psql("INSERT INTO leads (email, source, status) VALUES "
                       "('%s', 'hold', 'lost') RETURNING id" %
                       e2).splitlines()[0])
    doc = capture(ld, expect=200, email=e2)
    assert doc["lead"]["status"] == "lost"
    assert lead_row(ld, lost, "route_at, round") == ("", "0")


# ---- import ----------------------------------------------------------------------

def test_import(ld):
    dup = email()
    rows = [{"email": email(), "first_name": "A"},
            {"email": "broken"},
            {"phone": "(313) 555-0199", "source": "hold-partner"},
            {"first_name": "no contact"},
            {"email": dup},
            {"email": email(), "unknown": 1},
            {"email": dup.upper(), "city": "Detroit"},
            "not an object"]
    r = api(ld, "POST", "/api/v1/leads/import", {"source": "hold-import",
                                                 "leads": rows}, expect=200)
    doc = r.json()
    assert (doc["created"], doc["merged"]) == (3, 1)
    assert [(e["row"], e["field"]) for e in doc["errors"]] == [
        (1, "email"), (3, "email"), (5, "unknown"), (7, None)]
    assert ld.psql("SELECT source, city FROM leads WHERE lower(email) = "
                   "lower('%s')" % dup) == "hold-import|Detroit"
    assert ld.psql("SELECT source FROM leads WHERE phone = "
                   "'+13135550199'") == "hold-partner"
    # a source is required, and at most 1000 rows
    before = nleads(ld)
    r = api(ld, "POST", "/api/v1/leads/import", {"leads": rows[:1]},
            expect=400)
    assert err(r) == "source"
    r = api(ld, "POST", "/api/v1/leads/import", {"source": "  ",
                                                 "leads": rows[:1]},
            expect=400)
    assert err(r) == "source"
    r = api(ld, "POST", "/api/v1/leads/import", {
        "source": "x", "leads": [{"email": "a%d@x.example" % i}
                                 for i in range(1001)]}, expect=400)
    assert err(r) == "leads"
    r = api(ld, "POST", "/api/v1/leads/import", {"source": "x", "leads": [],
                                                 "list": "y"}, expect=400)
    assert err(r) == "list"
    assert nleads(ld) == before


def test_import_thousand_rows(ld):
    rows = [{"email": "bulk%d.%d@example.com" % (i, os.getpid())}
            for i in range(1000)]
    r = api(ld, "POST", "/api/v1/leads/import", {"source": "hold-bulk",
                                                 "leads": rows}, expect=200,
            timeout=60)
    assert r.json() == {"created": 1000, "merged": 0, "errors": []}
    assert ld.psql("SELECT count(*) FROM leads WHERE source = "
                   "'hold-bulk'") == "1000"


# ---- reading leads -----------------------------------------------------------------

def test_get_lead(ld):
    lid = capture(ld, title="Director")["lead"]["id"]
    api(ld, "POST", "/api/v1/events", {"lead": lid, "type": "visit",
                                       "url": "/pricing"}, expect=201)
    r = api(ld, "GET", "/api/v1/leads/%d" % lid, expect=200)
    doc = r.json()
    assert doc["lead"]["id"] == lid and doc["lead"]["score"] == 22
    assert doc["lead"]["grade"] == "cold"
    types = [e["type"] for e in doc["events"]]
    assert types[0] == "captured" and "visit" in types
    visit = [e for e in doc["events"] if e["type"] == "visit"][0]
    assert visit["data"] == {"url": "/pricing"}
    assert set(visit) == {"id", "type", "created_at", "data"}
    sh = doc["score_history"]
    assert [(h["kind"], h["rule"], h["points"]) for h in sh] == [
        ("profile", None, 20), ("behavior", "visit", 2)]
    assert all(h["earned_at"] and h["reason"] for h in sh)
    assert doc["offers"] == []
    r = api(ld, "GET", "/api/v1/leads/99999999", expect=404)
    r = api(ld, "GET", "/api/v1/leads/abc", expect=400)
    assert err(r) == "id"
    r = api(ld, "GET", "/api/v1/leads/12x", expect=400)
    assert err(r) == "id"


def test_get_lead_with_offers(ld):
    lid = capture(ld, source="web")["lead"]["id"]
    wait_until(lambda: pending(ld, lid), 10, what="an offer")
    doc = api(ld, "GET", "/api/v1/leads/%d" % lid, expect=200).json()
    (o,) = doc["offers"]
    assert o["rep"] in ("ann", "bob") and o["team"] == "rr"
    assert o["kind"] == "single" and o["status"] == "pending"
    assert o["deadline"] and o["answered_at"] is None
    # settle it, so that it does not linger for other tests
    api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "cat"},
        expect=200)


def test_list_filters_and_paging(ld):
    tag = "hold-list-%d" % os.getpid()
    ids = [capture(ld, source=tag)["lead"]["id"] for _ in range(5)]
    got, after, pages = [], None, 0
    while True:
        path = "/api/v1/leads?source=%s&limit=2" % tag
        if after:
            path += "&after=%d" % after
        doc = api(ld, "GET", path, expect=200).json()
        got += [l["id"] for l in doc["leads"]]
        assert all("grade" in l for l in doc["leads"])
        pages += 1
        after = doc["next"]
        if after is None:
            break
    assert got == ids and pages == 3
    wait_until(lambda: [l["id"] for l in api(
        ld, "GET", "/api/v1/leads?source=%s&team=hold" % tag).json()
        ["leads"]] == ids, 10, what="all in team hold")
    api(ld, "POST", "/api/v1/leads/%d/assign" % ids[1], {"rep": "bob"},
        expect=200)
    doc = api(ld, "GET", "/api/v1/leads?source=%s&owner=bob" % tag,
              expect=200).json()
    assert [l["id"] for l in doc["leads"]] == [ids[1]]
    doc = api(ld, "GET", "/api/v1/leads?source=%s&status=assigned" % tag,
              expect=200).json()
    assert [l["id"] for l in doc["leads"]] == [ids[1]]
    assert doc["next"] is None
    doc = api(ld, "GET", "/api/v1/leads?source=%s&status=routing&limit=10"
              % tag, expect=200).json()
    assert [l["id"] for l in doc["leads"]] == [i for i in ids if i != ids[1]]
    for q, field in (("status=bogus", "status"), ("limit=0", "limit"),
                     ("limit=501", "limit"), ("limit=x", "limit"),
                     ("after=-1", "after"), ("color=red", "color")):
        r = api(ld, "GET", "/api/v1/leads?" + q, expect=400)
        assert err(r) == field, q


# ---- events and scoring --------------------------------------------------------------

def event(d, expect=201, **body):
    return api(d, "POST", "/api/v1/events", body, expect=expect).json()


def test_events_scoring(ld):
    e = email()
    doc = capture(ld, email=e, phone="313 555 0177")
    lid = doc["lead"]["id"]
    r = event(ld, lead=lid, type="form", form="demo")
    assert r["score"]["before"] == 0 and r["score"]["after"] == 30
    (ch,) = r["score"]["changes"]
    assert ch["rule"] == "demo" and ch["points"] == 30 and ch["reason"]
    assert r["event"]["type"] == "form" and r["event"]["data"] == {
        "form": "demo"}
    assert r["lead"]["score"] == 30 and r["lead"]["grade"] == "warm"
    # once: a second demo request scores nothing (found by email)
    r = event(ld, email=e.upper(), type="form", form="demo")
    assert r["score"]["changes"] == [] and r["score"]["after"] == 30
    # cap 10 by 5: two clicks count, the third does not (found by phone)
    got = [event(ld, phone="(313) 555-0177", type="click")["score"]
           for _ in range(3)]
    assert [s["after"] for s in got] == [35, 40, 40]
    # a bot scores nothing but is recorded
    r = event(ld, lead=lid, type="visit", bot=True)
    assert r["score"]["changes"] == [] and r["event"]["data"]["bot"] is True
    assert int(ld.psql("SELECT score FROM leads WHERE id = %d" % lid)) == 40
    assert ld.psql("SELECT count(*) FROM events WHERE lead_id = %d AND type "
                   "IN ('form', 'click', 'visit')" % lid) == "6"
    # parallel events on one lead: once is once, the cap holds
    lid2 = capture(ld)["lead"]["id"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda _: event(ld, lead=lid2, type="form", form="demo"),
                    range(6)))
        list(ex.map(lambda _: event(ld, lead=lid2, type="click"), range(6)))
    assert ld.psql("SELECT score FROM leads WHERE id = %d" % lid2) == "40"
    assert ld.psql("SELECT string_agg(rule || ':' || points, ',' ORDER BY "
                   "id) FROM score_history WHERE lead_id = %d" % lid2) == \
        "demo:30,click:5,click:5"
    # an unknown type scores nothing but is kept
    r = event(ld, lead=lid2, type="webinar.joined", topic="pricing")
    assert r["score"]["changes"] == []


def test_events_bad_input(ld):
    lid = capture(ld)["lead"]["id"]
    n = int(ld.psql("SELECT count(*) FROM events"))
    for body, code, field in (
            ({"type": "visit"}, 400, "lead"),
            ({"lead": "x1", "type": "visit"}, 400, "lead"),
            ({"lead": lid}, 400, "type"),
            ({"lead": lid, "type": "a b"}, 400, "type"),
            ({"lead": lid, "type": "x" * 65}, 400, "type"),
            ({"lead": lid, "type": "visit", "url": ["x"]}, 400, "url"),
            ({"lead": lid, "type": "visit", "url": "x" * 1025}, 400, "url"),
            ({"lead": lid, "type": "visit", "bot": "yes"}, 400, "bot"),
            ({"lead": lid, "type": "visit", "bad key": 1}, 400, "bad key"),
            ({"phone": "nope", "type": "visit"}, 400, "phone"),
            ({"lead": 99999999, "type": "visit"}, 404, "lead"),
            ({"email": "nobody@nowhere.example", "type": "visit"}, 404,
             "lead")):
        r = api(ld, "POST", "/api/v1/events", body, expect=code)
        assert err(r) == field, body
    many = {"lead": lid, "type": "visit"}
    many.update(("k%d" % i, i) for i in range(33))
    r = api(ld, "POST", "/api/v1/events", many, expect=400)
    assert "32" in r.json()["error"]["message"]
    assert int(ld.psql("SELECT count(*) FROM events")) == n


def test_threshold_routes_the_lead(ld):
    """A lead waiting in a manual queue (no owner) crosses 'ready' (60):
    it goes to team rr, whose reps get an offer."""
    lid = capture(ld, title="Director")["lead"]["id"]
    wait_until(lambda: lead_row(ld, lid, "queue") == ("hold",), 10,
               what="queued")
    r = event(ld, lead=lid, type="form", form="demo")
    assert r["score"]["after"] == 50 and r["lead"]["queue"] == "hold"
    r = event(ld, lead=lid, type="click")
    r = event(ld, lead=lid, type="click")
    assert r["score"]["after"] == 60
    assert r["lead"]["route_team"] == "rr"
    assert r["lead"]["queue"] is None and r["lead"]["status"] == "routing"
    wait_until(lambda: pending(ld, lid), 10, what="an offer in rr")
    assert "threshold" in event_types(ld, lid)
    assert ld.psql("SELECT DISTINCT team FROM offers WHERE lead_id = %d" %
                   lid) == "rr"
    api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "cat"},
        expect=200)


def test_new_lead_over_threshold_goes_to_its_team(ld):
    """Captured at 70: 'ready' sends it to rr rather than by the rules
    (which say hold), in one routing."""
    doc = capture(ld, title="Director", fields={"vip": True},
                  source="hold-hot")
    lid = doc["lead"]["id"]
    assert doc["lead"]["score"] == 70 and doc["lead"]["grade"] == "hot"
    assert doc["lead"]["route_team"] == "rr"
    wait_until(lambda: pending(ld, lid), 10, what="an offer in rr")
    assert ld.psql("SELECT team FROM offers WHERE lead_id = %d" % lid) == \
        "rr"
    assert event_types(ld, lid)[:2] == ["captured", "threshold"]
    assert lead_row(ld, lid, "round, queue") == ("1", "")
    api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "cat"},
        expect=200)


def test_threshold_tells_the_owner(ld):
    lid = capture(ld)["lead"]["id"]
    api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "bob"},
        expect=200)
    before = len(mails_to(ld, "bob@reps.example"))
    r = event(ld, lead=lid, type="form", form="demo")          # 0 -> 30
    assert r["lead"]["owner"] == "bob"
    msgs = wait_until(lambda: [m for m in mails_to(ld, "bob@reps.example")
                               if "back" in (m[2]["Subject"] or "")], 15,
                      what="the reengaged email")
    assert len(mails_to(ld, "bob@reps.example")) > before
    assert msgs
    # crossing 'ready' on an owned lead does not re-route it: the owner
    # hears of it again
    event(ld, lead=lid, type="click")
    r = event(ld, lead=lid, type="click")
    assert r["score"]["after"] == 40
    ld.psql("INSERT INTO score_history (lead_id, kind, points, reason) "
            "VALUES (%d, 'manual', 20, 'met at the fair')" % lid)
    n = len([m for m in mails_to(ld, "bob@reps.example")
             if "back" in (m[2]["Subject"] or "")])
    r = event(ld, lead=lid, type="visit")
    assert r["score"]["after"] == 62       # recomputed from the history
    assert lead_row(ld, lid) == ("bob", "assigned")
    assert pending(ld, lid) == []
    assert "threshold" not in event_types(ld, lid)
    wait_until(lambda: len([m for m in mails_to(ld, "bob@reps.example")
                            if "back" in (m[2]["Subject"] or "")]) == n + 1,
               15, what="told again")


# ---- assignment and status ---------------------------------------------------------------

def test_assign(ld):
    lid = capture(ld, source="web", first_name="Assy")["lead"]["id"]
    (rep,) = wait_until(lambda: pending(ld, lid), 10, what="an offer")
    for body, code, field in (({}, 400, "rep"), ({"rep": "nobody"}, 400,
                                                  "rep"),
                              ({"rep": "cat", "x": 1}, 400, "x"),
                              ({"rep": "cat", "note": 5}, 400, "note")):
        r = api(ld, "POST", "/api/v1/leads/%d/assign" % lid, body,
                expect=code)
        assert err(r) == field
    assert pending(ld, lid) == [rep]
    r = api(ld, "POST", "/api/v1/leads/%d/assign" % lid,
            {"rep": "cat", "note": "VIP"}, expect=200)
    lead = r.json()["lead"]
    assert (lead["owner"], lead["status"]) == ("cat", "assigned")
    assert lead["assigned_at"] and lead["route_at"] is None
    assert pending(ld, lid) == []
    assert ld.psql("SELECT status FROM offers WHERE lead_id = %d" %
                   lid) == "withdrawn"
    assert json.loads(ld.psql("SELECT data FROM events WHERE lead_id = %d "
                              "AND type = 'assigned' ORDER BY id DESC "
                              "LIMIT 1" % lid)) == {
        "rep": "cat", "by": "admin", "note": "VIP", "from": None}
    wait_until(lambda: [m for m in mails_to(ld, "cat@reps.example")
                        if "Assy" in (m[2]["Subject"] or "")], 15,
               what="the assignment email")
    api(ld, "POST", "/api/v1/leads/99999999/assign", {"rep": "cat"},
        expect=404)
    # a lead further down the funnel keeps its status
    api(ld, "POST", "/api/v1/leads/%d/status" % lid, {"status": "qualified"},
        expect=200)
    r = api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "ann"},
            expect=200)
    assert (r.json()["lead"]["owner"], r.json()["lead"]["status"]) == (
        "ann", "qualified")


def test_status(ld):
    lid = capture(ld)["lead"]["id"]
    r = api(ld, "POST", "/api/v1/leads/%d/status" % lid,
            {"status": "contacted"}, expect=409)
    assert err(r) == "status"
    for body, field in (({"status": "bogus"}, "status"), ({}, "status"),
                        ({"status": "new"}, "status"),
                        ({"status": "won", "why": 1}, "why")):
        r = api(ld, "POST", "/api/v1/leads/%d/status" % lid, body,
                expect=400)
        assert err(r) == field
    api(ld, "POST", "/api/v1/leads/%d/assign" % lid, {"rep": "ann"},
        expect=200)
    for st in ("contacted", "qualified", "won"):
        r = api(ld, "POST", "/api/v1/leads/%d/status" % lid,
                {"status": st, "note": "step %s" % st}, expect=200)
        assert r.json()["lead"]["status"] == st
    data = [json.loads(x) for x in ld.psql(
        "SELECT data FROM events WHERE lead_id = %d AND type = 'status' "
        "ORDER BY id" % lid).splitlines()]
    assert [(x["from"], x["to"]) for x in data] == [
        ("assigned", "contacted"), ("contacted", "qualified"),
        ("qualified", "won")]
    api(ld, "POST", "/api/v1/leads/99999999/status", {"status": "lost"},
        expect=404)


def test_recycled_reenters_routing(ld):
    lid = capture(ld, source="web")["lead"]["id"]
    (rep,) = wait_until(lambda: pending(ld, lid), 10, what="an offer")
    oid = int(ld.psql("SELECT id FROM offers WHERE lead_id = %d" % lid))
    api(ld, "POST", "/api/v1/offers/%d/accept" % oid, expect=200)
    assert lead_row(ld, lid) == (rep, "assigned")
    rnd = int(lead_row(ld, lid, "round")[0])
    r = api(ld, "POST", "/api/v1/leads/%d/status" % lid,
            {"status": "recycled", "note": "no answer"}, expect=200)
    lead = r.json()["lead"]
    assert lead["owner"] is None and lead["round"] == rnd + 1
    # the router takes it: a new offer, in the new round
    wait_until(lambda: pending(ld, lid), 10, what="offered again")
    assert ld.psql("SELECT round FROM offers WHERE lead_id = %d AND status "
                   "= 'pending'" % lid) == str(rnd + 1)
    # lost takes it out of routing (its pending offers withdrawn)
    r = api(ld, "POST", "/api/v1/leads/%d/status" % lid, {"status": "lost"},
            expect=200)
    assert r.json()["lead"]["route_at"] is None
    assert pending(ld, lid) == []


# ---- pull queues ----------------------------------------------------------------------------

def queue(d, team):
    return [l["id"] for l in api(d, "GET", "/api/v1/queue?team=" + team,
                                 expect=200).json()["leads"]]


def fill(d, source, n, **fields):
    ids = [capture(d, source=source, **fields)["lead"]["id"]
           for _ in range(n)]
    wait_until(lambda: set(ids) <= set(queue(d, source)), 15,
               what="%d leads in queue %s" % (n, source))
    return ids


def test_pull_parallel_next_never_twice(ld):
    ids = fill(ld, "pool", 12)
    reps = ["p1", "p2", "p3"]

    def nxt(i):
        r = api(ld, "POST", "/api/v1/reps/%s/next" % reps[i % 3])
        return reps[i % 3], r.status, r.json()
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        got = list(ex.map(nxt, range(10)))
    assert [s for _, s, _ in got] == [200] * 10, got
    taken = [doc["lead"]["id"] for _, _, doc in got]
    assert len(set(taken)) == 10
    # the oldest first (equal priority): the first ten captured
    assert sorted(taken) == ids[:10]
    for rep, _, doc in got:
        assert doc["lead"]["owner"] == rep        # p3 is off hours: a pull
        assert doc["lead"]["status"] == "assigned"  # ignores hours
    assert ld.psql("SELECT count(*) FROM events WHERE type = 'claimed' AND "
                   "lead_id IN (%s)" % ",".join(map(str, taken))) == "10"
    assert sorted(queue(ld, "pool")) == ids[10:]
    # empty the queue, then 404
    for _ in range(2):
        api(ld, "POST", "/api/v1/reps/p1/next", expect=200)
    r = api(ld, "POST", "/api/v1/reps/p1/next", expect=404)
    assert err(r) == "queue"
    # a rep in no pull team; an unknown rep
    r = api(ld, "POST", "/api/v1/reps/ann/next", expect=404)
    assert err(r) == "queue"
    api(ld, "POST", "/api/v1/reps/nobody/next", expect=404)


def test_pull_eligibility_and_claim(ld):
    fr = fill(ld, "pool2", 1, country="FR")[0]
    us = fill(ld, "pool2", 1, country="US")[0]
    # "us" covers the US only: it skips the older French lead
    r = api(ld, "POST", "/api/v1/reps/us/next", expect=200)
    assert r.json()["lead"]["id"] == us
    r = api(ld, "POST", "/api/v1/reps/us/next", expect=404)
    assert "can take" in r.json()["error"]["message"]
    # claim: not a member, not eligible, unknown lead, then taken
    r = api(ld, "POST", "/api/v1/leads/%d/claim" % fr, {"rep": "p1"},
            expect=403)
    assert err(r) == "rep"
    r = api(ld, "POST", "/api/v1/leads/%d/claim" % fr, {"rep": "us"},
            expect=403)
    assert "territory" in r.json()["error"]["message"]
    r = api(ld, "POST", "/api/v1/leads/%d/claim" % fr, {"rep": "zz"},
            expect=400)
    assert err(r) == "rep"
    api(ld, "POST", "/api/v1/leads/99999999/claim", {"rep": "any"},
        expect=404)
    r = api(ld, "POST", "/api/v1/leads/%d/claim" % fr, {"rep": "any"},
            expect=200)
    assert r.json()["lead"]["owner"] == "any"
    r = api(ld, "POST", "/api/v1/leads/%d/claim" % fr, {"rep": "any"},
            expect=409)
    assert err(r) == "id"
    assert json.loads(ld.psql("SELECT data FROM events WHERE lead_id = %d "
                              "AND type = 'claimed'" % fr)) == {
        "rep": "any", "how": "claim", "queue": "pool2"}


def test_pull_capacity(ld):
    ids = fill(ld, "pool3", 3)
    # "full" has capacity 1: of 8 parallel pulls exactly one gets a lead
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda _: api(ld, "POST", "/api/v1/reps/full/next"),
                          range(8)))
    assert sorted(r.status for r in got) == [200] + [409] * 7, [
        (r.status, r.json()) for r in got]
    r = next(r for r in got if r.status == 409)
    assert err(r) == "rep" and "capacity" in r.json()["error"]["message"]
    assert ld.psql("SELECT count(*) FROM leads WHERE owner = 'full'") == "1"
    r = api(ld, "POST", "/api/v1/leads/%d/claim" % ids[2], {"rep": "full"},
            expect=409)
    assert err(r) == "rep"
    assert queue(ld, "pool3") == ids[1:]


def test_queue_listing(ld):
    lo1 = capture(ld, source="order-lo")["lead"]["id"]
    hi1 = capture(ld, source="order-hi")["lead"]["id"]
    lo2 = capture(ld, source="order-lo")["lead"]["id"]
    hi2 = capture(ld, source="order-hi")["lead"]["id"]
    wait_until(lambda: len(queue(ld, "order")) == 4, 10, what="queued")
    doc = api(ld, "GET", "/api/v1/queue?team=order", expect=200).json()
    assert doc["team"] == "order"
    assert [l["id"] for l in doc["leads"]] == [hi1, hi2, lo1, lo2]
    assert [l["priority"] for l in doc["leads"]] == [90, 90, 10, 10]
    for q in ("", "?team=", "?team=nope"):
        r = api(ld, "GET", "/api/v1/queue" + q, expect=400)
        assert err(r) == "team"


# ---- the routing report --------------------------------------------------------------------

def test_routing_report(ld):
    """A known scenario, in 2090 so that nothing else falls in it: lead A
    (source sA) offered to r1 at +10 s, rejected, to r2 at +20 s, accepted
    at +50 s; lead B (sB) offered to r1 at +30 s, expired; lead C (sA)
    broadcast to r1 and r2 at +40 s, r2 accepted at +100 s."""
    ld.psql("""
        WITH l AS (INSERT INTO leads (email, source, status, owner,
                   created_at) VALUES
            ('rA@report.example', 'sA', 'won', 'r2', '2090-01-01 00:00Z'),
            ('rB@report.example', 'sB', 'lost', 'r1', '2090-01-01 00:00Z'),
            ('rC@report.example', 'sA', 'won', 'r2', '2090-01-01 00:00Z')
            RETURNING id, email)
        INSERT INTO offers (lead_id, rep_id, team, rule, round, kind, status,
                            created_at, deadline, answered_at)
        SELECT l.id, x.rep, x.team, x.rule, 1, x.kind, x.status,
               '2090-01-01 00:00Z'::timestamptz + x.at * interval '1 s',
               '2090-01-02 00:00Z',
               '2090-01-01 00:00Z'::timestamptz + x.ans * interval '1 s'
        FROM l JOIN (VALUES
            ('rA', 'r1', 'tX', 'ruleX', 'single', 'rejected', 10, 15),
            ('rA', 'r2', 'tX', 'ruleX', 'single', 'accepted', 20, 50),
            ('rB', 'r1', 'tY', NULL, 'single', 'expired', 30, 330),
            ('rC', 'r1', 'tX', 'ruleX', 'broadcast', 'withdrawn', 40, 100),
            ('rC', 'r2', 'tX', 'ruleX', 'broadcast', 'accepted', 40, 100))
          AS x(who, rep, team, rule, kind, status, at, ans)
          ON l.email = x.who || '@report.example'
        ORDER BY x.at, x.rep""")
    r = api(ld, "GET", "/api/v1/reports/routing?since=2090-01-01T00:00:00Z",
            expect=200)
    doc = r.json()
    assert doc["since"] == "2090-01-01T00:00:00Z"
    by = doc["by"]

    def row(dim, key):
        (x,) = [x for x in by[dim] if x["key"] == key]
        return x
    r1, r2 = row("rep", "r1"), row("rep", "r2")
    assert (r1["offered"], r1["accepted"], r1["rejected"], r1["expired"]) \
        == (3, 0, 1, 1)
    assert (r2["offered"], r2["accepted"]) == (2, 2)
    # first offers: A at 10 s and B at 30 s went to r1, C at 40 s to r1
    # (the lower offer id of the broadcast)
    assert r1["first_offer_p50_s"] == 30 and r2["first_offer_p50_s"] is None
    assert r2["accept_p50_s"] == 75 and r2["accept_p90_s"] == 95
    tx = row("team", "tX")
    assert (tx["offered"], tx["accepted"], tx["rejected"]) == (4, 2, 1)
    assert tx["first_offer_p50_s"] == 25 and tx["first_offer_p90_s"] == 37
    assert row("team", "tY")["expired"] == 1
    assert row("rule", None)["offered"] == 1
    sa = row("source", "sA")
    assert (sa["offered"], sa["accepted"]) == (4, 2)
    assert sa["accept_p50_s"] == 75
    assert set(by) == {"rep", "team", "rule", "source"}
    # a later since leaves them out; a bad one is refused
    doc = api(ld, "GET", "/api/v1/reports/routing?since=2090-01-01T00:00:35"
              "%2B00:00", expect=200).json()
    assert sum(x["offered"] for x in doc["by"]["rep"]) == 2
    r = api(ld, "GET", "/api/v1/reports/routing?since=yesterday",
            expect=400)
    assert err(r) == "since"
    # the default period: the last 30 days
    doc = api(ld, "GET", "/api/v1/reports/routing", expect=200).json()
    since = calendar.timegm(time.strptime(doc["since"],
                                          "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(since - (time.time() - 30 * 86400)) < 60
