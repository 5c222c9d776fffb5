"""
The smtp:// relay transport against real SMTP servers that require
STARTTLS and AUTH: aiosmtpd (Debian's python3-aiosmtpd) on loopback ports,
with a throwaway CA and certificates made by openssl for this run.

Servers (one aiosmtpd each, all requiring STARTTLS before anything else
and AUTH before MAIL):
  good    certificate for 127.0.0.1 signed by the CA; AUTH PLAIN and
          LOGIN; advertises PIPELINING (aiosmtpd reads commands in order,
          so pipelined ones work), as relays do
  login   the same certificate; AUTH LOGIN only, no PIPELINING: the
          client's other mechanism and its one-command-at-a-time path
  plain   no TLS at all (so no STARTTLS, and no AUTH: aiosmtpd offers AUTH
          only over TLS)
  rogue   a self-signed certificate for 127.0.0.1, not from the CA

One daemon (embedded PostgreSQL, RSA DKIM key for example.com,
tls_ca_file = the CA) is pointed at one server after another by rewriting
its mail section and reloading (SIGHUP); each test has its own campaign
and list. Every server records the AUTH attempts (with the password tried
and whether the session was encrypted) and the messages it accepted.
"""
import os
import ssl
import threading

import pytest

import harness
import mailtools as mt
from harness import Raw, wait_until
from test_messaging import (list_lines, mail_section, make_key,
                            reload_and_wait, start, wait_final,
                            write_campaign, write_templates)

aiosmtpd = pytest.importorskip(
    "aiosmtpd", reason="python3-aiosmtpd is not installed")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

try:
    import dkim
except ImportError:         # python3-dkim (dkimpy)
    dkim = None

USER = "relayuser"
PASSWORD = "s3cret relay password"
DOMAIN = "example.com"
LISTS = ("ok", "login", "notls", "rogue")
# Lines of the text part start with dots: the client must dot-stuff them
# (RFC 5321 4.5.2) and the server unstuff them, or DKIM fails.
DOTS_HTML = """\
<html><body>
<p>Hello {{first_name}},</p>
<p>.profile, .bashrc and . alone</p>
<pre>
.
..
</pre>
</body></html>
"""


# ---- certificates -------------------------------------------------------------

def openssl(*args):
    harness.run(["openssl"] + list(args))


def make_certs(dirpath):
    """A CA; a server certificate it signs for 127.0.0.1 (and localhost);
    a self-signed one for the same names. EC keys: quick to make."""
    p = lambda n: os.path.join(dirpath, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes", "-days", "2"]
    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"),
            "-subj", "/CN=leadcast test CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            p("server.key"), "-out", p("server.csr"), "-subj",
            "/CN=localhost")
    with open(p("server.ext"), "w") as f:
        f.write(san + "\n")
    openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"),
            "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", p("server.ext"), "-out", p("server.pem"))
    openssl("req", "-x509", *ec, "-keyout", p("rogue.key"), "-out",
            p("rogue.pem"), "-subj", "/CN=localhost", "-addext", san)
    for n in os.listdir(dirpath):
        os.chmod(p(n), 0o644)
    return {n: p(n + ".pem") for n in ("ca", "server", "rogue")}, \
        {n: p(n + ".key") for n in ("server", "rogue")}


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


# ---- the servers --------------------------------------------------------------

class Recorder:
    """aiosmtpd handler and authenticator: keeps what happened."""

    def __init__(self, pipelining):
        self.pipelining = pipelining
        self.lock = threading.Lock()
        self.auths = []         # (mechanism, login, password, encrypted, ok)
        self.messages = []      # dicts: mail_from, rcpts, content, tls, login

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            auth_data.login.decode() == USER and \
            auth_data.password.decode() == PASSWORD
        with self.lock:
            self.auths.append((mechanism, auth_data.login.decode(),
                               auth_data.password.decode(),
                               session.ssl is not None, ok))
        # handled=False: aiosmtpd answers a failure with 535 itself
        return AuthResult(success=ok, handled=False,
                          auth_data=auth_data.login.decode() if ok else None)

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(dict(
                mail_from=envelope.mail_from,
                rcpts=[r.lower() for r in envelope.rcpt_tos],
                content=envelope.original_content or envelope.content,
                tls=session.ssl is not None, login=session.auth_data))
        return "250 2.0.0 Ok: kept"

    def to(self, rcpt):
        with self.lock:
            return [m for m in self.messages if rcpt in m["rcpts"]]


