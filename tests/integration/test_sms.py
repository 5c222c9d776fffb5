"""
SMS through real gateways: Kannel (Debian's kannel and kannel-extras:
bearerbox, smsbox and the fake SMSC client fakesmsc, on free loopback
ports with a generated kannel.conf) and a generic http gateway against a
small local HTTP server.

  - a lead routed to a rep with a phone: the offer text reaches fakesmsc
    (the lead's summary, the code, the card link); "Y code" sent back
    through fakesmsc takes the lead; Kannel's delivery report (1:
    delivered; dlr_mask 19) is recorded; the rep's replies come back by
    SMS; HELP, NEXT, OFF/ON; a reminder before the window closes, once;
  - bad input: an unknown code, an expired offer, a malformed delivery
    report, a forged request (wrong secret, address not allowed), an
    unknown number, a sender that is not a phone number; a lead's STOP,
    START and other replies;
  - with Kannel stopped, the offer goes out by email at once (the rep is
    told by SMS only) while the text is retried, then fails;
  - the http gateway: the request as configured (form body, Basic auth),
    its message id, delivery reports by the gateway's id; answering 500
    or hanging: retried, then failed over to Kannel; over HTTPS, a
    certificate signed by the gateway's ca_file passes, one the system's
    CAs do not know is refused; an email2sms gateway sends through the
    mail transport.
"""
import base64
import json
import os
import re
import ssl
import time
import urllib.parse

import pytest

import harness
import kanneltools
import mailtools as mt
from harness import wait_until

SECRET = "kannel-secret-0123456789"
ANN = "+13135550100"
BOB = "+13135550101"

pytestmark = pytest.mark.skipif(
    not kanneltools.installed(),
    reason="Kannel is not installed: apt-get install kannel kannel-extras")

ROUTING = """\
time_zone = "UTC"
team "t" {
	method = round_robin
	offer_window = 5m
	max_offers = 1
	broadcast_round = false
	catch_all = "cat"
}
team "web" {
	method = round_robin
	offer_window = 5m
	max_offers = 1
	broadcast_round = false
	catch_all = "cat"
}
team "q" {
	method = pull
}
rep "ann" { name = "Ann"; phone = "+13135550100"; email = "ann@reps.example"; notify = { "sms" }; teams = { "t", "q" }; capacity = 0 }
rep "bob" { name = "Bob"; phone = "+13135550101"; email = "bob@reps.example"; notify = { "sms", "email" }; teams = { "web" }; capacity = 0 }
team "tls" {
	method = round_robin
	offer_window = 5m
	max_offers = 1
	broadcast_round = false
	catch_all = "cat"
}
team "tlsbad" {
	method = round_robin
	offer_window = 5m
	max_offers = 1
	broadcast_round = false
	catch_all = "cat"
}
rep "tia" { phone = "+13135550102"; email = "tia@reps.example"; notify = { "sms" }; teams = { "tls" }; capacity = 0 }
rep "tom" { phone = "+13135550103"; email = "tom@reps.example"; notify = { "sms" }; teams = { "tlsbad" }; capacity = 0 }
team "car" {
	method = round_robin
	offer_window = 5m
	max_offers = 1
	broadcast_round = false
	catch_all = "cat"
}
rep "eva" { phone = "+13135550104"; email = "eva@reps.example"; notify = { "sms" }; teams = { "car" }; capacity = 0 }
rep "cat" { email = "cat@reps.example" }
rule "carrier" { when = "source == 'carrier'"; team = "car" }
rule "web" { when = "source == 'web'"; team = "web" }
rule "tls" { when = "source == 'tls'"; team = "tls" }
rule "tlsbad" { when = "source == 'tlsbad'"; team = "tlsbad" }
rule "queue" { when = "source == 'queue'"; team = "q" }
rule "default" { team = "t" }
"""


