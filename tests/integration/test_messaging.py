"""
Campaigns end to end with real peers: the maildir transport, tracking
tokens computed independently in Python, Postfix's smtp-sink as the relay
(accepting, answering 4xx, answering 5xx), pause/resume/cancel under a rate
limit, kill -9 in the middle of a 3000-recipient campaign, DKIM signatures
verified with dkimpy, bad campaign files, bad recipients and test copies.

Daemons (each with its own embedded PostgreSQL) shared by the module:
  mail_d   maildir transport, DKIM (RSA + Ed25519) for signed.example.com,
           max_message_size = 64K: end to end, tracking, campaign rate,
           DKIM, bad input (and SIGHUP with it), send-test
  smtp_d   relay to an smtp-sink that tests restart with other answers
  rate_d   the default transport (state_dir/outbox), mail.rate = 400/s
and of their own: the crash test (relay to its own smtp-sink, killed with
SIGKILL and restarted), the sequence of campaigns (STARVATION_BUG), the
refused configurations.

Subscribers are set up with psql (there is no import API yet); tokens are
computed from the url_key setting (mailtools.url_token). Known daemon bugs
are pinned by strict xfail tests (the *_BUG strings say what is wrong).
Needs Postfix's smtp-sink (package postfix) and, for the DKIM test, dkimpy
(python3-dkim).
"""
import base64
import html.parser
import json
import os
import re
import signal
import subprocess
import time

import pytest

import harness
import mailtools as mt
from harness import Raw, cli, wait_until

try:
    import dkim
except ImportError:         # python3-dkim (dkimpy)
    dkim = None

FROM = "Acme News <news@example.com>"
SIGNED_DOMAIN = "signed.example.com"

# ---- templates --------------------------------------------------------------

MAIN_HTML = """\
<!doctype html>
<html><head><meta charset="utf-8"><title>News</title></head>
<body>
<h1>Hi {{first_name}},</h1>
<p>Your plan: {{fields.plan}}.</p>
<p><a href="https://shop.example.com/sale?x=1&amp;y=2" data-tag="sale">Sale</a></p>
<p><a href="https://docs.example.com/guide">Guide</a></p>
<p><a href="https://www.example.com/privacy" data-notrack>Privacy</a></p>
<p><a href="mailto:help@example.com">Mail us</a> or <a href="tel:+15551234567">call</a>.</p>
<p><a href="{{unsubscribe_url}}" data-notrack>Unsubscribe</a></p>
</body></html>
"""
MAIN_TEXT = """\
Hi {{first_name}},

Your plan: {{fields.plan}}.
Sale: https://shop.example.com/sale
Unsubscribe: {{unsubscribe_url}}
"""
PLAIN_HTML = """\
<html><body>
<p>Hello {{first_name}}{{^first_name}}there{{/first_name}}, a short note.</p>
<p><a href="https://www.example.com/note">Read it</a></p>
</body></html>
"""


def big_html():
    """About 50 KB of HTML: under max_message_size (64K) as a template, but
    the message (text part + quoted-printable HTML part) is well over."""
    words = " ".join("word%05d" % i for i in range(5000))
    return "<html><body>\n<p>{{first_name}}</p>\n<p>%s</p>\n</body></html>\n" \
        % words


# lines that begin with a dot, which SMTP's DATA must double (and the
# server undo): one alone on its line would end the message there
DOTS_TEXT = """\
Hi {{first_name}},
.a line that begins with a dot
..two dots
.
...
the end
"""
DOTS_HTML = """\
<html><body>
<p>Hi {{first_name}},</p>
.<p>a dot before a paragraph</p>
.
<p>the end</p>
</body></html>
"""
DOTS_DOMAIN = "dots.example.com"

TEMPLATES = {
    "news/main.html": MAIN_HTML,
    "news/main.text": MAIN_TEXT,
    "news/plain.html": PLAIN_HTML,
    "news/dots.html": DOTS_HTML,
    "news/dots.text": DOTS_TEXT,
}


def write_templates(tmp, extra=None):
    """Our templates plus the project's pages (unsubscribe page)."""
    for name, text in list(TEMPLATES.items()) + list((extra or {}).items()):
        mt.write_file(os.path.join(tmp.path, "tpl", name + ".mustache"), text)
    pages = os.path.join(harness.SRCDIR, "templates", "pages")
    for n in os.listdir(pages):
        with open(os.path.join(pages, n)) as f:
            mt.write_file(os.path.join(tmp.path, "tpl", "pages", n), f.read())


def write_campaign(tmp, camp_dir, name, **keys):
    keys.setdefault("from", FROM)
    keys.setdefault("subject", "News for {{first_name}}")
    keys.setdefault("html", "news/plain.html")
    return mt.write_file(os.path.join(tmp.path, camp_dir, name + ".conf"),
                         mt.campaign_text(**keys))


def list_lines(*names):
    return ['list "%s" { }' % n for n in names]


def mail_section(**keys):
    return ["mail {"] + ["\t%s = %s" % (k, harness._fmt(v))
                         for k, v in keys.items()] + ["}"]


class Links(html.parser.HTMLParser):
    """hrefs of <a> and srcs of <img>, in order."""

    def __init__(self, text):
        super().__init__()
        self.hrefs, self.imgs = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        elif tag == "img":
            self.imgs.append(a.get("src"))


def parts(msg):
    """(text, html) bodies of a multipart/alternative message."""
    text = html_ = None
    for p in msg.iter_parts():
        if p.get_content_type() == "text/plain":
            text = p.get_content()
        elif p.get_content_type() == "text/html":
            html_ = p.get_content()
    return text, html_


def deliveries(d, campaign, cols="email, status"):
    """[tuple] of a campaign's deliveries (not test copies), by id."""
    out = d.psql("SELECT %s FROM deliveries WHERE campaign_id = (SELECT id "
                 "FROM campaigns WHERE name = %s) AND (vars IS NULL OR NOT "
                 "vars ? 'test') ORDER BY id" % (cols, mt.sql_str(campaign)))
    return [tuple(l.split("|")) for l in out.splitlines()]


def wait_final(d, campaign, n, timeout=30):
    """Until the campaign has n deliveries (None: any) and none is queued,
    sending or deferred; returns {status: count}."""
    def probe():
        c = mt.delivery_counts(d, campaign)
        if c and (n is None or sum(c.values()) == n) and not any(
                c.get(s) for s in ("queued", "sending", "deferred")):
            return c
        return None
    try:
        return wait_until(probe, timeout, interval=0.1,
                          what="%s: %s deliveries final" % (campaign, n))
    except AssertionError as e:
        raise AssertionError("%s: %r\nlog tail:\n%s" % (
            e, mt.delivery_counts(d, campaign), d.log()[-3000:]))


def events(d, where):
    out = d.psql("SELECT type, lead_id, delivery_id, campaign_id, "
                 "coalesce(link_id, 0) FROM events WHERE %s ORDER BY id" %
                 where)
    return [tuple(l.split("|")) for l in out.splitlines()]


def reload_and_wait(d, ok=True, timeout=10):
    """SIGHUP; wait for the log line of the outcome; the log since."""
    mark = d.mark()
    d.send_signal(signal.SIGHUP)
    want = "configuration reloaded" if ok else "reload failed"
    wait_until(lambda: want in d.log_from(mark), timeout,
               what="reload (%s)" % want)
    return d.log_from(mark)


def campaign_names(d):
    r = d.get("/api/v1/campaigns", token=d.token)
    assert r.status == 200, r
    return {c["name"]: c for c in r.json()["campaigns"]}


# ---- DKIM keys --------------------------------------------------------------