class Server:
    def __init__(self, name, tls=None, pipelining=False, exclude=()):
        self.name = name
        self.port = harness.free_port()
        self.rec = Recorder(pipelining)
        kw = dict(hostname="127.0.0.1", port=self.port,
                  server_hostname="%s.relay.test" % name,
                  authenticator=self.rec, auth_required=True,
                  auth_require_tls=True, auth_exclude_mechanism=list(exclude))
        if tls:
            kw.update(tls_context=tls, require_starttls=True)
        self.ctl = Controller(self.rec, **kw)
        self.ctl.start()

    def stop(self):
        self.ctl.stop()


# ---- the daemon -------------------------------------------------------------------

class Env:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def relay():
    tmp = harness.TempDir("relay")
    certs, keys = make_certs(tmp.sub("tls"))
    good = server_ctx(certs["server"], keys["server"])
    servers = {
        "good": Server("good", tls=good, pipelining=True),
        "login": Server("login", tls=good, exclude=["PLAIN"]),
        "plain": Server("plain"),
        "rogue": Server("rogue", tls=server_ctx(certs["rogue"],
                                                keys["rogue"])),
    }
    secrets = tmp.sub("secrets", owner_daemon=True, mode=0o700)
    pw_path = os.path.join(secrets, "relay.password")
    dkim_key, dkim_rec = make_key(tmp, "rsa", "rsa")
    write_templates(tmp, {"relay/dots.html": DOTS_HTML})
    for name in LISTS:
        write_campaign(tmp, "camp", name, lists=[name],
                       subject="{{first_name}}, relayed",
                       html="relay/dots.html" if name == "ok" else
                       "news/plain.html",
                       **{"from": "Relay News <news@%s>" % DOMAIN})
    d = harness.Daemon(tmp, name="relay", top={"campaigns": "camp"})
    env = Env(tmp=tmp, d=d, servers=servers, certs=certs, pw_path=pw_path,
              dns={"s1._domainkey.%s." % DOMAIN: dkim_rec},
              dkim_lines=['dkim "%s" {' % DOMAIN, "\tselector = s1",
                          '\tkey = "%s"' % dkim_key,
                          "\talgorithm = rsa-sha256", "}"])
    configure(env, "good", PASSWORD, write_only=True)
    try:
        d.start(timeout=30)
        yield env
    finally:
        d.cleanup()
        for s in servers.values():
            s.stop()
        tmp.cleanup()


def configure(env, server, password, tls=Raw("required"), verify=True,
              write_only=False):
    """Point the daemon at a server with a password (SIGHUP)."""
    with open(env.pw_path, "w") as f:
        f.write(password + "\n")
    os.chmod(env.pw_path, 0o600)
    if harness.IS_ROOT:
        os.chown(env.pw_path, *harness.daemon_uid_gid())
    env.d.extra_lines = list_lines(*LISTS) + mail_section(
        transport="smtp://127.0.0.1:%d" % env.servers[server].port,
        tls=tls, tls_ca_file=env.certs["ca"],
        tls_verify=Raw("true" if verify else "false"), smtp_user=USER,
        smtp_password_file=env.pw_path, helo="leadcast.test",
        retry_base=Raw("1s"), timeout=Raw("5s")) + env.dkim_lines
    env.d.write_config()
    if not write_only:
        reload_and_wait(env.d)


def subscribers(env, name, n):
    mt.add_many_subscribers(env.d, name, name, n, domain="rcpt.example")
    return ["%s%d@rcpt.example" % (name, i) for i in range(1, n + 1)]


def rows(env, name):
    """[(email, status, attempts, smtp_message)] of a campaign, by id."""
    out = env.d.psql(
        "SELECT email, status, attempts, coalesce(smtp_message, '') FROM "
        "deliveries WHERE campaign_id = (SELECT id FROM campaigns WHERE "
        "name = %s) ORDER BY id" % mt.sql_str(name))
    return [tuple(l.split("|", 3)) for l in out.splitlines()]


def wait_deferred(env, name, n):
    """Until all n deliveries were tried and are deferred."""
    def probe():
        r = rows(env, name)
        return r if len(r) == n and all(
            st == "deferred" and int(att) >= 1 for _, st, att, _ in r) \
            else None
    return wait_until(probe, 10, interval=0.1,
                      what="%s: %d deliveries deferred" % (name, n))