def sms_conf(kannel_port, web_port, tls_port, ca_file):
    return """\
default = "kannel"
offer_segments = 2
gateway "kannel" {
	type = kannel
	url = "http://127.0.0.1:%d/cgi-bin/sendsms"
	username = "leadcast"
	password = "pw"
	sender = "Acme"
	secret = "%s"
	timeout = 2s
	retries = 1
	retry_base = 500ms
}
gateway "web" {
	type = http
	url = "http://127.0.0.1:%d/Accounts/{{username}}/Messages.json"
	username = "AC1"
	password = "tok"
	sender = "+15555550100"
	body = "To={{to}}&From={{from}}&Body={{text}}&StatusCallback={{dlr_url}}"
	headers = { "Authorization: Basic {{basic_auth}}" }
	success = "\\"status\\": *\\"queued\\""
	message_id = "\\"sid\\": *\\"([A-Za-z0-9]+)\\""
	allow_from = { "127.0.0.1" }
	in_from = "From"
	in_text = "Body"
	dlr_msgid = "MessageSid"
	dlr_status = "MessageStatus"
	dlr_delivered = { "delivered" }
	dlr_failed = { "failed", "undelivered" }
	teams = { "web" }
	timeout = 1s
	retries = 1
	retry_base = 300ms
	failover = "kannel"
}
gateway "tls" {
	type = http
	url = "https://127.0.0.1:%d/Accounts/{{username}}/Messages.json"
	username = "AC2"
	body = "To={{to}}&Body={{text}}"
	message_id = "\\"sid\\": *\\"([A-Za-z0-9]+)\\""
	ca_file = "%s"
	allow_from = { "127.0.0.1" }
	teams = { "tls" }
	retries = 0
}
gateway "carrier" {
	type = email2sms
	address = "{{national}}@txt.carrier.example"
	reps = { "eva" }
}
gateway "tlsbad" {
	type = http
	url = "https://127.0.0.1:%d/Accounts/{{username}}/Messages.json"
	username = "AC3"
	body = "To={{to}}&Body={{text}}"
	allow_from = { "127.0.0.1" }
	teams = { "tlsbad" }
	retries = 0
}
""" % (kannel_port, SECRET, web_port, tls_port, ca_file, tls_port)


# ---- a generic HTTP gateway --------------------------------------------------------

class WebGateway(kanneltools.LocalGateway):
    """A Twilio-like API: records each request, answers per self.mode;
    over TLS with ssl_ctx."""

    def __init__(self, ssl_ctx=None):
        self.requests = []
        self.mode = "ok"
        self.n = 0
        super().__init__(self.answer, ssl_ctx=ssl_ctx)

    def answer(self, h, body):
        self.requests.append((h.path, dict(h.headers.items()),
                              urllib.parse.parse_qs(body.decode())))
        if self.mode == "hang":
            time.sleep(3)
            return None
        self.n += 1
        if self.mode == "500":
            return 500, {"message": "internal error"}
        return 201, {"sid": "SM%d" % self.n, "status": "queued"}


# ---- the daemon --------------------------------------------------------------------

def make_ca(d):
    """A CA and a certificate for 127.0.0.1 it signed (openssl CLI)."""
    def ossl(*args):
        harness.run(["openssl"] + list(args), cwd=d)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
         "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName = IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
         "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
         "-extfile", "ext.cnf")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "srv.pem"),
                        os.path.join(d, "srv.key"))
    return os.path.join(d, "ca.pem"), ctx


@pytest.fixture(scope="module")
def env():
    tmp = harness.TempDir("sms")
    web = WebGateway()
    ca, ctx = make_ca(tmp.sub("ca"))
    tls = WebGateway(ctx)
    mt.routing_dir(tmp, ROUTING)
    kanneltools.copy_sms_templates(tmp)
    outbox = tmp.sub("outbox", owner_daemon=True)
    d = harness.Daemon(tmp, name="lc", top={"default_country": "US"},
                       extra_lines=["mail {", '\ttransport = "maildir:%s"' %
                                    outbox, "}"])
    d.outbox = mt.Maildir(outbox)
    k = kanneltools.Kannel(tmp, d.port, SECRET)
    mt.write_file(os.path.join(tmp.path, "sms.conf"),
                  sms_conf(k.sendsms, web.port, tls.port, ca))
    d.tls = tls
    try:
        k.start()
        d.start(timeout=30)
        yield d, k, web
    finally:
        d.cleanup()
        k.stop()
        web.close()
        tls.close()
        tmp.cleanup()