def make_key(tmp, name, algorithm):
    """A private key (0600, owned by the daemon user) and its DNS record."""
    path = os.path.join(tmp.sub("keys"), name + ".pem")
    if algorithm == "rsa":
        argv = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", path]
    else:
        argv = ["openssl", "genpkey", "-algorithm", "ED25519", "-out", path]
    harness.run(argv)
    os.chmod(path, 0o600)
    if harness.IS_ROOT:
        os.chown(path, *harness.daemon_uid_gid())
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout",
                          "-outform", "DER"], capture_output=True,
                         check=True).stdout
    if algorithm == "rsa":
        rec = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    else:   # RFC 8463: the raw 32-byte public key
        rec = "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
    return path, rec


class TableLock:
    """Another session holding a lock on a table for a while: a slow
    database, to make an ordering deterministic."""

    def __init__(self, d, table, seconds, mode="SHARE ROW EXCLUSIVE"):
        self.proc = subprocess.Popen(harness.as_daemon_user([
            harness.pg_bin("psql"), "-X", "-q", "-h", d.sockdir, "-U",
            "leadcast", "-d", "leadcast", "-c",
            "BEGIN; LOCK TABLE %s IN %s MODE; SELECT pg_sleep(%s); "
            "COMMIT;" % (table, mode, seconds)]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd="/")
        wait_until(lambda: d.psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
            "l.relation WHERE c.relname = '%s' AND l.granted AND l.mode = "
            "'%sLock'" % (table, mode.title().replace(" ", ""))) == "1", 5,
            what="lock on %s" % table)

    def wait(self):
        self.proc.wait(30)


STARVATION_BUG = (
    "Since d17b129 (per-campaign rates) a campaign started while the "
    "daemon knows another running (or recently finished) campaign is often "
    "not sent for a long time (30 s and more, or until something else "
    "happens): sender_claim() only claims for the campaigns in its cached "
    "list (s->crates), refresh_running() refreshes it at most once a "
    "second, and on_running() throws the fresh list away whenever a claim "
    "is in flight; but each tick queues the refresh and then a claim for "
    "the stale list, so when the daemon is idle the refresh always comes "
    "back while that claim is in flight and is discarded, again and again. "
    "Only the first campaign after start-up (empty list: no claim) is "
    "safe; the NOTIFY wake-up at start saves some of the others by luck.")


def unstick_if_starved(d, name):
    """A started campaign is claimed promptly (see STARVATION_BUG, fixed:
    test_campaigns_one_after_another keeps it so)."""
    q = ("SELECT count(*) FROM deliveries WHERE campaign_id = (SELECT id "
         "FROM campaigns WHERE name = %s) AND (status <> 'queued' OR "
         "attempts > 0)" % mt.sql_str(name))
    wait_until(lambda: d.psql(q) != "0", 10, what="claims for %s" % name)


def start(d, name):
    """Start a campaign (see unstick_if_starved); the API's answer."""
    doc = mt.start_campaign(d, name)
    if doc["recipients"]:
        unstick_if_starved(d, name)
    return doc


# ---- the shared daemons -----------------------------------------------------

