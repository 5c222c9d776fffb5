"""
Texts to leads through Kannel (bearerbox, smsbox and fakesmsc on free
loopback ports, see kanneltools.py): SMS campaigns (conf/campaigns with
channel = sms) and POST /api/v1/sms/send, the path drip steps use.

  - only leads of the audience with recorded consent get the text,
    rendered with their fields; parts and cost are known per message;
  - quiet hours in the lead's time zone defer a text (queued, due at the
    window's end), also when it falls due again inside the window;
  - a STOP from the lead suppresses its queued text at once; consent
    withdrawn behind the engine's back is caught when the text is claimed;
  - a text longer than max_segments is recorded as failed, not sent;
  - one text per lead and campaign, ever: refilling the audience queues
    nothing; an idempotency key sent twice queues one text;
  - kill -9 in the middle of a 240-lead campaign, restart: no lead gets
    its text twice, and every lead's text is sent or, if the crash left
    its outcome unknown, failed as such;
  - `leadcast report sms` and the campaign report cover SMS campaigns.
"""
import datetime
import json
import os
import re
import time

import pytest

import harness
import kanneltools
import mailtools as mt
from harness import wait_until

SECRET = "kannel-secret-0123456789"

pytestmark = pytest.mark.skipif(
    not kanneltools.installed(),
    reason="Kannel is not installed: apt-get install kannel kannel-extras")

ROUTING = """\
time_zone = "UTC"
team "q" {
	method = pull
}
rep "cat" { email = "cat@reps.example"; teams = { "q" } }
rule "default" { team = "q" }
"""


def zone(quiet):
    """A fixed-offset zone whose local hour now is well inside (quiet) or
    well outside 21:00-08:00."""
    h = datetime.datetime.now(datetime.timezone.utc).hour
    for off in range(-12, 15):
        local = (h + off) % 24
        if (quiet and local in (23, 0, 1, 2, 3, 4, 5)) or \
                (not quiet and 10 <= local <= 18):
            # Etc/GMT+N is N hours *behind* UTC
            return "Etc/GMT%+d" % -off if off else "UTC"
    raise AssertionError("no zone")


DAY, NIGHT = zone(False), zone(True)


class JsonGateway(kanneltools.LocalGateway):
    """A Vonage-style API over HTTP/1.1 (connections kept alive): a JSON
    body in, {"messages": [{"status": "0", "message-id": ...}]} out;
    records each request's JSON and the client's port."""

    def __init__(self):
        self.requests = []
        self.n = 0
        super().__init__(self.answer, keep_alive=True)

    def answer(self, h, body):
        self.n += 1
        self.requests.append((h.client_address[1],
                              h.headers.get("Content-Type"),
                              json.loads(body)))
        return 200, {"message-count": "1", "messages": [
            {"status": "0", "message-id": "V%d" % self.n}]}


def sms_conf(port, json_port):
    return """\
default = "kannel"
lease = 5s
reminder = 0
gateway "kannel" {
	type = kannel
	url = "http://127.0.0.1:%d/cgi-bin/sendsms"
	username = "leadcast"
	password = "pw"
	sender = "Acme"
	secret = "%s"
	price = "0.0075"
	timeout = 3s
	retries = 1
	retry_base = 500ms
}
gateway "vonage" {
	type = http
	url = "http://127.0.0.1:%d/sms/json"
	username = "key1"
	password = "sec1"
	sender = "Acme"
	body_format = json
	body = "{\\"api_key\\": \\"{{username}}\\", \\"api_secret\\": \\"{{password}}\\", \\"from\\": \\"{{from}}\\", \\"to\\": \\"{{to_digits}}\\", \\"text\\": \\"{{text}}\\", \\"callback\\": \\"{{dlr_url}}\\"}"
	success = "\\"status\\": *\\"0\\""
	message_id = "\\"message-id\\": *\\"([A-Za-z0-9-]+)\\""
	connections = 3
	allow_from = { "127.0.0.1" }
	in_from = "from.number"
	in_text = "message.content.text"
	dlr_msgid = "messageId"
	dlr_status = "status"
	dlr_delivered = { "delivered" }
	dlr_failed = { "failed", "rejected", "expired" }
}
""" % (port, SECRET, json_port)