_seq = [0]


def capture(d, **fields):
    _seq[0] += 1
    lead = {"email": "sms%d.%d@example.com" % (_seq[0], os.getpid()),
            "first_name": "Jane", "last_name": "Doe%d" % _seq[0],
            "company": "Acme", "city": "Troy", "region": "MI",
            "source": "api"}
    lead.update(fields)
    r = d.post("/api/v1/leads", body=json.dumps(lead).encode(),
               token=d.token)
    assert r.status in (200, 201), r
    return r.json()["lead"]["id"]


def pending_offer(d, lead):
    row = wait_until(lambda: d.psql(
        "SELECT id, rep_id, coalesce(code, '') FROM offers WHERE lead_id = "
        "%d AND status = 'pending' AND code IS NOT NULL" % lead), 10,
        what="a pending offer with a code")
    oid, rep, code = row.split("|")
    return int(oid), rep, code


def sms_rows(d, where):
    out = d.psql("SELECT id, gateway, status, coalesce(dlr_status, ''), "
                 "attempts, coalesce(error, ''), body FROM sms WHERE %s "
                 "ORDER BY id" % where)
    return [l.split("|", 6) for l in out.splitlines()]


def texts_to(k, number, pattern):
    return [m for m in k.received(number) if re.search(pattern, m[2])]


def mails_to(d, addr):
    return [m for m in d.outbox.messages() if addr in (m[2]["To"] or "")]


def mo(k, number, text):
    """The phone `number` texts `text` through the fake SMSC."""
    k.fake(mo=(number, text))


# ---- Kannel: offer, reply, reports ----------------------------------------------------

def test_offer_by_sms_accepted_by_reply(env):
    d, k, _ = env
    lead = capture(d)
    oid, rep, code = pending_offer(d, lead)
    assert rep == "ann" and re.fullmatch(r"\d{4}", code)
    # the offer text reaches the phone through Kannel
    (frm, to, text), = wait_until(
        lambda: texts_to(k, ANN, "Reply Y %s" % code), 15,
        what="the offer text at fakesmsc")
    assert frm == "Acme"
    assert text.startswith("New lead: Jane Doe%d, Acme, Troy MI, score "
                           % _seq[0])
    assert "Reply Y %s to take it, N %s to pass: http://127.0.0.1:%d/r/" % (
        code, code, d.port) in text
    # the card link in the text opens the lead card
    card = re.search(r"(/r/\S+)", text).group(1)
    assert d.get(card).status == 200
    # Kannel's delivery report: delivered (1)
    row = wait_until(lambda: [r for r in sms_rows(d, "offer_id = %d" % oid)
                              if r[2] == "delivered"], 15,
                     what="the delivery report")[0]
    assert row[1] == "kannel" and row[3] == "1"
    # the rep answers by SMS
    mo(k, ANN, "Y %s" % code)
    wait_until(lambda: d.psql("SELECT owner || '|' || status FROM leads "
                              "WHERE id = %d" % lead) == "ann|assigned", 15,
               what="the lead accepted by SMS")
    assert d.psql("SELECT status FROM offers WHERE id = %d" % oid) == \
        "accepted"
    wait_until(lambda: texts_to(k, ANN, "The lead is yours: Jane"), 15,
               what="the confirmation text")
    assert d.psql("SELECT sender || '|' || rep_id || '|' || command FROM "
                  "sms_in WHERE body = 'Y %s'" % code) == "rep|ann|accept"
    # answering again: already yours
    mo(k, ANN, "y %s" % code)
    wait_until(lambda: texts_to(k, ANN, "Offer %s is yours already" % code),
               15, what="the second answer")
    # no email: the SMS worked
    assert not mails_to(d, "ann@reps.example")