class Env:
    """A started daemon with what the tests need to know about it."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


MAIL_LISTS = ("news", "signed", "badaddr", "huge", "trial", "slow")


@pytest.fixture(scope="module")
def mail_d():
    tmp = harness.TempDir("mail")
    outbox = tmp.sub("outbox", owner_daemon=True)
    write_templates(tmp, {"news/big.html": big_html()})
    rsa_key, rsa_rec = make_key(tmp, "rsa", "rsa")
    ed_key, ed_rec = make_key(tmp, "ed", "ed25519")
    write_campaign(tmp, "camp", "news", subject="{{first_name}}, news for "
                   "{{country}}", preheader="The {{country}} edition",
                   html="news/main.html", text="news/main.text",
                   lists=["news"], audience='country == "US"')
    write_campaign(tmp, "camp", "followup", lists=["news"])
    write_campaign(tmp, "camp", "signed", lists=["signed"],
                   **{"from": "Signed News <news@%s>" % SIGNED_DOMAIN})
    write_campaign(tmp, "camp", "badaddr", lists=["badaddr"])
    write_campaign(tmp, "camp", "huge", lists=["huge"], html="news/big.html")
    write_campaign(tmp, "camp", "slow", lists=["slow"], rate=20)
    for name in ("trial", "trial2"):
        write_campaign(tmp, "camp", name, lists=["trial"],
                       subject="Trial for {{first_name}}{{^first_name}}you"
                       "{{/first_name}}")
    extra = list_lines(*MAIL_LISTS) + mail_section(
        transport="maildir:outbox", max_message_size=Raw("64K"),
        fill=10) + [
        'dkim "%s" {' % SIGNED_DOMAIN, "\tselector = s1",
        '\tkey = "%s"' % rsa_key, "\talgorithm = rsa-sha256", "}",
        'dkim "%s" {' % SIGNED_DOMAIN, "\tselector = e1",
        '\tkey = "%s"' % ed_key, "\talgorithm = ed25519-sha256", "}"]
    d = harness.Daemon(tmp, name="mail", top={"campaigns": "camp"},
                       extra_lines=extra)
    try:
        d.start(timeout=30)
        d.psql("INSERT INTO lists (name) SELECT unnest(ARRAY[%s]) "
               "ON CONFLICT DO NOTHING" % ", ".join(
                   mt.sql_str(n) for n in MAIL_LISTS))
        yield Env(d=d, tmp=tmp, maildir=mt.Maildir(outbox),
                  key=mt.url_key(d), base=d.http["public_url"],
                  dns={"s1._domainkey.%s." % SIGNED_DOMAIN: rsa_rec,
                       "e1._domainkey.%s." % SIGNED_DOMAIN: ed_rec})
    finally:
        d.cleanup()
        tmp.cleanup()


def relay_daemon(tag, campaigns, lists, mail=None, extra=None):
    """A daemon relaying to its own smtp-sink; returns (tmp, sink, daemon).
    extra(tmp): more configuration lines."""
    tmp = harness.TempDir(tag)
    write_templates(tmp)
    for name, keys in campaigns.items():
        write_campaign(tmp, "camp", name, **keys)
    sink = mt.SmtpSink(tmp)
    sink.start()
    m = {"transport": "smtp://127.0.0.1:%d" % sink.port}
    m.update(mail or {})
    d = harness.Daemon(tmp, name=tag, top={"campaigns": "camp"},
                       extra_lines=list_lines(*lists) + mail_section(**m) +
                       (extra(tmp) if extra else []))
    return tmp, sink, d


def dots_dkim(tmp):
    """An RSA key for DOTS_DOMAIN (its DNS record in tmp.dots_record)."""
    key, tmp.dots_record = make_key(tmp, "dots", "rsa")
    return ['dkim "%s" {' % DOTS_DOMAIN, "\tselector = s1",
            '\tkey = "%s"' % key, "\talgorithm = rsa-sha256", "}"]


@pytest.fixture(scope="module")
def smtp_d():
    tmp, sink, d = relay_daemon(
        "smtp", {"relay": {"lists": ["relay"]},
                 "soft": {"lists": ["soft"]},
                 "reject": {"lists": ["reject"]},
                 "nouser": {"lists": ["nouser"]},
                 "dots": {"lists": ["dots"], "html": "news/dots.html",
                          "text": "news/dots.text",
                          "from": "Dot News <news@%s>" % DOTS_DOMAIN}},
        ["relay", "soft", "reject", "nouser", "dots"],
        {"retry_base": Raw("2s"), "tls": Raw("opportunistic")},
        extra=dots_dkim)
    try:
        d.start(timeout=30)
        yield Env(d=d, tmp=tmp, sink=sink, key=mt.url_key(d),
                  base=d.http["public_url"])
    finally:
        d.cleanup()
        sink.stop()
        tmp.cleanup()


# ---- 1. maildir end to end --------------------------------------------------

def news_leads():
    """50 subscribers, the odd ones in the US; one with a non-ASCII name."""
    leads = []
    for i in range(1, 51):
        leads.append(dict(email="reader%d@example.com" % i,
                          first_name="Zoë" if i == 7 else "Reader%d" % i,
                          last_name="Doe", country="US" if i % 2 else "FR",
                          fields='{"plan": "P%d"}' % i))
    return leads


@pytest.fixture(scope="module")
def news(mail_d):
    """The 'news' campaign sent to its 25 US subscribers."""
    d = mail_d.d
    leads = news_leads()
    mt.add_subscribers(d, "news", leads)
    t0 = time.monotonic()
    r = start(d, "news")
    rep = mt.wait_done(d, "news", timeout=30)
    harness.note_timing("maildir: 25 messages, start -> done",
                        time.monotonic() - t0)
    us = {l["email"]: l for l in leads if l["country"] == "US"}
    return Env(start=r, report=rep, leads=leads, us=us,
               msgs=mail_d.maildir.for_list_id("news"))


def test_maildir_end_to_end(mail_d, news):
    d, base = mail_d.d, mail_d.base
    assert news.start["recipients"] == 25
    # exactly the 25 US subscribers, once each
    got = sorted(m[2]["To"].addresses[0].addr_spec for m in news.msgs)
    assert got == sorted(news.us), got
    rows = {r[0]: r for r in deliveries(
        d, "news", "email, status, id, message_id, smtp_code, attempts")}
    assert set(rows) == set(news.us)
    for path, raw, msg in news.msgs:
        addr = msg["To"].addresses[0].addr_spec
        lead = news.us[addr]
        email_, status, did, message_id, code, attempts = rows[addr]
        assert (status, code, attempts) == ("sent", "250", "1")
        did = int(did)
        # headers: personalized subject (RFC 2047 decoded), From, To
        assert msg["Subject"] == "%s, news for US" % lead["first_name"]
        assert msg["From"].addresses[0].addr_spec == "news@example.com"
        assert msg["From"].addresses[0].display_name == "Acme News"
        assert msg["To"].addresses[0].display_name == \
            "%s Doe" % lead["first_name"]
        assert msg["Message-ID"] == "<%s>" % message_id
        assert raw.startswith(b"Return-Path: <bounces+")
        assert re.fullmatch(r"<bounces\+[A-Za-z0-9_-]+@example\.com>",
                            msg["Return-Path"]), msg["Return-Path"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(r"<%s/u/[A-Za-z0-9_-]+>" % re.escape(base),
                            msg["List-Unsubscribe"]), msg["List-Unsubscribe"]
        assert msg["List-Id"] == "news <news.example.com>"
        assert msg["Feedback-ID"]
        assert msg["DKIM-Signature"] is None    # no key for example.com
        # body: text and HTML alternatives, personalized
        assert msg.get_content_type() == "multipart/alternative"
        kinds = [p.get_content_type() for p in msg.iter_parts()]
        assert kinds == ["text/plain", "text/html"], kinds
        text, body = parts(msg)
        assert "Hi %s," % lead["first_name"] in text
        plan = json.loads(lead["fields"])["plan"]
        assert "Your plan: %s." % plan in text
        assert "Your plan: %s." % plan in body
        assert "Hi %s," % lead["first_name"] in body
        assert "The US edition" in body            # the preheader
        links = Links(body)
        tracked = [h for h in links.hrefs if h.startswith(base + "/c/")]
        assert len(tracked) == 2, links.hrefs
        for h in links.hrefs:
            assert "shop.example.com" not in h and "docs.example.com" not in h
        assert "https://www.example.com/privacy" in links.hrefs  # notrack
        assert "mailto:help@example.com" in links.hrefs
        assert "tel:+15551234567" in links.hrefs
        unsub = [h for h in links.hrefs if h.startswith(base + "/u/")]
        assert unsub == [msg["List-Unsubscribe"][1:-1]]
        assert len(links.imgs) == 1 and re.fullmatch(
            r"%s/o/[A-Za-z0-9_-]+\.gif" % re.escape(base), links.imgs[0])
        assert re.search(r"<img [^>]*/o/[^>]*>\s*</body>", body), \
            "the pixel is not right before </body>"
    # the report and the campaign's state
    rep = news.report
    assert rep["status"] == "done"
    assert rep["deliveries"] == {"sent": 25}
    listed = campaign_names(d)
    assert listed["news"]["status"] == "done"
    assert listed["news"]["deliveries"] == {"sent": 25}
    assert listed["followup"]["status"] == "draft"


def test_audience_filled_in_steps(mail_d, news):
    """mail_d makes a started campaign's deliveries 10 recipients at a time
    (mail.fill): the 25 of news came in 3 steps, each once, and the
    campaign was done only once filled."""
    d = mail_d.d
    assert d.psql("SELECT filled_at IS NOT NULL, fill_upto >= (SELECT max(id) "
                  "FROM leads WHERE email IN (%s)) FROM campaigns WHERE name "
                  "= 'news'" % ", ".join(mt.sql_str(a) for a in news.us)) \
        == "t|t"
    # a step is a transaction: its rows share their created_at
    assert d.psql("SELECT count(*), count(DISTINCT lead_id), count(DISTINCT "
                  "created_at) FROM deliveries WHERE campaign_id = %d AND "
                  "vars IS NULL" % mt.campaign_id(d, "news")) == "25|25|3"


def test_parent_deletes_reach_deliveries(mail_d, news):
    """Deliveries have no foreign keys (migration 014): deleting a lead
    still clears its deliveries' lead_id, deleting a campaign still
    deletes its deliveries, by the parents' triggers; rolled back."""
    d = mail_d.d
    cid = mt.campaign_id(d, "news")
    did, lid = d.psql("SELECT id, lead_id FROM deliveries WHERE campaign_id "
                      "= %d AND lead_id IS NOT NULL ORDER BY id LIMIT 1"
                      % cid).split("|")
    out = d.psql(
        "BEGIN; DELETE FROM leads WHERE id = %s; "
        "SELECT coalesce(lead_id::text, 'null') FROM deliveries WHERE id = %s; "
        "SELECT count(*) FROM deliveries WHERE campaign_id = %d; "
        "DELETE FROM campaigns WHERE id = %d; "
        "SELECT count(*) FROM deliveries WHERE campaign_id = %d; ROLLBACK"
        % (lid, did, cid, cid, cid)).split()
    assert out == ["null", "25", "0"], out
    assert d.psql("SELECT lead_id FROM deliveries WHERE id = %s" % did) == lid


# ---- 2. tracking ------------------------------------------------------------