@pytest.fixture(scope="module")
def env():
    tmp = harness.TempDir("smsl")
    mt.routing_dir(tmp, ROUTING)
    kanneltools.copy_sms_templates(tmp)
    mt.write_file(os.path.join(tmp.path, "tpl", "sms", "promo.mustache"),
                  "Hi {{first_name}}, 20% off at Acme this week"
                  "{{#fields.code}} with code {{fields.code}}{{/fields.code}}."
                  " Reply STOP to opt out.\n")
    mt.write_file(os.path.join(tmp.path, "campaigns", "promo.conf"),
                  mt.campaign_text(channel=harness.Raw("sms"),
                                   text="sms/promo",
                                   audience="city == 'Troy'",
                                   quiet_hours="21:00-08:00",
                                   time_zone=DAY, max_segments=1))
    mt.write_file(os.path.join(tmp.path, "campaigns", "bulk.conf"),
                  mt.campaign_text(channel=harness.Raw("sms"),
                                   text="sms/promo",
                                   audience="source == 'bulk'",
                                   quiet_hours=""))
    d = harness.Daemon(tmp, name="lc", top={"default_country": "US"})
    k = kanneltools.Kannel(tmp, d.port, SECRET)
    d.vonage = JsonGateway()
    mt.write_file(os.path.join(tmp.path, "sms.conf"),
                  sms_conf(k.sendsms, d.vonage.port))
    try:
        k.start()
        d.start(timeout=30)
        yield d, k
    finally:
        d.cleanup()
        k.stop()
        d.vonage.close()
        tmp.cleanup()


_seq = [0]


def capture(d, phone, consent=True, **fields):
    _seq[0] += 1
    lead = {"email": "smsl%d.%d@example.com" % (_seq[0], os.getpid()),
            "first_name": "Jane", "last_name": "Doe", "phone": phone,
            "city": "Troy", "source": "api"}
    lead.update(fields)
    r = d.post("/api/v1/leads", body=json.dumps(lead).encode(),
               token=d.token)
    assert r.status in (200, 201), r
    lid = r.json()["lead"]["id"]
    if consent:
        r = d.post("/api/v1/sms/consent", body=json.dumps(
            {"lead": lid, "consent": True, "source": "web form"}).encode(),
            token=d.token)
        assert r.status == 200 and r.json()["sms_consent"] is True, r
    return lid


def rows(d, where):
    out = d.psql("SELECT lead_id, status, segments, encoding, cost, "
                 "coalesce(error, ''), next_attempt_at > now() + interval "
                 "'1 minute', body FROM sms WHERE %s ORDER BY id" % where)
    return [l.split("|", 7) for l in out.splitlines()]


def texts_to(k, number):
    return [m for m in k.received(number)]


def campaign_rows(d, name):
    return rows(d, "campaign_id = (SELECT id FROM campaigns WHERE name = "
                "'%s')" % name)