def test_reject_by_sms_and_commands(env):
    d, k, _ = env
    lead = capture(d)
    oid, _, code = pending_offer(d, lead)
    wait_until(lambda: texts_to(k, ANN, "Y %s" % code), 15, what="offer")
    mo(k, ANN, "N %s" % code)
    wait_until(lambda: d.psql("SELECT status FROM offers WHERE id = %d" %
                              oid) == "rejected", 15, what="rejected")
    # the next rep: none left in team t, so the catch-all owns it
    wait_until(lambda: d.psql("SELECT owner FROM leads WHERE id = %d" %
                              lead) == "cat", 15, what="catch-all")
    wait_until(lambda: texts_to(k, ANN, "Passed on offer %s" % code), 15,
               what="the pass confirmed")
    mo(k, ANN, "HELP")
    wait_until(lambda: texts_to(k, ANN, "Reply Y and the code to take a "
                                "lead"), 15, what="help")
    mo(k, ANN, "OFF")
    wait_until(lambda: d.psql("SELECT on_duty FROM reps WHERE id = 'ann'")
               == "f", 15, what="off duty")
    wait_until(lambda: texts_to(k, ANN, "You are off duty"), 15,
               what="off duty text")
    mo(k, ANN, "on")
    wait_until(lambda: d.psql("SELECT on_duty FROM reps WHERE id = 'ann'")
               == "t", 15, what="on duty")
    # NEXT: from the pull queue of team q
    q = capture(d, source="queue", first_name="Quinn")
    wait_until(lambda: d.psql("SELECT queue FROM leads WHERE id = %d" % q)
               == "q", 10, what="queued")
    mo(k, ANN, "NEXT")
    wait_until(lambda: d.psql("SELECT owner FROM leads WHERE id = %d" % q)
               == "ann", 15, what="pulled by NEXT")
    wait_until(lambda: texts_to(k, ANN, "Your next lead: Quinn"), 15,
               what="next lead text")
    mo(k, ANN, "NEXT")
    wait_until(lambda: texts_to(k, ANN, "No lead for you"), 15,
               what="empty queue")


def test_reminder_before_the_window_closes(env):
    d, k, _ = env
    lead = capture(d, first_name="Rita")
    oid, _, code = pending_offer(d, lead)
    wait_until(lambda: texts_to(k, ANN, "Y %s" % code), 15, what="offer")
    # time passes: 30 s of the window left (reminder = 1m)
    d.psql("UPDATE offers SET created_at = now() - interval '5 minutes', "
           "deadline = now() + interval '30 seconds' WHERE id = %d" % oid)
    (_, _, text), = wait_until(lambda: texts_to(k, ANN, "^Reminder: "), 15,
                               what="the reminder")
    assert text.startswith("Reminder: Rita Doe%d, Acme, Troy MI is yours if "
                           "you reply Y %s within 1 min: http://127.0.0.1:"
                           "%d/r/" % (_seq[0], code, d.port)), text
    time.sleep(1.5)
    assert len(texts_to(k, ANN, "^Reminder: ")) == 1
    assert d.psql("SELECT kind FROM sms WHERE offer_id = %d ORDER BY id" %
                  oid).split() == ["offer", "reminder"]
    # the reminder's code still answers the offer
    mo(k, ANN, "Y %s" % code)
    wait_until(lambda: d.psql("SELECT owner FROM leads WHERE id = %d" %
                              lead) == "ann", 15, what="accepted")


def test_bad_replies(env):
    d, k, _ = env
    # an unknown code
    mo(k, ANN, "Y 0000")
    wait_until(lambda: texts_to(k, ANN, "No offer 0000"), 15,
               what="unknown code")
    # an expired offer: its window closed before the answer
    lead = capture(d)
    oid, _, code = pending_offer(d, lead)
    d.psql("UPDATE offers SET deadline = now() - interval '1 second' WHERE "
           "id = %d" % oid)
    mo(k, ANN, "Y %s" % code)
    wait_until(lambda: texts_to(k, ANN, "Too late: offer %s has expired" %
                                code), 15, what="expired")
    wait_until(lambda: d.psql("SELECT owner FROM leads WHERE id = %d" %
                              lead) == "cat", 15,
               what="the expired lead owned by the catch-all")
    # gibberish
    mo(k, ANN, "what is this")
    wait_until(lambda: texts_to(k, ANN, "Unknown command"), 15,
               what="unknown command")
    # a number nobody has: recorded, ignored, not answered
    n = len(k.received())
    mo(k, "+13135550199", "Y 1234")
    wait_until(lambda: d.psql("SELECT sender FROM sms_in WHERE from_number "
                              "= '+13135550199'") == "unknown", 15,
               what="the unknown number recorded")
    time.sleep(1)
    assert len(k.received()) == n