def test_tracking_tokens_open_click(mail_d, news):
    d, key, base = mail_d.d, mail_d.key, mail_d.base
    cid = mt.campaign_id(d, "news")
    links = dict((r.split("|")[1], int(r.split("|")[0])) for r in d.psql(
        "SELECT id, url FROM campaign_links WHERE campaign_id = %d" % cid)
        .splitlines())
    assert set(links) == {"https://shop.example.com/sale?x=1&y=2",
                          "https://docs.example.com/guide"}, links
    rows = {r[0]: (int(r[1]), int(r[2])) for r in deliveries(
        d, "news", "email, id, lead_id")}

    # every token in every message is the one we compute from the key
    for _, _, msg in news.msgs:
        addr = msg["To"].addresses[0].addr_spec
        did = rows[addr][0]
        _, body = parts(msg)
        hrefs = Links(body)
        for url, lid in links.items():
            assert "%s/c/%s" % (base, mt.url_token(key, "c", did, lid)) \
                in hrefs.hrefs
        assert hrefs.imgs == ["%s/o/%s.gif" % (
            base, mt.url_token(key, "o", did))]
        assert msg["List-Unsubscribe"] == "<%s/u/%s>" % (
            base, mt.url_token(key, "u", did))
        assert msg["Return-Path"] == "<bounces+%s@example.com>" % \
            mt.url_token(key, "b", did)

    reader = "reader1@example.com"
    did, lead = rows[reader]
    where = "delivery_id = %d" % did

    # the open pixel
    otok = mt.url_token(key, "o", did)
    r = d.request("GET", "/o/%s.gif" % otok,
                  headers={"User-Agent": "pytest-mail"})
    assert r.status == 200
    assert len(r.body) == 43 and r.body.startswith(b"GIF89a")
    assert r.header("Content-Type") == "image/gif"
    cc = r.header("Cache-Control") or ""
    assert "no-store" in cc and "no-cache" in cc, cc
    assert r.header("Pragma") == "no-cache"
    assert r.header("Expires")
    opened = wait_until(lambda: events(d, where + " AND type = 'open'"), 5,
                        what="open event")
    assert opened == [("open", str(lead), str(did), str(cid), "0")]
    assert d.psql("SELECT user_agent FROM events WHERE type = 'open' AND "
                  + where) == "pytest-mail"

    # the click redirect: to the stored URL, recorded with its link
    sale = links["https://shop.example.com/sale?x=1&y=2"]
    ctok = mt.url_token(key, "c", did, sale)
    r = d.get("/c/" + ctok)
    assert r.status == 302, r
    assert r.header("Location") == "https://shop.example.com/sale?x=1&y=2"
    clicked = wait_until(lambda: events(d, where + " AND type = 'click'"), 5,
                         what="click event")
    assert clicked == [("click", str(lead), str(did), str(cid), str(sale))]
    guide = links["https://docs.example.com/guide"]
    r = d.get("/c/" + mt.url_token(key, "c", did, guide))
    assert (r.status, r.header("Location")) == (
        302, "https://docs.example.com/guide")

    # tampered tokens, wrong kinds, unknown ids: 404, never a redirect,
    # nothing recorded
    before = d.psql("SELECT count(*) FROM events")
    utok = mt.url_token(key, "u", did)
    bad = [
        ("GET", "/o/%s.gif" % mt.tamper(otok)),
        ("GET", "/c/" + mt.tamper(ctok)),
        ("GET", "/c/" + ctok[:-1]),
        ("GET", "/c/" + otok),                      # an open token
        ("GET", "/c/" + mt.url_token(key, "c", did, 999999)),  # no such link
        ("GET", "/c/" + mt.url_token("00" * 32, "c", did, sale)),  # other key
        ("GET", "/u/" + mt.tamper(utok)),
        ("POST", "/u/" + mt.tamper(utok)),
        ("POST", "/u/" + ctok),
        ("GET", "/o/%s.gif" % utok),
    ]
    for method, path in bad:
        r = d.request(method, path, body=b"List-Unsubscribe=One-Click"
                      if method == "POST" else None,
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded"})
        assert r.status == 404, (method, path, r)
        assert r.header("Location") is None, (method, path)
    time.sleep(0.3)     # events are written asynchronously
    assert d.psql("SELECT count(*) FROM events") == before

    # GET /u/ shows a page and changes nothing
    sub_q = ("SELECT s.status FROM subscriptions s JOIN leads l ON "
             "l.id = s.lead_id WHERE l.email = %s" % mt.sql_str(reader))
    sup_q = ("SELECT count(*) FROM suppressions WHERE lower(email) = %s" %
             mt.sql_str(reader))
    r = d.get("/u/" + utok)
    assert r.status == 200, r
    assert "r***@example.com" in r.text and "<form" in r.text
    assert reader not in r.text
    time.sleep(0.2)
    assert d.psql(sub_q) == "confirmed"
    assert d.psql(sup_q) == "0"
    assert not events(d, where + " AND type = 'unsubscribe'")


UNSUB_BUG = ("POST /u/TOKEN answers 503 and unsubscribes nobody: its SQL "
             "(daemon/track_routes.c) has 'list_id = ANY((SELECT list_ids "
             "FROM d))', which PostgreSQL reads as ANY(subquery) and fails "
             "with 'operator does not exist: integer = integer[]'")


def test_one_click_unsubscribe(mail_d, news):
    d, key = mail_d.d, mail_d.key
    rows = {r[0]: (int(r[1]), int(r[2])) for r in deliveries(
        d, "news", "email, id, lead_id")}
    reader = "reader1@example.com"
    did, lead = rows[reader]
    where = "delivery_id = %d" % did
    utok = mt.url_token(key, "u", did)
    sub_q = ("SELECT s.status FROM subscriptions s JOIN leads l ON "
             "l.id = s.lead_id WHERE l.email = %s" % mt.sql_str(reader))
    sup_q = ("SELECT count(*) FROM suppressions WHERE lower(email) = %s" %
             mt.sql_str(reader))
    assert d.psql(sub_q) == "confirmed"

    # RFC 8058 one-click POST unsubscribes
    r = d.request("POST", "/u/" + utok, body=b"List-Unsubscribe=One-Click",
                  headers={"Content-Type":
                           "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    assert d.psql(sub_q) == "unsubscribed"
    assert d.psql("SELECT l.name, s.reason FROM suppressions s JOIN lists l "
                  "ON l.id = s.list_id WHERE lower(s.email) = %s" %
                  mt.sql_str(reader)) == "news|unsubscribe"
    assert [e[0] for e in events(d, where + " AND type = 'unsubscribe'")] \
        == ["unsubscribe"]
    # again: still fine, nothing doubled
    r = d.request("POST", "/u/" + utok, body=b"List-Unsubscribe=One-Click",
                  headers={"Content-Type":
                           "application/x-www-form-urlencoded"})
    assert r.status == 200
    assert d.psql(sup_q) == "1"

    # the page's form (an empty POST) unsubscribes another reader
    reader3 = "reader3@example.com"
    r = d.request("POST", "/u/" + mt.url_token(key, "u", rows[reader3][0]),
                  body=b"", headers={"Content-Type":
                                     "application/x-www-form-urlencoded"})
    assert r.status == 200 and "r***@example.com" in r.text, r

    # a reader (not unsubscribed) on the global suppression list
    reader5 = "reader5@example.com"
    d.psql("INSERT INTO suppressions (email, reason) VALUES (%s, 'manual')" %
           mt.sql_str(reader5))

    # the next campaign to the same list skips all three: the reader on
    # the suppression list is marked 'suppressed' when its turn comes; the
    # unsubscribed ones get no delivery, or a 'suppressed' one
    start(d, "followup")
    counts = wait_final(d, "followup", None)
    frows = dict(deliveries(d, "followup"))
    assert frows.get(reader5) == "suppressed"
    for who in (reader, reader3):
        assert frows.get(who, "suppressed") == "suppressed", (who, frows)
    assert counts.get("sent") == 47 and set(counts) == {"sent",
                                                        "suppressed"}, counts
    fmsgs = mail_d.maildir.for_list_id("followup")
    to = sorted(m[2]["To"].addresses[0].addr_spec for m in fmsgs)
    assert len(to) == 47 and not {reader, reader3, reader5} & set(to)
    # a click token pairing a message with a link of another campaign
    # (only the key can make one: clicks are answered from the link table
    # in memory, without the message's row) goes to that stored link,
    # never elsewhere, and its event does not count the link
    fl = int(d.psql("SELECT id FROM campaign_links WHERE campaign_id = %d" %
                    mt.campaign_id(d, "followup")))
    furl = d.psql("SELECT url FROM campaign_links WHERE id = %d" % fl)
    r = d.get("/c/" + mt.url_token(key, "c", did, fl))
    assert r.status == 302 and r.header("Location") == furl
    assert wait_until(lambda: d.psql(
        "SELECT count(*) FROM events WHERE type = 'click' AND "
        "delivery_id = %d AND link_id IS NULL" % did) == "1", 5)


# ---- 3. SMTP relay: smtp-sink accepting, deferring, refusing ----------------

def sink_restart(sink, *opts):
    sink.stop()
    sink.clear()
    sink.start(*opts)


def test_smtp_relay_sent(smtp_d):
    d, sink, key = smtp_d.d, smtp_d.sink, smtp_d.key
    sink.clear()
    mt.add_many_subscribers(d, "relay", "relay", 20)
    t0 = time.monotonic()
    assert start(d, "relay")["recipients"] == 20
    assert wait_final(d, "relay", 20) == {"sent": 20}
    harness.note_timing("smtp-sink: 20 messages", time.monotonic() - t0)
    rows = {r[0]: r for r in deliveries(
        d, "relay", "email, id, smtp_code, smtp_status, message_id, attempts")}
    for email_, did, code, st, mid, attempts in rows.values():
        assert (code, attempts) == ("250", "1"), rows[email_]
        assert st.startswith("2."), rows[email_]
    tx = wait_until(lambda: (lambda t: t if len(t) >= 20 else None)(
        sink.transactions()), 5, what="20 transactions in the sink")
    assert sorted(r for t in tx for r in t[0]) == sorted(rows), tx
    for rcpts, msg, raw in tx:
        email_, did = rcpts[0], int(rows[rcpts[0]][1])
        # the envelope sender is the VERP address
        assert ("X-Mail-Args: <bounces+%s@example.com>" % mt.url_token(
            key, "b", did)).encode() in raw
        assert msg["To"].addresses[0].addr_spec == email_
        assert msg["Message-ID"] == "<%s>" % rows[email_][4]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mt.wait_done(d, "relay", timeout=10)["deliveries"] == {"sent": 20}


def test_smtp_relay_body_exact(smtp_d):
    """What the relay received is the message as composed and signed,
    byte for byte: the DKIM signature (over the body and the signed
    headers) verifies, and lines that begin with a dot, or are one, arrive
    as written (the body is dot-stuffed once, whatever path it took)."""
    if dkim is None:
        pytest.skip("python3-dkim (dkimpy) not installed")
    d, sink, tmp = smtp_d.d, smtp_d.sink, smtp_d.tmp
    sink.clear()
    mt.add_many_subscribers(d, "dots", "dots", 5)
    assert start(d, "dots")["recipients"] == 5
    assert wait_final(d, "dots", 5) == {"sent": 5}
    tx = wait_until(lambda: (lambda t: t if len(t) >= 5 else None)(
        sink.transactions()), 5, what="5 transactions in the sink")
    rec = {"s1._domainkey.%s." % DOTS_DOMAIN: tmp.dots_record}

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return rec[n].encode() if n in rec else None

    for _, msg, raw in tx:
        # smtp-sink writes what it took with LF line ends, after lines of
        # its own (X-...: and Received:, which no signature covers)
        wire = raw.replace(b"\n", b"\r\n")
        assert dkim.DKIM(wire).verify(dnsfunc=dnsfunc), raw[:2000]
        text = [p for p in msg.walk()
                if p.get_content_type() == "text/plain"][0]
        lines = text.get_content().splitlines()
        assert lines[1:6] == [".a line that begins with a dot",
                              "..two dots", ".", "...", "the end"], lines
        html = [p for p in msg.walk()
                if p.get_content_type() == "text/html"][0].get_content()
        assert ".<p>a dot before a paragraph</p>\n.\n<p>the end</p>" in \
            html.replace("\r\n", "\n"), html


def test_smtp_4xx_deferred_then_sent(smtp_d):
    d, sink = smtp_d.d, smtp_d.sink
    sink_restart(sink, "-r", "RCPT")
    try:
        mt.add_many_subscribers(d, "soft", "soft", 6)
        assert start(d, "soft")["recipients"] == 6
        # all deferred after one attempt, due again retry_base (2 s) later
        q = ("SELECT count(*) FROM deliveries d JOIN campaigns c ON c.id = "
             "d.campaign_id WHERE c.name = 'soft' AND d.status = 'deferred' "
             "AND d.attempts = 1 AND d.next_attempt_at > now() AND "
             "d.next_attempt_at - d.updated_at = interval '2 seconds' AND "
             "d.smtp_code = 450 AND d.smtp_status = '4.3.0'")
        try:
            wait_until(lambda: d.psql(q) == "6", 10, what="6 deferred")
        except AssertionError:
            raise AssertionError("%r" % deliveries(
                d, "soft", "email, status, attempts, next_attempt_at - "
                "updated_at, next_attempt_at > now(), smtp_code, "
                "smtp_status, smtp_message"))
        assert mt.report(d, "soft")["deliveries"] == {"deferred": 6}
        # meanwhile one recipient unsubscribes and another lands on the
        # global suppression list: the retry must send to neither
        # (directly in the database: POST /u/ is broken, see UNSUB_BUG)
        rows = dict(deliveries(d, "soft", "email, id"))
        gone = {"soft2@example.com", "soft3@example.com"}
        d.psql("UPDATE subscriptions SET status = 'unsubscribed' WHERE "
               "lead_id = (SELECT id FROM leads WHERE email = "
               "'soft2@example.com'); INSERT INTO suppressions (email, "
               "reason) VALUES ('SOFT3@example.com', 'manual')")
    finally:
        sink_restart(sink)
    t0 = time.monotonic()
    assert wait_final(d, "soft", 6, timeout=20) == {"sent": 4,
                                                    "suppressed": 2}
    harness.note_timing("4xx: deferred -> sent after the sink's restart",
                        time.monotonic() - t0)
    for email_, status, attempts, code in deliveries(
            d, "soft", "email, status, attempts, smtp_code"):
        if email_ in gone:
            assert status == "suppressed"
        else:
            assert (status, attempts, code) == ("sent", "2", "250")
    got = sorted(r for t in sink.transactions() for r in t[0])
    assert got == sorted(e for e in rows if e not in gone)


def test_smtp_5xx_failed_and_bounced(smtp_d):
    d, sink = smtp_d.d, smtp_d.sink
    try:
        # a permanent refusal that says nothing of the address (500 5.3.0)
        sink_restart(sink, "-f", "RCPT")
        mt.add_many_subscribers(d, "reject", "reject", 4)
        start(d, "reject")
        assert wait_final(d, "reject", 4) == {"failed": 4}
        for row in deliveries(d, "reject", "status, attempts, smtp_code, "
                              "smtp_status"):
            assert row == ("failed", "1", "500", "5.3.0"), row
        ev = d.psql("SELECT count(*), bool_and(NOT (data->>'hard')::bool), "
                    "min(data->>'code') FROM events WHERE type = 'bounce' AND "
                    "campaign_id = %d" % mt.campaign_id(d, "reject"))
        assert ev == "4|t|500", ev
        assert d.psql("SELECT count(*) FROM suppressions WHERE email LIKE "
                      "'reject%'") == "0"
        # a hard bounce: 550 5.1.1 unknown user
        sink_restart(sink, "-f", "RCPT", "-B",
                     "550 5.1.1 Recipient address rejected: User unknown")
        mt.add_many_subscribers(d, "nouser", "nouser", 4)
        start(d, "nouser")
        assert wait_final(d, "nouser", 4) == {"failed": 4}
        for row in deliveries(d, "nouser", "status, smtp_code, smtp_status, "
                              "smtp_message"):
            assert row[:3] == ("failed", "550", "5.1.1"), row
            assert "User unknown" in row[3]
        ev = d.psql("SELECT count(*), bool_and((data->>'hard')::bool) FROM "
                    "events WHERE type = 'bounce' AND campaign_id = %d" %
                    mt.campaign_id(d, "nouser"))
        assert ev == "4|t", ev
        sup = d.psql("SELECT lower(email), list_id IS NULL, reason FROM "
                     "suppressions WHERE email LIKE 'nouser%' ORDER BY 1")
        assert sup.splitlines() == ["nouser%d@example.com|t|hard_bounce" % i
                                    for i in range(1, 5)], sup
        rep = mt.wait_done(d, "nouser", timeout=10)
        assert rep["deliveries"] == {"failed": 4}
        assert rep["events"] == {"bounce": 4}
        assert sink.transactions() == []
    finally:
        sink_restart(sink)


# ---- 4. pause, resume, cancel under a rate limit ----------------------------

@pytest.fixture(scope="module")
def rate_d():
    tmp = harness.TempDir("rate")
    write_templates(tmp)
    write_campaign(tmp, "camp", "bulk", lists=["bulk"])
    d = harness.Daemon(tmp, name="rate", top={"campaigns": "camp"},
                       extra_lines=list_lines("bulk") + mail_section(
                           rate=400))
    try:
        d.start(timeout=30)
        yield Env(d=d, tmp=tmp)
    finally:
        d.cleanup()
        tmp.cleanup()


def test_pause_resume_cancel(rate_d):
    d = rate_d.d
    n = 2000
    mt.add_many_subscribers(d, "bulk", "bulk", n)
    outbox = os.path.join(d.state, "outbox", "new")     # transport = ""

    def sent():
        return int(d.psql("SELECT count(*) FROM deliveries WHERE status = "
                          "'sent'"))

    def files():
        return len(os.listdir(outbox))

    def action(what, expect=200):
        r = d.post("/api/v1/campaigns/bulk/" + what, token=d.token)
        assert r.status == expect, (what, r)
        return r.json()

    assert action("start")["recipients"] == n
    wait_until(lambda: sent() >= 100, 10, what="100 sent")
    assert action("pause")["status"] == "paused"
    t_pause = time.monotonic()
    samples = []
    while time.monotonic() - t_pause < 2.2:
        samples.append((time.monotonic() - t_pause, sent()))
        time.sleep(0.1)
    last = samples[-1][1]
    settled = min(t for t, c in samples if c == last)
    harness.note_timing("pause -> sent count settled", settled)
    assert settled <= 1.5, samples
    assert last < n, "the campaign finished before the pause took effect"
    assert files() == last
    assert mt.report(d, "bulk")["status"] == "paused"
    action("pause", 409)

    assert action("resume")["status"] == "running"
    wait_until(lambda: sent() >= last + 50, 5, what="sending again")
    assert action("cancel")["status"] == "cancelled"
    counts = wait_final(d, "bulk", n, timeout=10)
    assert set(counts) == {"sent", "cancelled"}, counts
    assert counts["cancelled"] > 0
    time.sleep(0.5)
    assert sent() == counts["sent"] == files()
    rep = mt.report(d, "bulk")
    assert rep["status"] == "cancelled"
    assert rep["deliveries"] == counts
    action("resume", 409)
    action("start", 409)
    action("cancel", 409)


def test_campaign_rate(mail_d):
    """A campaign's own rate (mail_d has no mail.rate)."""
    d = mail_d.d
    mt.add_many_subscribers(d, "slow", "slow", 50)
    start(d, "slow")
    assert wait_final(d, "slow", 50) == {"sent": 50}
    # at most a second's burst (20), then 20/s: 30 more take 1.5 s
    spread = float(d.psql(
        "SELECT extract(epoch FROM max(sent_at) - min(sent_at)) FROM "
        "deliveries WHERE campaign_id = %d" % mt.campaign_id(d, "slow")))
    harness.note_timing("50 messages at a campaign rate of 20/s", spread)
    assert 1.2 <= spread <= 4, "50 messages at rate = 20 took %.2f s" % \
        spread


def test_campaigns_one_after_another(tmp):
    """Eight one-recipient campaigns, each started when the one before is
    sent: each must go out promptly (no work-around here)."""
    n = 8
    write_templates(tmp)
    for i in range(n):
        write_campaign(tmp, "camp", "seq%d" % i, lists=["seq%d" % i])
    d = harness.Daemon(tmp, name="seq", top={"campaigns": "camp"},
                       extra_lines=list_lines(*["seq%d" % i
                                                for i in range(n)]))
    try:
        d.start(timeout=30)
        for i in range(n):
            mt.add_many_subscribers(d, "seq%d" % i, "seq%d-" % i, 1)
        for i in range(n):
            name = "seq%d" % i
            assert mt.start_campaign(d, name)["recipients"] == 1
            try:
                wait_until(lambda: mt.delivery_counts(d, name) ==
                           {"sent": 1}, 3, what=name + " sent")
            except AssertionError:
                raise AssertionError("campaign %d of %d not sent within 3 s:"
                                     " %r" % (i + 1, n, mt.delivery_counts(
                                         d, name)))
    finally:
        d.cleanup()


# ---- 5. crash safety --------------------------------------------------------

def test_crash_mid_campaign_no_skips_bounded_duplicates():
    conns, batch, n = 4, 50, 3000
    tmp, sink, d = relay_daemon("crash", {"big": {"lists": ["big"]}},
                                ["big"], {"connections": conns,
                                          "batch": batch, "fill": 100})
    try:
        d.start(timeout=30)
        mt.add_many_subscribers(d, "big", "big", n)
        expect = {"big%d@example.com" % i for i in range(1, n + 1)}
        t0 = time.monotonic()
        assert start(d, "big")["recipients"] == n
        wait_until(lambda: sink.count() >= 600, 30, interval=0.01,
                   what="600 messages in the sink")
        d.proc.kill()                                   # kill -9
        d.proc.wait(10)
        at_kill = sink.count()
        counts = mt.delivery_counts(d, "big")           # the cluster lives on
        assert 0 < counts.get("sent", 0) < n, counts
        assert at_kill < n, at_kill

        filled = d.psql("SELECT CASE WHEN filled_at IS NULL THEN "
                        "fill_cursor::text ELSE 'the end' END FROM "
                        "campaigns WHERE name = 'big'")
        print("kill -9 with the audience made deliveries up to lead %s"
              % filled)
        d.start(timeout=30)
        assert wait_final(d, "big", n, timeout=60) == {"sent": n}
        assert d.psql("SELECT filled_at IS NOT NULL FROM campaigns WHERE "
                      "name = 'big'") == "t"
        harness.note_timing("3000 via smtp-sink with a kill -9 (total)",
                            time.monotonic() - t0)
        assert "releasing the deliveries of 1 stopped daemon" in \
            d.log_since_start()
        tx = complete_at_least(sink, n)
        per = {}
        for rcpts, _, _ in tx:
            assert len(rcpts) == 1, rcpts
            per[rcpts[0]] = per.get(rcpts[0], 0) + 1
        assert set(per) == expect, "skipped: %r" % sorted(
            expect - set(per))[:20]
        dups = len(tx) - n
        print("kill -9 after %d of %d in the sink: %d sent twice (at most "
              "%d allowed)" % (at_kill, n, dups, conns * batch))
        assert 0 <= dups <= conns * batch, (dups, at_kill, counts)
        assert max(per.values()) <= 2
        assert mt.wait_done(d, "big", timeout=10)["deliveries"] == {"sent": n}
    finally:
        d.cleanup()
        sink.stop()
        tmp.cleanup()


def test_crash_mid_fill_resumes():
    """kill -9 while a start's audience is still being made deliveries (10
    recipients a step): the restarted daemon goes on from the last step,
    every recipient gets the message, none is made a delivery twice."""
    conns, batch, n = 2, 20, 1000
    tmp, sink, d = relay_daemon("fillcrash", {"wide": {"lists": ["wide"]}},
                                ["wide"], {"connections": conns,
                                           "batch": batch, "fill": 10})
    try:
        d.start(timeout=30)
        mt.add_many_subscribers(d, "wide", "wide", n)
        assert start(d, "wide")["recipients"] == n
        d.proc.kill()                                   # kill -9
        d.proc.wait(10)
        made = int(d.psql("SELECT count(*) FROM deliveries WHERE campaign_id "
                          "= %d" % mt.campaign_id(d, "wide")))
        assert made < n and d.psql(
            "SELECT filled_at IS NULL FROM campaigns WHERE name = "
            "'wide'") == "t", made
        d.start(timeout=30)
        assert wait_final(d, "wide", n, timeout=60) == {"sent": n}
        assert d.psql("SELECT count(DISTINCT lead_id), count(*) FROM "
                      "deliveries WHERE campaign_id = %d"
                      % mt.campaign_id(d, "wide")) == "%d|%d" % (n, n)
        tx = complete_at_least(sink, n)
        got = {r[0][0] for r in tx}
        assert got == {"wide%d@example.com" % i for i in range(1, n + 1)}
        assert len(tx) - n <= conns * batch
    finally:
        d.cleanup()
        sink.stop()
        tmp.cleanup()


def complete_at_least(sink, n, timeout=10):
    """The sink's whole transactions, once there are n of them or more."""
    return wait_until(lambda: (lambda t: t if len(t) >= n else None)(
        complete(sink.transactions())), timeout, what="%d in the sink" % n)


def complete(transactions):
    """Transactions whose message arrived whole (a sink's dump of a session
    cut by the crash may hold half a message): the MIME closing boundary."""
    out = []
    for t in transactions:
        b = t[1].get_boundary() if t[1].is_multipart() else None
        if b is None or ("--%s--" % b).encode() in t[2]:
            out.append(t)
    return out


# ---- 6. DKIM ----------------------------------------------------------------

@pytest.mark.skipif(dkim is None, reason="python3-dkim (dkimpy) is missing")
def test_dkim_signatures_verify(mail_d):
    d, dns = mail_d.d, mail_d.dns
    mt.add_many_subscribers(d, "signed", "signed", 3)
    start(d, "signed")
    assert wait_final(d, "signed", 3) == {"sent": 3}
    msgs = mail_d.maildir.for_list_id("signed")
    assert len(msgs) == 3

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        rec = dns.get(n)
        return rec.encode() if rec else None

    for _, raw, msg in msgs:
        # what a receiving MTA gets: without the delivery agent's Return-Path
        assert raw.startswith(b"Return-Path: ")
        wire = raw.split(b"\n", 1)[1]
        sigs = msg.get_all("DKIM-Signature")
        assert sigs and len(sigs) == 2, sigs
        tags = [dict(t.strip().split("=", 1) for t in re.sub(
            r"\s+", "", s).split(";") if t.strip()) for s in sigs]
        by_alg = {t["a"]: t for t in tags}
        assert set(by_alg) == {"rsa-sha256", "ed25519-sha256"}, tags
        assert by_alg["rsa-sha256"]["s"] == "s1"
        assert by_alg["ed25519-sha256"]["s"] == "e1"
        for t in tags:
            assert t["d"] == SIGNED_DOMAIN
            signed = t["h"].lower().split(":")
            # RFC 8058: both unsubscribe headers must be signed
            for h in ("from", "subject", "date", "message-id",
                      "list-unsubscribe", "list-unsubscribe-post"):
                assert h in signed, (h, t["h"])
        for idx in range(2):
            assert dkim.DKIM(wire).verify(idx=idx, dnsfunc=dnsfunc), idx
        # and the verifier is not fooled by a changed body or header
        for a, b in ((b"a short note", b"a forged note"),
                     (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                      b"List-Unsubscribe-Post: List-Unsubscribe=One-Clack")):
            forged = wire.replace(a, b)
            assert forged != wire
            for idx in range(2):
                try:
                    ok = dkim.DKIM(forged).verify(idx=idx, dnsfunc=dnsfunc)
                except dkim.DKIMException:
                    ok = False
                assert not ok, (a, idx)


@pytest.mark.parametrize("case", ["missing", "world-readable"])
def test_dkim_key_problem_refused(daemons, tmp, case):
    keys = tmp.sub("keys")
    key = os.path.join(keys, "s1.pem")
    if case == "world-readable":
        harness.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out",
                     key])
        os.chmod(key, 0o644)
    extra = ['dkim "example.com" {', "\tselector = s1",
             '\tkey = "keys/s1.pem"', "\talgorithm = ed25519-sha256", "}"]
    d = daemons(extra_lines=extra)
    text = d.config_text()
    line = harness.line_of(text, "key = ")
    rx = re.compile(r"^%s:%d:\d+: .*%s" % (re.escape(d.conf_path), line,
                                           re.escape(key)))
    r = cli(d.conf_path, "check-config")
    assert r.returncode == 1, r
    assert any(rx.match(l) for l in r.stderr.splitlines()), r.stderr
    if case == "world-readable":
        assert "chmod 600" in r.stderr, r.stderr
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1
    assert any(rx.match(l) for l in out.splitlines()), out
    assert not os.path.exists(d.state)


# ---- 7. bad input -----------------------------------------------------------

BAD_FILES = {
    # case: (campaign keys, (the key whose line is named, column), extra
    # templates); the bad key is the file's line 2
    "subject-template": ({"subject": "Hi {{#first_name}}{{first_name}}"},
                         ("subject", 15), {}),            # the "{{#"
    "audience-operator": ({"audience": "country ~ 3"}, ("audience", 21),
                          {}),                            # the "~"
    "audience-end": ({"audience": "score >= 10 and"}, ("audience", 28),
                     {}),                                 # the end
    "missing-template": ({"html": "news/nope.html"}, ("html", 8), {}),
    "template-file": ({"html": "news/broken.html"}, None,
                      {"news/broken.html": "<p>{{first_name}}</p>\n"
                       "<p>{{#items}}{{name}}</p>\n"}),   # 2:4
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_campaign_refused(daemons, tmp, mail_d, case):
    keys, at, tpls = BAD_FILES[case]
    key_name = at and at[0]
    keys = dict(keys, lists=["news"])
    d = daemons(top={"campaigns": "camp"}, extra_lines=list_lines("news"))
    write_templates(tmp, tpls)
    write_campaign(tmp, "camp", "good", lists=["news"])
    path = write_campaign(tmp, "camp", "bad", **keys)
    if key_name:
        assert harness.line_of(open(path).read(), key_name + " =") == 2
        where = re.escape(path) + ":2:%d: %s: " % (at[1], key_name)
    else:
        tpl = os.path.join(tmp.path, "tpl", "news", "broken.html.mustache")
        where = re.escape(tpl) + ":2:4: .*items"
    rx = re.compile("^" + where)

    r = cli(d.conf_path, "check-config")
    assert r.returncode == 1, r
    assert any(rx.match(l) for l in r.stderr.splitlines()), r.stderr
    d.spawn()
    rc, out = d.wait_failed_start()
    assert rc == 1, out
    assert any(rx.match(l) for l in out.splitlines()), out
    assert not os.path.exists(d.state)

    # the running daemon keeps its configuration on a bad SIGHUP
    m = mail_d.d
    mtmp = mail_d.tmp
    made = [write_campaign(mtmp, "camp", "zz-new", lists=["news"]),
            write_campaign(mtmp, "camp", "zz-bad", **keys)]
    for name, text in tpls.items():
        made.append(mt.write_file(os.path.join(mtmp.path, "tpl",
                                               name + ".mustache"), text))
    try:
        before = campaign_names(m)
        log = reload_and_wait(m, ok=False)
        mpath = made[1] if key_name else made[2]
        mrx = re.compile(re.escape(mpath) + (":2:%d: " % at[1] if key_name
                                             else ":2:4: "))
        assert any(mrx.search(l) for l in log.splitlines()), log
        after = campaign_names(m)
        assert set(after) == set(before) and "zz-new" not in after
        r = m.post("/api/v1/campaigns/zz-new/start", token=m.token)
        assert r.status == 404, r
        assert m.healthz()["status"] == "ok"
    finally:
        for p in made:
            os.unlink(p)
        reload_and_wait(m, ok=True)


UNKNOWN_FIELD_BUG = (
    "check-config accepts an audience naming a field leads do not have "
    "(audience = \"nosuchfield == 3\"): the campaign only fails when it "
    "starts (422 unknown field), and a scheduled one then never starts and "
    "logs nothing (sched_started() in daemon/sender.c only logs success)")


def test_audience_unknown_field_refused(tmp):
    d = harness.Daemon(tmp, top={"campaigns": "camp"},
                       extra_lines=list_lines("news"))
    write_templates(tmp)
    path = write_campaign(tmp, "camp", "typo", audience="nosuchfield == 3",
                          lists=["news"])
    r = cli(d.conf_path, "check-config")
    assert r.returncode == 1, r
    assert re.match(re.escape(path) + r":2:\d+: .*nosuchfield", r.stderr), \
        r.stderr


ESCAPE_COLUMN_BUG = (
    "Error columns inside a quoted value do not count backslash escapes: "
    "for audience = \"country == \\\"US\\\" or country ~ 1\" the '~' is "
    "at column 42 of the line, check-config says 40 (lib/campaign.c adds "
    "the condition's column to the value's)")


def test_error_column_after_escapes(tmp):
    d = harness.Daemon(tmp, top={"campaigns": "camp"},
                       extra_lines=list_lines("news"))
    write_templates(tmp)
    path = write_campaign(tmp, "camp", "esc",
                          audience='country == "US" or country ~ 1',
                          lists=["news"])
    line = open(path).read().splitlines()[1]
    assert line.index("~") + 1 == 42, line
    r = cli(d.conf_path, "check-config")
    assert r.returncode == 1, r
    assert r.stderr.startswith(path + ":2:42: audience: "), r.stderr


def test_invalid_recipient_addresses(mail_d):
    d = mail_d.d
    good = ["good%d@example.com" % i for i in range(1, 4)]
    bad = ["not-an-address", "a@b"]
    mt.add_subscribers(d, "badaddr", [dict(email=e, first_name="X")
                                      for e in good + bad])
    assert start(d, "badaddr")["recipients"] == 5
    assert wait_final(d, "badaddr", 5) == {"sent": 3, "failed": 2}
    for email_, status, msg in deliveries(d, "badaddr",
                                          "email, status, smtp_message"):
        if email_ in bad:
            assert status == "failed" and email_ in msg, (email_, msg)
        else:
            assert status == "sent", (email_, status, msg)
    to = sorted(m[2]["To"].addresses[0].addr_spec
                for m in mail_d.maildir.for_list_id("badaddr"))
    assert to == good


def test_message_over_max_size(mail_d):
    d = mail_d.d
    mt.add_many_subscribers(d, "huge", "huge", 2)
    start(d, "huge")
    assert wait_final(d, "huge", 2) == {"failed": 2}
    for status, msg in deliveries(d, "huge", "status, smtp_message"):
        assert re.search(r"\b65536\b", msg) and "over" in msg, msg
    assert mail_d.maildir.for_list_id("huge") == []


# ---- 8. a test copy ---------------------------------------------------------

SEND_TEST_BUG = (
    "The first test copy of a campaign whose tracked links are not in the "
    "link cache yet answers 502 {\"status\": \"deferred\"}: the first "
    "compose needs the links, and batch_done() (daemon/sender.c) calls "
    "test_result(), which composes again at once, before it even queues "
    "the INSERT of the missing links, so the second try misses them too "
    "and gives up. Deterministic while the links' INSERT is slow (here a "
    "lock held on campaign_links), a race otherwise; the 'deferred' test "
    "row stays in deliveries for good.")


def send_copy(d, name, body, expect):
    r = d.post("/api/v1/campaigns/%s/test" % name, body=body, token=d.token,
               timeout=10)
    assert r.status == expect, r
    return r.json()


def test_send_test_first_copy(mail_d):
    d = mail_d.d
    me = "me@example.com"
    lock = TableLock(d, "campaign_links", 1.5)
    try:
        doc = send_copy(d, "trial", b'{"to": "%s"}' % me.encode(), 200)
    finally:
        lock.wait()
    assert doc["status"] == "sent" and doc["to"] == me, doc
    copies = [m for m in mail_d.maildir.for_list_id("trial")
              if m[2]["To"].addresses[0].addr_spec == me]
    assert len(copies) == 1
    assert copies[0][2]["Subject"] == "Trial for you"
    rep = mt.report(d, "trial")
    assert rep["status"] == "draft" and rep["deliveries"] == {}, rep


def test_send_test_copy(mail_d):
    d = mail_d.d
    me = "boss@example.com"
    # the campaign goes out first (its links are then known: SEND_TEST_BUG)
    mt.add_many_subscribers(d, "trial", "trial", 3)
    assert start(d, "trial2")["recipients"] == 3
    assert wait_final(d, "trial2", 3) == {"sent": 3}
    assert mt.wait_done(d, "trial2", timeout=10)["deliveries"] == {"sent": 3}

    doc = send_copy(d, "trial2", b'{"to": "%s"}' % me.encode(), 200)
    assert doc["status"] == "sent" and doc["to"] == me, doc
    copies = [m for m in mail_d.maildir.for_list_id("trial2")
              if m[2]["To"].addresses[0].addr_spec == me]
    assert len(copies) == 1
    msg = copies[0][2]
    assert msg["Subject"] == "Trial for you"
    assert msg["Message-ID"] == "<%s>" % doc["message_id"]
    _, body = parts(msg)
    assert "Hello there, a short note." in body
    assert len(mail_d.maildir.for_list_id("trial2")) == 4
    # not counted: the report, the listing
    rep = mt.report(d, "trial2")
    assert rep["status"] == "done" and rep["deliveries"] == {"sent": 3}, rep
    assert campaign_names(d)["trial2"]["deliveries"] == {"sent": 3}
    # bad requests
    send_copy(d, "trial2", b'{"to": "not-an-address"}', 400)
    send_copy(d, "trial2", b'{"to": "me@localhost"}', 400)
    send_copy(d, "trial2", b'{}', 400)
    send_copy(d, "no-such", b'{"to": "%s"}' % me.encode(), 404)
    assert len(mail_d.maildir.for_list_id("trial2")) == 4
