"""
Bounce and complaint processing against a real Dovecot (dovecottools):
one daemon reads eight mailboxes at once, of two Dovecot servers (one
offering IDLE, one not):

  idle   IMAP with IDLE, delete, review folder "Review", poll 30s (only
         IDLE can make it quick)
  seen   IMAP without IDLE, mark seen, soft bounces counted in a window
  pop    POP3, delete
  poll   IMAP on the server without IDLE, move to "Processed"
  bad    IMAP with a wrong password: a clear log line, nothing touched,
         and the others are not held up
  drop   IMAP through a proxy that cuts the connection in the middle of a
         fetch
  tls    IMAPS with the server's (self-signed) certificate as ca_file
  tlsbad IMAPS trusting only the system's CAs: refused, said, untouched

The campaign "news" goes to 20 subscribers through the maildir transport;
the bounces are written as real DSN (RFC 3464), ARF (RFC 5965), RFC 3834
auto-reply and plain-text (qmail) messages naming those deliveries by their
VERP address (tokens computed here from the url_key), the original's
Message-ID or nothing but the recipient. Needs dovecot-imapd and
dovecot-pop3d.
"""
import os
import socket
import subprocess
import threading
import time

import pytest

import dovecottools
import harness
import mailtools as mt
from harness import Raw, wait_until

pytestmark = pytest.mark.skipif(not dovecottools.available(),
                                reason="dovecot-imapd is not installed")

DOMAIN = "example.com"
N = 20


# ---- messages ------------------------------------------------------------------

def dsn(to, rcpt, status, diag, orig_id, msg_id, action="failed"):
    return ("""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{msg_id}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="BOUND"

--BOUND
Content-Type: text/plain

This is the mail system at host mx.example.net.
I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 23 Nov 2026 03:00:00 +0000

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.{rdom}
Diagnostic-Code: smtp; {diag}

--BOUND
Content-Type: text/rfc822-headers

From: Acme News <news@example.com>
To: {rcpt}
Subject: News
Message-ID: <{orig_id}>

--BOUND--
""".format(to=to, rcpt=rcpt, status=status, diag=diag, orig_id=orig_id,
           msg_id=msg_id, action=action, rdom=rcpt.split("@")[1])).encode()


def arf(rcpt, orig_id, msg_id):
    return ("""\
From: Feedback Loop <fbl@isp.example.net>
To: abuse@example.com
Subject: Complaint about message from 192.0.2.1
Message-ID: <{msg_id}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
 boundary="ARFB"

--ARFB
Content-Type: text/plain

This is an email abuse report for an email message received from IP
192.0.2.1.

--ARFB
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces+x@example.com>
Original-Rcpt-To: <{rcpt}>
Source-IP: 192.0.2.1

--ARFB
Content-Type: text/rfc822-headers

From: Acme News <news@example.com>
To: {rcpt}
Subject: News
Message-ID: <{orig_id}>

--ARFB--
""".format(rcpt=rcpt, orig_id=orig_id, msg_id=msg_id)).encode()


def autoreply(rcpt, orig_id, msg_id):
    return ("""\
From: {rcpt}
To: news@example.com
Subject: Out of office: News
Message-ID: <{msg_id}>
In-Reply-To: <{orig_id}>
References: <{orig_id}>
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away until Monday with no access to email.
""".format(rcpt=rcpt, orig_id=orig_id, msg_id=msg_id)).encode()


def qmail(to, rcpt, msg_id):
    return ("""\
From: MAILER-DAEMON@mx.example.org
To: {to}
Subject: failure notice
Message-ID: <{msg_id}>

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
192.0.2.25 does not like recipient.
Remote host said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown
Giving up on 192.0.2.25.

--- Below this line is a copy of the message.

From: news@example.com
To: {rcpt}
Subject: News
""".format(to=to, rcpt=rcpt, msg_id=msg_id)).encode()


def unrelated(i):
    return ("""\
From: Jane Customer <jane{i}@customer.example>
To: bounces@example.com
Subject: Question about my order {i}
Message-ID: <order-{i}@customer.example>

Hello, where is my order?
""".format(i=i)).encode()


def unreadable(to, msg_id):
    return ("""\
From: MAILER-DAEMON@weird.example.net
To: {to}
Subject: something happened
Message-ID: <{msg_id}>
Content-Type: multipart/mixed; boundary="never-closed"

--never-closed
Content-Type: text/plain; charset=x-unknown-8bit

\xe9\xe8 ?? \xff
""".format(to=to, msg_id=msg_id)).encode("latin-1")


# ---- a proxy that cuts one connection in the middle of a fetch ---------------