def test_lead_stop_start_and_reply(env):
    d, k, _ = env
    lead = capture(d, phone="(313) 555-0177", first_name="Lena")
    assert d.psql("SELECT phone FROM leads WHERE id = %d" % lead) == \
        "+13135550177"
    mo(k, "+13135550177", "STOP")
    wait_until(lambda: d.psql("SELECT sms_consent FROM leads WHERE id = %d"
                              % lead) == "f", 15, what="STOP")
    mo(k, "+13135550177", "start")
    wait_until(lambda: d.psql("SELECT sms_consent FROM leads WHERE id = %d"
                              % lead) == "t", 15, what="START")
    mo(k, "+13135550177", "Call me tomorrow please")
    wait_until(lambda: d.psql("SELECT data->>'text' FROM events WHERE "
                              "lead_id = %d AND type = 'reply'" % lead) ==
               "Call me tomorrow please", 15, what="the reply event")
    types = d.psql("SELECT type FROM events WHERE lead_id = %d ORDER BY id"
                   % lead).split()
    assert "sms_optout" in types and "sms_optin" in types


def test_forged_and_malformed_requests(env):
    d, k, _ = env
    before = d.psql("SELECT count(*) FROM sms_in")
    sms = d.psql("SELECT id FROM sms WHERE gateway = 'kannel' ORDER BY id "
                 "LIMIT 1")
    status = d.psql("SELECT status FROM sms WHERE id = %s" % sms)
    q = urllib.parse.urlencode
    # a wrong secret, no secret, a secret of another length
    for s in ("kannel-secret-0123456788", "", "x"):
        r = d.get("/sms/in/kannel?" + q({"secret": s, "from": ANN,
                                         "text": "Y 1234"}))
        assert r.status == 403, r
        r = d.get("/sms/dlr/kannel?" + q({"secret": s, "id": sms,
                                          "status": "2"}))
        assert r.status == 403, r
    # the header works like the parameter
    r = d.request("GET", "/sms/dlr/kannel?" + q({"id": sms, "status": "8"}),
                  headers={"X-Leadcast-Secret": "nope"})
    assert r.status == 403
    # the web gateway takes 127.0.0.1 only: the allow-list passes us
    # (see the http gateway test); an unknown gateway is 404
    assert d.get("/sms/in/nope?from=1&text=x").status == 404
    assert d.psql("SELECT count(*) FROM sms_in") == before
    assert d.psql("SELECT status FROM sms WHERE id = %s" % sms) == status
    # malformed reports: no status, a bad id, neither id nor message id
    for params in ({"id": sms}, {"id": "12x", "status": "1"},
                   {"id": "-3", "status": "1"}, {"status": "1"}):
        params["secret"] = SECRET
        r = d.get("/sms/dlr/kannel?" + q(params))
        assert r.status == 400, (params, r)
    # a report for a message we never sent
    r = d.get("/sms/dlr/kannel?" + q({"secret": SECRET, "id": 999999,
                                      "status": "1"}))
    assert r.status == 404
    assert d.psql("SELECT status FROM sms WHERE id = %s" % sms) == status
    # inbound: a sender that is no phone number, missing text
    r = d.get("/sms/in/kannel?" + q({"secret": SECRET, "from": "Acme",
                                     "text": "hi"}))
    assert r.status == 400 and "phone number" in r.text
    r = d.get("/sms/in/kannel?" + q({"secret": SECRET, "from": ANN}))
    assert r.status == 400
    assert d.psql("SELECT count(*) FROM sms_in") == before


# ---- the generic http gateway ------------------------------------------------------