def test_campaign_consent_audience_quiet_hours_stop(env):
    d, k = env
    ann = capture(d, "+13135550201", first_name="Ann",
                  fields={"code": "SPRING"})
    capture(d, "+13135550202", consent=False, first_name="Bea")
    capture(d, "+13135550203", first_name="Cy", city="Detroit")
    dan = capture(d, "+13135550204", first_name="Dan", time_zone=NIGHT)
    eve = capture(d, "+13135550205", first_name="Chloë",    # UCS-2: 2 parts
                  fields={"code": "SPRINGSALE2026"})
    fay = capture(d, "+13135550206", first_name="Fay", time_zone=NIGHT)
    gus = capture(d, "+13135550207", first_name="Gus", time_zone=NIGHT)
    r = harness.cli(d.conf_path, "--json", "campaign", "start", "promo")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["recipients"] == 5
    # Ann's text reaches her phone, rendered with her fields
    (frm, to, text), = wait_until(lambda: texts_to(k, "+13135550201"), 15,
                                  what="Ann's text")
    assert "Hi Ann, 20% off at Acme this week with code SPRING" in text
    # Bea (no consent) and Cy (not in the audience) get nothing
    rs = wait_until(lambda: (lambda x: x if len(x) == 5 else None)(
        campaign_rows(d, "promo")), 10, what="5 texts queued")
    by = {int(r[0]): r for r in rs}
    assert set(by) == {ann, dan, eve, fay, gus}
    assert by[ann][2:5] == ["1", "gsm7", "0.007500"]
    # Chloë's text needs UCS-2: 2 parts, over max_segments = 1: failed
    assert by[eve][1] == "failed" and by[eve][2:4] == ["2", "ucs2"]
    assert "2 parts (at most 1)" in by[eve][5]
    # Dan, Fay and Gus are in quiet hours where they live: deferred
    for who in (dan, fay, gus):
        assert by[who][1] == "queued" and by[who][6] == "t", by[who]
    # Fay texts STOP: her queued text is suppressed at once
    k.fake(mo=("+13135550206", "STOP"))
    wait_until(lambda: rows(d, "lead_id = %d AND status = 'suppressed'" %
                            fay), 10, what="Fay's text suppressed")
    # Gus's consent goes behind the engine's back; Dan's text falls due
    # inside his quiet hours: the claim suppresses Gus's, Dan's waits again
    d.psql("UPDATE leads SET sms_consent = false WHERE id = %d" % gus)
    d.psql("UPDATE sms SET next_attempt_at = now() WHERE lead_id IN (%d, "
           "%d, %d)" % (dan, fay, gus))
    wait_until(lambda: rows(d, "lead_id = %d AND status = 'suppressed'" %
                            gus), 10, what="Gus's text suppressed")
    wait_until(lambda: rows(d, "lead_id = %d AND status = 'queued' AND "
                            "next_attempt_at > now() + interval '1 minute'"
                            % dan), 10, what="Dan's text deferred again")
    assert "quiet hours" in d.log_since_start()
    time.sleep(0.5)
    for n in ("+13135550202", "+13135550203", "+13135550204",
              "+13135550205", "+13135550206", "+13135550207"):
        assert texts_to(k, n) == [], n
    assert [r[1] for r in rows(d, "lead_id = %d" % dan)] == ["queued"]
    # delivery reports per message (Kannel's dlr-url)
    wait_until(lambda: rows(d, "lead_id = %d AND status = 'delivered'" %
                            ann), 15, what="Ann's delivery report")


def test_refill_and_idempotency_keys(env):
    d, k = env
    n = len(campaign_rows(d, "promo"))
    assert n == 5
    # the audience queued again from the start (as after a crash between
    # a chunk and its cursor): nothing new
    d.psql("UPDATE campaigns SET fill_cursor = 0, filled_at = NULL WHERE "
           "name = 'promo'")
    wait_until(lambda: d.psql("SELECT filled_at IS NOT NULL FROM campaigns "
                              "WHERE name = 'promo'") == "t", 10,
               what="refilled")
    assert len(campaign_rows(d, "promo")) == 5
    # the API (the drip engine's path): a key queues one text, ever
    lead = capture(d, "+13135550210", first_name="Hal", city="Ann Arbor")
    body = {"lead": lead, "template": "promo", "key": "drip:x:1:2"}
    r1 = d.post("/api/v1/sms/send", body=json.dumps(body).encode(),
                token=d.token)
    assert r1.status == 201 and r1.json()["status"] == "queued", r1
    r2 = d.post("/api/v1/sms/send", body=json.dumps(body).encode(),
                token=d.token)
    assert r2.status == 200 and r2.json()["status"] == "duplicate", r2
    assert r2.json()["sms"] == r1.json()["sms"]
    wait_until(lambda: texts_to(k, "+13135550210"), 15, what="Hal's text")
    time.sleep(0.5)
    assert len(texts_to(k, "+13135550210")) == 1
    # no consent, no text; bad input names the field
    bea = capture(d, "+13135550211", consent=False)
    r = d.post("/api/v1/sms/send", body=json.dumps(
        {"lead": bea, "template": "sms/promo"}).encode(), token=d.token)
    assert r.status == 409 and r.json()["status"] == "no_consent", r
    for bad, field in (({"lead": "x", "template": "promo"}, "lead"),
                       ({"lead": lead, "template": "nope"}, "template"),
                       ({"lead": lead, "template": "promo", "key": ""},
                        "key")):
        r = d.post("/api/v1/sms/send", body=json.dumps(bad).encode(),
                   token=d.token)
        assert r.status == 400 and r.json()["error"]["field"] == field, r
    r = d.post("/api/v1/sms/consent", body=json.dumps(
        {"lead": lead, "consent": "yes", "source": "x"}).encode(),
        token=d.token)
    assert r.status == 400 and r.json()["error"]["field"] == "consent"
    assert d.post("/api/v1/sms/send", body=b"{}").status == 401