@pytest.fixture
def campaign(relay):
    """The test's campaign name; cancelled at the end, so that whatever it
    left deferred never reaches the next test's server."""
    names = []

    def use(name):
        names.append(name)
        return name
    yield use
    for name in names:
        relay.d.post("/api/v1/campaigns/%s/cancel" % name,
                     token=relay.d.token)


# ---- the tests ------------------------------------------------------------------

def test_relay_starttls_auth_dkim(relay, campaign):
    """Delivered through the relay: over TLS, authenticated (PLAIN or
    LOGIN, the password never in the clear), envelope as expected,
    DKIM-valid."""
    good = relay.servers["good"]
    to = subscribers(relay, campaign("ok"), 3)
    start(relay.d, "ok")
    assert wait_final(relay.d, "ok", 3) == {"sent": 3}
    for rcpt in to:
        got = good.rec.to(rcpt)
        assert len(got) == 1, (rcpt, good.rec.messages)
        m = got[0]
        assert m["tls"] and m["login"] == USER, m
        assert m["mail_from"].startswith("bounces+") and \
            m["mail_from"].endswith("@" + DOMAIN), m["mail_from"]
        assert m["content"].startswith(b"DKIM-Signature:"), m["content"][:80]
        for line in (b"\r\n.profile, .bashrc and . alone\r\n",
                     b"\r\n.\r\n..\r\n"):
            assert line in m["content"], m["content"]
        if dkim:
            def dnsfunc(name, timeout=5):
                n = name.decode() if isinstance(name, bytes) else name
                rec = relay.dns.get(n)
                return rec.encode() if rec else None
            assert dkim.DKIM(m["content"]).verify(dnsfunc=dnsfunc), rcpt
    auths = good.rec.auths
    assert auths and all(a[0] in ("PLAIN", "LOGIN") and a[3] and a[4]
                         for a in auths), auths
    for _, st, att, text in rows(relay, "ok"):
        assert (st, att) == ("sent", "1"), (st, att, text)


def test_relay_wrong_password_defers(relay, campaign):
    """A refused password defers every message (retried, not failed, not
    sent); with the right password they all go out: nothing lost. Here
    through AUTH LOGIN, one command at a time."""
    login = relay.servers["login"]
    to = subscribers(relay, campaign("login"), 2)
    configure(relay, "login", "not the password")
    start(relay.d, "login")
    for email_, st, att, text in wait_deferred(relay, "login", 2):  # noqa
        assert "authentication" in text and "refused" in text, text
    assert not login.rec.messages
    assert login.rec.auths and all(
        a[0] == "LOGIN" and a[3] and not a[4] for a in login.rec.auths), \
        login.rec.auths
    configure(relay, "login", PASSWORD)
    assert wait_final(relay.d, "login", 2, timeout=15) == {"sent": 2}
    assert sorted(r for m in login.rec.messages for r in m["rcpts"]) == to
    assert all(m["tls"] and m["login"] == USER for m in login.rec.messages)


def test_relay_without_starttls_refused(relay, campaign):
    """tls = required and the server offers no STARTTLS: nothing is sent
    (not even the password), the messages wait."""
    plain = relay.servers["plain"]
    subscribers(relay, campaign("notls"), 1)
    configure(relay, "plain", PASSWORD)
    start(relay.d, "notls")
    for _, st, att, text in wait_deferred(relay, "notls", 1):
        assert "STARTTLS" in text, text
    assert not plain.rec.messages and not plain.rec.auths


def test_relay_untrusted_certificate_refused(relay, campaign):
    """tls_verify on, a certificate the CA did not sign: refused before
    AUTH (the password stays here), deferred; with tls_verify off the
    retry goes through."""
    rogue = relay.servers["rogue"]
    to = subscribers(relay, campaign("rogue"), 1)
    configure(relay, "rogue", PASSWORD)
    start(relay.d, "rogue")
    for _, st, att, text in wait_deferred(relay, "rogue", 1):
        assert "certificate" in text and "verify failed" in text, text
    assert not rogue.rec.messages and not rogue.rec.auths
    configure(relay, "rogue", PASSWORD, verify=False)
    assert wait_final(relay.d, "rogue", 1, timeout=15) == {"sent": 1}
    assert [r for m in rogue.rec.messages for r in m["rcpts"]] == to