def test_http_gateway(env):
    d, k, web = env
    web.mode = "ok"
    n0 = len(web.requests)
    lead = capture(d, source="web", first_name="Wes")
    oid, rep, code = pending_offer(d, lead)
    assert rep == "bob"
    wait_until(lambda: len(web.requests) > n0, 15, what="the API request")
    path, headers, form = web.requests[-1]
    assert path == "/Accounts/AC1/Messages.json"
    assert headers["Authorization"] == "Basic " + base64.b64encode(
        b"AC1:tok").decode()
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form["To"] == [BOB] and form["From"] == ["+15555550100"]
    assert form["Body"][0].startswith("New lead: Wes Doe")
    assert "Y %s" % code in form["Body"][0]
    cb = form["StatusCallback"][0]
    assert cb.startswith("http://127.0.0.1:%d/sms/dlr/web?id=" % d.port)
    row = wait_until(lambda: [r for r in sms_rows(d, "offer_id = %d" % oid)
                              if r[2] == "sent"], 10, what="sent")[0]
    sid = d.psql("SELECT gateway_msgid FROM sms WHERE id = %s" % row[0])
    assert re.fullmatch(r"SM\d+", sid)
    # bob is told by email too (notify = sms, email)
    wait_until(lambda: mails_to(d, "bob@reps.example"), 10, what="email")
    # the delivery report, by the gateway's id, posted as a form
    r = d.request("POST", "/sms/dlr/web", body=urllib.parse.urlencode(
        {"MessageSid": sid, "MessageStatus": "delivered"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    assert d.psql("SELECT status || '|' || dlr_status FROM sms WHERE id = "
                  "%s" % row[0]) == "delivered|delivered"
    # a reply through this gateway (Twilio's names), answered through it
    n1 = len(web.requests)
    r = d.request("POST", "/sms/in/web", body=urllib.parse.urlencode(
        {"From": BOB, "To": "+15555550100", "Body": "Y %s" % code}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    assert d.psql("SELECT owner FROM leads WHERE id = %d" % lead) == "bob"
    wait_until(lambda: len(web.requests) > n1 and "The lead is yours" in
               web.requests[-1][2]["Body"][0], 10, what="the reply text")


def test_http_gateway_500_and_hanging_fail_over(env):
    d, k, web = env
    for mode in ("500", "hang"):
        web.mode = mode
        n0 = len(web.requests)
        lead = capture(d, source="web", first_name="Fay" + mode)
        oid, _, code = pending_offer(d, lead)
        # two attempts (retries = 1), then Kannel takes it
        wait_until(lambda: len(web.requests) >= n0 + 2, 15,
                   what="%s: two attempts" % mode)
        wait_until(lambda: texts_to(k, BOB, "Y %s" % code), 20,
                   what="%s: failed over to Kannel" % mode)
        row = sms_rows(d, "offer_id = %d" % oid)[0]
        assert row[1] == "kannel"
        assert ("HTTP 500" if mode == "500" else "no answer") in \
            d.log()
    web.mode = "ok"


def test_email2sms_gateway(env):
    d, _, _ = env
    lead = capture(d, source="carrier", first_name="Eva")
    oid, rep, code = pending_offer(d, lead)
    assert rep == "eva"
    msg = wait_until(lambda: mails_to(d, "3135550104@txt.carrier.example"),
                     15, what="the carrier email")[0]
    body = msg[1].decode(errors="replace").replace("=\r\n", "")
    assert "New lead: Eva Doe" in body and "Reply Y %s" % code in body
    wait_until(lambda: [r for r in sms_rows(d, "offer_id = %d" % oid)
                        if r[1] == "carrier" and r[2] == "sent"], 10,
               what="recorded as sent")
    # the rep's own address got nothing: the text went
    assert not mails_to(d, "eva@reps.example")


def test_https_gateway_verifies_certificates(env):
    d, _, _ = env
    # the gateway's own CA (ca_file): the certificate of 127.0.0.1 passes
    n0 = len(d.tls.requests)
    lead = capture(d, source="tls", first_name="Tia")
    oid, rep, code = pending_offer(d, lead)
    assert rep == "tia"
    wait_until(lambda: len(d.tls.requests) > n0, 15, what="the TLS request")
    path, _, form = d.tls.requests[-1]
    assert path == "/Accounts/AC2/Messages.json"
    assert "Y %s" % code in form["Body"][0]
    row = wait_until(lambda: [r for r in sms_rows(d, "offer_id = %d" % oid)
                              if r[2] == "sent"], 10, what="sent over TLS")[0]
    # a failed delivery report: tia is told by SMS only, so the offer
    # email goes at once (and only once)
    assert not mails_to(d, "tia@reps.example")
    for _ in range(2):
        r = d.get("/sms/dlr/tls?id=%s&status=failed" % row[0])
        assert r.status == 200, r
    assert d.psql("SELECT status || '|' || error FROM sms WHERE id = %s" %
                  row[0]) == "failed|delivery report: failed"
    wait_until(lambda: mails_to(d, "tia@reps.example"), 10,
               what="the email after a failed report")
    time.sleep(0.5)
    assert len(mails_to(d, "tia@reps.example")) == 1
    # the system's CAs do not know it: refused before anything is sent
    n0 = len(d.tls.requests)
    lead = capture(d, source="tlsbad", first_name="Tom")
    oid, rep, _ = pending_offer(d, lead)
    assert rep == "tom"
    row = wait_until(lambda: [r for r in sms_rows(d, "offer_id = %d" % oid)
                              if r[2] == "failed"], 15,
                     what="refused certificate")[0]
    assert "certificate verify failed" in row[5], row
    assert len(d.tls.requests) == n0
    # tom is told by SMS only: the offer email came instead
    wait_until(lambda: mails_to(d, "tom@reps.example"), 10,
               what="the fallback email")


def test_report_sms(env):
    d, _, _ = env
    r = harness.cli(d.conf_path, "--json", "report", "sms")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    gws = {g["gateway"]: g for g in doc["gateways"]}
    k = gws["kannel"]
    assert k["messages"] >= 5 and k["delivered"] >= 1
    assert k["messages"] == sum(k[s] for s in ("queued", "sending", "sent",
                                               "delivered", "failed"))
    assert 0 < k["delivery_rate"] <= 1
    assert k["send_p50_s"] >= 0
    assert doc["inbound"]["rep"] >= 1 and "unknown" in doc["inbound"]
    r = harness.cli(d.conf_path, "report", "sms", "--since", "1d")
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    assert "GATEWAY" in r.stdout and "kannel" in r.stdout
    assert re.search(r"received: \d+ from reps, \d+ from leads, \d+ from "
                     r"unknown numbers", r.stdout), r.stdout
    r = harness.cli(d.conf_path, "report", "sms", "--csv")
    assert r.returncode == 0 and r.stdout.startswith("gateway,messages,")
    assert d.get("/api/v1/reports/sms?since=yesterday",
                 token=d.token).status == 400
    assert d.get("/api/v1/reports/sms").status == 401


# ---- Kannel down: the email at once ------------------------------------------------

def test_kannel_down_offer_by_email(env):
    d, k, _ = env
    k.stop()
    try:
        t0 = time.monotonic()
        lead = capture(d, first_name="Eve")
        oid, _, code = pending_offer(d, lead)
        # ann is told by SMS only: the email comes at the first failure
        msgs = wait_until(lambda: [m for m in mails_to(d, "ann@reps.example")
                                   if "Eve" in m[2]["Subject"]], 15,
                          what="the fallback email")
        harness.note_timing("sms: Kannel down, offer email after",
                            time.monotonic() - t0)
        body = msgs[0][1].decode(errors="replace").replace("=\r\n", "")
        assert "/r/" in body
        # the text is retried once, then fails (no fail-over for kannel)
        row = wait_until(lambda: [r for r in sms_rows(
            d, "offer_id = %d" % oid) if r[2] == "failed"], 15,
            what="the text failed")[0]
        assert "no answer" in row[5]
        assert d.psql("SELECT fallback_at IS NOT NULL FROM sms WHERE id = "
                      "%s" % row[0]) == "t"
        assert "sms_failed" in d.psql("SELECT type FROM events WHERE lead_id "
                                      "= %d" % lead).split()
        # one email only
        time.sleep(1)
        assert len([m for m in mails_to(d, "ann@reps.example")
                    if "Eve" in m[2]["Subject"]]) == 1
    finally:
        k.start()