def test_kill9_mid_campaign_no_text_twice(env):
    d, k = env
    n = 240
    path = os.path.join(d.tmp.path, "bulk.csv")
    with open(path, "w") as f:
        f.write("email,first_name,phone\n")
        for i in range(n):
            f.write("bulk%d@example.com,B%d,+1313556%04d\n" % (i, i, i))
    r = harness.cli(d.conf_path, "leads", "import", path, "--source", "bulk",
                    timeout=60)
    assert r.returncode == 0, r.stderr
    d.psql("UPDATE leads SET sms_consent = true WHERE source = 'bulk'")

    def got():
        return [m for m in k.received() if m[1].startswith("+1313556")]

    r = harness.cli(d.conf_path, "campaign", "start", "bulk")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len(got()) >= 20, 30, what="20 texts out")
    d.proc.kill()                                   # kill -9
    d.proc.wait(10)
    at_kill = len(got())
    d.start(timeout=30)
    t0 = time.monotonic()
    wait_until(lambda: d.psql(
        "SELECT count(*) FROM sms WHERE campaign_id = (SELECT id FROM "
        "campaigns WHERE name = 'bulk') AND status IN ('queued', "
        "'sending')") == "0" and d.psql(
        "SELECT count(*) FROM sms WHERE campaign_id = (SELECT id FROM "
        "campaigns WHERE name = 'bulk')") == str(n), 60,
        what="the campaign finished")
    harness.note_timing("sms: 240-lead campaign after a kill -9",
                        time.monotonic() - t0)
    time.sleep(1)                   # the last texts through Kannel
    numbers = [m[1] for m in got()]
    dups = len(numbers) - len(set(numbers))
    lost = set(d.psql("SELECT to_number FROM sms WHERE campaign_id = "
                      "(SELECT id FROM campaigns WHERE name = 'bulk') AND "
                      "status = 'failed' AND error LIKE 'outcome unknown%'"
                      ).split())
    print("kill -9 after %d of %d texts: %d twice, %d outcome unknown (%d "
          "of them reached the phone)" % (at_kill, n, dups, len(lost),
                                          len(lost & set(numbers))))
    assert at_kill < n
    assert dups == 0, numbers
    # every other lead got its text: none lost, none twice
    assert set(numbers) | lost == set("+1313556%04d" % i for i in range(n))
    assert d.psql("SELECT count(*) FROM sms WHERE campaign_id = (SELECT id "
                  "FROM campaigns WHERE name = 'bulk') AND status NOT IN "
                  "('sent', 'delivered') AND NOT to_number = ANY('{%s}')" %
                  ",".join(lost)) == "0"
    wait_until(lambda: d.psql("SELECT status FROM campaigns WHERE name = "
                              "'bulk'") == "done", 10, what="done")