class CuttingProxy:
    """127.0.0.1:port -> target. When armed, the next server-to-client
    stream carrying a FETCH body is cut after `after` bytes of it."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.armed = False
        self.cuts = 0
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump, args=(c, s, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, True),
                             daemon=True).start()

    def _pump(self, src, dst, from_server):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_server and self.armed and b"FETCH" in data:
                    self.armed = False
                    self.cuts += 1
                    dst.sendall(data[:len(data) // 2])
                    break
                dst.sendall(data)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.stopping = True
        self.sock.close()


# ---- the environment ---------------------------------------------------------

class Env:
    pass


@pytest.fixture(scope="module")
def env():
    e = Env()
    e.tmp = harness.TempDir("bnc")
    e.dv = dovecottools.Dovecot(e.tmp, name="dv1", idle=True)
    e.dv2 = dovecottools.Dovecot(e.tmp, name="dv2", idle=False, tls=True)
    for u in ("idle", "seen", "pop", "bad"):
        e.dv.add_user(u, "pw-" + u)
    for u in ("poll", "drop", "tls", "tlsbad"):
        e.dv2.add_user(u, "pw-" + u)
    e.dv.deliver("bad", unrelated(99))
    e.dv2.deliver("tlsbad", unrelated(98))
    e.dv.start()
    e.dv2.start()
    e.proxy = CuttingProxy(e.dv2.imap_port)
    outbox = e.tmp.sub("outbox", owner_daemon=True)
    mt.write_file(os.path.join(e.tmp.path, "tpl", "news.html.mustache"),
                  "<p>Hello {{first_name}}</p>\n")
    mt.write_file(os.path.join(e.tmp.path, "camp", "news.conf"),
                  mt.campaign_text(**{"from": "Acme <news@example.com>",
                                      "subject": "News", "html": "news.html",
                                      "lists": ["news"]}))
    boxes = [
        e.dv.mailbox_conf("idle", "idle", poll="30s", review_folder="Review"),
        e.dv.mailbox_conf("seen", "seen", action="seen", idle=False),
        e.dv.mailbox_conf("pop", "pop", protocol="pop3"),
        e.dv2.mailbox_conf("poll", "poll", action="move",
                           move_to="Processed", review_folder="Review"),
        e.dv.mailbox_conf("bad", "bad", password="wrong-password"),
        e.dv2.mailbox_conf("drop", "drop", port=e.proxy.port, timeout="3s"),
        e.dv2.mailbox_conf("tls", "tls", protocol="imaps", ca_file=e.dv2.cert),
        e.dv2.mailbox_conf("tlsbad", "tlsbad", protocol="imaps"),
    ]
    extra = ['list "news" { }', "mail {", '\ttransport = "maildir:outbox"',
             "\tsoft_bounce_limit = 2", "\tsoft_bounce_window = 7d", "}"]
    extra += "\n".join(boxes).splitlines()
    e.d = harness.Daemon(e.tmp, name="bnc", top={"campaigns": "camp"},
                         extra_lines=extra)
    try:
        e.d.start(timeout=30)
        mt.add_subscribers(e.d, "news", [
            dict(email="r%d@dest%d.example" % (i, i), first_name="R%d" % i)
            for i in range(N)])
        mt.start_campaign(e.d, "news")
        mt.wait_done(e.d, "news")
        e.key = mt.url_key(e.d)
        rows = e.d.psql("SELECT id, email, message_id FROM deliveries "
                        "ORDER BY id").splitlines()
        e.dl = [dict(id=int(r.split("|")[0]), email=r.split("|")[1],
                     mid=r.split("|")[2]) for r in rows]
        assert len(e.dl) == N
        yield e
    finally:
        e.d.cleanup()
        e.proxy.close()
        e.dv.stop()
        e.dv2.stop()
        e.tmp.cleanup()


def verp(e, i):
    return "bounces+%s@%s" % (mt.url_token(e.key, "b", e.dl[i]["id"]), DOMAIN)


def q1(e, sql):
    return e.d.psql(sql).strip()


def bounce_rows(e, i):
    return int(q1(e, "SELECT count(*) FROM bounces WHERE delivery_id = %d"
                  % e.dl[i]["id"]))


# ---- the tests -----------------------------------------------------------------

def test_imap_idle_effects_and_review(env):
    e = env
    d0, d1, d2, d3 = e.dl[0], e.dl[1], e.dl[2], e.dl[3]
    hard = dsn(verp(e, 0), d0["email"], "5.1.1", "550 5.1.1 <%s>: "
               "Recipient address rejected: User unknown in virtual mailbox "
               "table" % d0["email"], d0["mid"], "hard0@mx.example.net")
    # the soft one carries no VERP address: matched by the Message-ID
    soft = dsn("bounces@example.com", d1["email"], "4.2.2", "452 4.2.2 "
               "Mailbox full", d1["mid"], "soft1@mx.example.net")
    t0 = time.time()
    for raw in (hard, soft, arf(d2["email"], d2["mid"], "arf2@isp"),
                autoreply(d3["email"], d3["mid"], "ooo3@dest3"),
                unrelated(1), unreadable("bounces@example.com", "weird@x"),
                hard):         # the same report twice: counted once
        e.dv.deliver("idle", raw)

    def settled():
        return (e.dv.count("idle") == 1 and
                e.dv.count("idle", "Review") == 1)
    wait_until(settled, 20, what="idle mailbox processed")
    took = time.time() - t0
    assert took < 15, "IDLE should have woken the reader (%.1f s)" % took
    # the one left is the unrelated mail, untouched
    (_, left), = e.dv.messages("idle")
    assert b"Question about my order 1" in left
    (_, rev), = e.dv.messages("idle", "Review")
    assert b"weird@x" in rev
    # hard: delivery bounced, suppressed everywhere, counted once
    assert q1(e, "SELECT status || ' ' || smtp_status FROM deliveries "
              "WHERE id = %d" % d0["id"]) == "bounced 5.1.1"
    assert q1(e, "SELECT reason FROM suppressions WHERE lower(email) = '%s' "
              "AND list_id IS NULL" % d0["email"]) == "hard_bounce"
    assert bounce_rows(e, 0) == 1
    assert q1(e, "SELECT hard_bounces FROM leads WHERE lower(email) = '%s'"
              % d0["email"]) == "1"
    assert q1(e, "SELECT matched_by FROM bounces WHERE delivery_id = %d"
              % d0["id"]) == "verp"
    # soft: counted, not suppressed (limit 2)
    assert q1(e, "SELECT class || ' ' || reason || ' ' || matched_by FROM "
              "bounces WHERE delivery_id = %d" % d1["id"]) == \
        "soft mailbox_full message_id"
    assert q1(e, "SELECT count(*) FROM suppressions WHERE lower(email) = "
              "'%s'" % d1["email"]) == "0"
    # complaint: unsubscribed from the list and suppressed everywhere
    assert q1(e, "SELECT s.status FROM subscriptions s JOIN leads l ON "
              "l.id = s.lead_id WHERE lower(l.email) = '%s'" % d2["email"]) \
        == "unsubscribed"
    assert q1(e, "SELECT reason FROM suppressions WHERE lower(email) = '%s'"
              % d2["email"]) == "complaint"
    # auto-reply: a reply event, not a bounce
    assert q1(e, "SELECT count(*) FROM events WHERE type = 'reply' AND "
              "delivery_id = %d" % d3["id"]) == "1"
    assert q1(e, "SELECT status FROM deliveries WHERE id = %d" % d3["id"]) \
        == "sent"
    assert q1(e, "SELECT count(*) FROM suppressions WHERE lower(email) = "
              "'%s'" % d3["email"]) == "0"
    # the campaign's report counts them
    rep = mt.report(e.d, "news")
    assert rep["events"].get("bounce", 0) >= 2
    assert rep["events"].get("complaint") == 1
    assert rep["bounces"]["hard"] >= 1 and rep["bounces"]["soft"] >= 1
    assert rep["bounces"]["complaints"] == 1
    assert rep["bounces"]["auto_replies"] == 1
    # the review list names the unreadable one; test parses a file
    out = harness.cli(e.d.conf_path, "bounces", "review", "--json")
    assert out.returncode == 0, out.stderr
    doc = __import__("json").loads(out.stdout)
    assert any(b.get("subject") == "something happened"
               for b in doc["review"]), doc["review"]
    p = os.path.join(e.tmp.path, "hard.eml")
    with open(p, "wb") as f:
        f.write(hard)
    out = harness.cli(e.d.conf_path, "bounces", "test", p)
    assert out.returncode == 0, out.stderr
    assert "hard" in out.stdout and "user_unknown" in out.stdout
    assert "5.1.1" in out.stdout


def test_seen_soft_window_and_restart(env):
    e = env
    d4 = e.dl[4]
    for k in range(2):
        e.dv.deliver("seen", dsn(verp(e, 4), d4["email"], "4.2.2", "452 4.2.2 "
                                 "Mailbox over quota", d4["mid"],
                                 "soft4-%d@mx" % k))
    e.dv.deliver("seen", unrelated(2))
    wait_until(lambda: len(e.dv.seen("seen")) == 2, 20,
               what="two soft bounces marked seen")
    # the second soft bounce within the window suppresses
    assert q1(e, "SELECT reason FROM suppressions WHERE lower(email) = '%s'"
              % d4["email"]) == "soft_bounce"
    assert q1(e, "SELECT soft_bounces FROM leads WHERE lower(email) = '%s'"
              % d4["email"]) == "2"
    assert e.dv.count("seen") == 3      # seen mode keeps them all
    # a crash between recording and marking: the flags lost, the daemon
    # restarted; the messages are recognized, marked again, not counted
    md = os.path.join(e.dv.maildir("seen"), "cur")
    for n in os.listdir(md):
        if ":2," in n:
            os.rename(os.path.join(md, n), os.path.join(md, n.split(":2,")[0]
                                                         + ":2,"))
    e.d.stop()
    e.d.start(timeout=30)
    wait_until(lambda: len(e.dv.seen("seen")) == 2, 20,
               what="marked seen again after the restart")
    time.sleep(1.5)
    assert q1(e, "SELECT soft_bounces FROM leads WHERE lower(email) = '%s'"
              % d4["email"]) == "2"
    assert bounce_rows(e, 4) == 2
    # unrelated mail is never marked
    assert not any("order 2" in n for n in e.dv.seen("seen"))
    names = dict(e.dv.messages("seen"))
    seen_bodies = [names[n] for n in e.dv.seen("seen")]
    assert all(b"order 2" not in b for b in seen_bodies)


def test_pop3_delete(env):
    e = env
    d5 = e.dl[5]
    e.dv.deliver("pop", qmail(verp(e, 5), d5["email"], "q5@mx"))
    e.dv.deliver("pop", unrelated(3))
    wait_until(lambda: e.dv.count("pop") == 1 and bounce_rows(e, 5) == 1,
               20, what="POP3 mailbox processed")
    (_, left), = e.dv.messages("pop")
    assert b"order 3" in left
    assert q1(e, "SELECT status FROM deliveries WHERE id = %d" % d5["id"]) \
        == "bounced"
    assert q1(e, "SELECT format FROM bounces WHERE delivery_id = %d"
              % d5["id"]) == "qmail"


def test_poll_without_idle_move(env):
    e = env
    d6 = e.dl[6]
    e.dv2.deliver("poll", dsn(verp(e, 6), d6["email"], "5.1.1", "550 5.1.1 "
                              "no such user", d6["mid"], "hard6@mx"))
    e.dv2.deliver("poll", unreadable("bounces@example.com", "weird6@x"))
    e.dv2.deliver("poll", unrelated(4))
    wait_until(lambda: e.dv2.count("poll", "Processed") == 1 and
               e.dv2.count("poll", "Review") == 1 and
               e.dv2.count("poll") == 1, 20,
               what="moved to Processed and Review, the rest left")
    (_, left), = e.dv2.messages("poll")
    assert b"order 4" in left
    assert bounce_rows(e, 6) == 1


def test_wrong_credentials_logged_nothing_touched(env):
    e = env
    wait_until(lambda: "mailbox bad" in e.d.log() and "refused" in
               e.d.log(), 15, what="a log line for the wrong password")
    line = [l for l in e.d.log().splitlines() if "mailbox bad" in l and
            "refused" in l][0]
    assert "login as bad refused" in line, line
    assert e.dv.count("bad") == 1
    assert e.d.metric("leadcast_bounce_mailbox_errors_total") >= 1


def test_dropped_connection_mid_fetch(env):
    e = env
    e.proxy.armed = True
    for i in (7, 8, 9):
        e.dv2.deliver("drop", dsn(verp(e, i), e.dl[i]["email"], "5.1.1",
                                  "550 5.1.1 unknown user", e.dl[i]["mid"],
                                  "hard%d@mx" % i))
    wait_until(lambda: e.dv2.count("drop") == 0, 30,
               what="the drop mailbox emptied after the cut")
    assert e.proxy.cuts == 1
    for i in (7, 8, 9):
        assert bounce_rows(e, i) == 1
    assert "mailbox drop" in e.d.log()


def test_imaps_certificate_checked(env):
    e = env
    d10 = e.dl[10]
    e.dv2.deliver("tls", dsn(verp(e, 10), d10["email"], "5.1.1", "550 5.1.1 "
                             "unknown", d10["mid"], "hard10@mx"))
    wait_until(lambda: e.dv2.count("tls") == 0 and bounce_rows(e, 10) == 1,
               20, what="the imaps mailbox processed")
    wait_until(lambda: "certificate verify failed" in e.d.log(), 15,
               what="a log line for the unverified certificate")
    line = [l for l in e.d.log().splitlines() if "mailbox tlsbad" in l and
            "certificate" in l][0]
    assert "TLS: certificate verify failed" in line, line
    assert e.dv2.count("tlsbad") == 1