def test_reports_cover_sms_campaigns(env):
    d, _ = env
    r = harness.cli(d.conf_path, "--json", "report", "sms")
    assert r.returncode == 0, r.stderr
    cps = {c["campaign"]: c for c in json.loads(r.stdout)["campaigns"]}
    p = cps["promo"]
    assert p["messages"] == 5 and p["segments"] == 6
    assert abs(float(p["cost"]) - 0.045) < 1e-9
    assert p["delivered"] + p["sent"] == 1 and p["failed"] == 1
    assert p["suppressed"] == 2 and p["deferred"] == 1
    assert cps["bulk"]["messages"] == 240
    r = harness.cli(d.conf_path, "report", "sms")
    assert r.returncode == 0, r.stderr
    assert "SMS campaigns" in r.stdout and re.search(r"promo\s+running",
                                                       r.stdout), r.stdout
    r = harness.cli(d.conf_path, "report", "sms", "--csv")
    assert "\ncampaign,status,messages," in r.stdout
    rep = d.get("/api/v1/campaigns/promo/report", token=d.token).json()
    assert rep["channel"] == "sms" and rep["sms"]["segments"] == 6
    assert rep["deliveries"]["suppressed"] == 2


def test_json_gateway_keepalive_reports_and_replies(env):
    d, _ = env
    v = d.vonage
    lead = capture(d, "+13135550220", first_name="Ida", city="Flint")

    def send(key):
        r = d.post("/api/v1/sms/send", body=json.dumps(
            {"lead": lead, "template": "promo", "key": key,
             "gateway": "vonage"}).encode(), token=d.token)
        assert r.status == 201, r
        return r.json()["sms"]

    ids = [send("ka:%d" % i) for i in range(8)]
    wait_until(lambda: len(v.requests) == 8, 15, what="8 requests")
    port, ctype, doc = v.requests[0]
    assert ctype == "application/json"
    assert doc["to"] == "13135550220" and doc["api_key"] == "key1"
    assert doc["text"].startswith("Hi Ida, 20% off")
    # kept alive: 8 texts over at most `connections` (3) connections
    first = set(p for p, _, _ in v.requests)
    assert len(first) <= 3, first
    time.sleep(0.3)
    ids += [send("ka2:%d" % i) for i in range(3)]
    wait_until(lambda: len(v.requests) == 11, 15, what="3 more")
    assert set(p for p, _, _ in v.requests[8:]) <= first, "not reused"
    msgid = d.psql("SELECT gateway_msgid FROM sms WHERE id = %d" % ids[0])
    assert re.fullmatch(r"V\d+", msgid)
    # a JSON delivery report by the gateway's id
    r = d.post("/sms/dlr/vonage", body=json.dumps(
        {"msisdn": "13135550220", "to": "Acme", "messageId": msgid,
         "status": "delivered", "err-code": "0", "price": 0.0333}).encode())
    assert r.status == 200, r
    assert d.psql("SELECT status, dlr_status FROM sms WHERE id = %d" %
                  ids[0]) == "delivered|delivered"
    # malformed JSON changes nothing
    for body in (b"{not json", b"[1, 2]", json.dumps(
            {"x%d" % i: i for i in range(100)}).encode()):
        r = d.post("/sms/dlr/vonage", body=body)
        assert r.status == 400, (body, r)
    # a JSON inbound text, nested (read by dotted names; the number
    # without "+"): STOP
    r = d.request("POST", "/sms/in/vonage", body=json.dumps(
        {"message_uuid": "m1", "to": {"type": "sms", "number": "Acme"},
         "from": {"type": "sms", "number": "13135550220"},
         "message": {"content": {"type": "text", "text": "STOP"}}}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r
    assert d.psql("SELECT sms_consent FROM leads WHERE id = %d" % lead) == "f"
    r = d.post("/api/v1/sms/send", body=json.dumps(
        {"lead": lead, "template": "promo", "gateway": "nope"}).encode(),
        token=d.token)
    assert r.status == 400 and r.json()["error"]["field"] == "gateway"
