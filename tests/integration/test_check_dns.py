"""
leadcast check-dns against a real authoritative DNS server (NSD on a free
loopback port) serving test zones: a domain that passes everything, SPF
broken three ways (too many lookups, a syntax error, two records), a
missing DMARC record, a published DKIM key that is not the configured one,
a PTR without forward confirmation, a server that drops the DMARC queries,
and one that answers nothing. The CLI runs offline (no daemon), with the
DKIM keys of its configuration.
"""
import json
import os
import time

import pytest

import harness
import mailtools as mt
from dnstools import Nsd, Relay
from test_messaging import (deliveries, list_lines, mail_section, start,
                            write_campaign, write_templates)

IP = "192.0.2.10"           # mail.good.test, forward-confirmed
IP_NO_FCRDNS = "192.0.2.11"  # PTR nofcrdns.good.test, whose A is elsewhere
IP_NO_PTR = "192.0.2.12"


def keygen(conf, domain, sel, out, ed25519=False):
    r = harness.cli(conf, "dkim-keygen", domain, sel, "--out", out, "--json",
                    *(["--ed25519"] if ed25519 else []))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["dns"]


def zone_rr(dns, origin):
    """dkim-keygen's record ("s1._domainkey.D. IN TXT (...)") as is: it is
    zone-file syntax with an absolute name."""
    assert dns.startswith("s1._domainkey.%s. IN TXT" % origin)
    return dns + "\n"


GOOD_SPF = '@ IN TXT "v=spf1 ip4:192.0.2.10 include:_spf.relay.test -all"\n'
DMARC = '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@%s"\n'
MX = "@ IN MX 10 mx1\nmx1 IN A 192.0.2.25\n"


@pytest.fixture(scope="module")
def world():
    tmp = harness.TempDir("dns")
    keys = tmp.sub("keys", mode=0o700)
    conf = os.path.join(tmp.path, "leadcast.conf")
    # one campaign, sending from good.test (the "from" line)
    write_templates(tmp)
    write_campaign(tmp, "camp", "news", lists=["news"],
                   **{"from": "Good News <news@Good.test>"})
    base = ('state_dir = "var"\ntemplates = "tpl"\ncampaigns = "camp"\n'
            'list "news" { }\n'
            'http {\n\tpublic_url = "https://news.good.test"\n}\n'
            'mail {\n\ttransport = "mx"\n\ttls = required\n}\n')
    dkim = ""
    recs = {}
    # RSA keys where the test looks at them, quick Ed25519 ones elsewhere
    for d, ed in (("good.test", False), ("badkey.test", False),
                  ("nodmarc.test", True), ("manyspf.test", True)):
        pem = os.path.join(keys, d + ".pem")
        recs[d] = keygen(conf, d, "s1", pem, ed)
        dkim += 'dkim "%s" {\n\tselector = s1\n\tkey = "%s"\n' \
            '\talgorithm = %s\n}\n' % (d, pem, "ed25519-sha256" if ed else
                                        "rsa-sha256")
    # the key badkey.test publishes: another one
    other = keygen(conf, "badkey.test", "s1", os.path.join(keys, "other.pem"))
    with open(conf, "w") as f:
        f.write(base + dkim)
    # the same, but http:// links and opportunistic TLS
    weak = os.path.join(tmp.path, "weak.conf")
    with open(weak, "w") as f:
        f.write(base.replace("https://", "http://").replace(
            "tls = required", "tls = opportunistic") + dkim)

    zones = {
        "good.test": MX + GOOD_SPF + DMARC % "good.test" +
        zone_rr(recs["good.test"], "good.test") +
        "mail IN A 192.0.2.10\nnofcrdns IN A 192.0.2.99\n",
        "relay.test": '_spf IN TXT "v=spf1 ip4:198.51.100.0/24 -all"\n',
        "nodmarc.test": MX + GOOD_SPF + zone_rr(recs["nodmarc.test"],
                                                "nodmarc.test"),
        "badkey.test": MX + GOOD_SPF + DMARC % "badkey.test" +
        zone_rr(other, "badkey.test"),
        "manyspf.test": MX + '@ IN TXT "v=spf1 %s -all"\n' % " ".join(
            "a:h%d.manyspf.test" % i for i in range(1, 12)) +
        "".join("h%d IN A 203.0.113.%d\n" % (i, i) for i in range(1, 12)) +
        DMARC % "manyspf.test" + zone_rr(recs["manyspf.test"],
                                         "manyspf.test"),
        "syntaxspf.test": MX + '@ IN TXT "v=spf1 ip4:192.0.2.300 -all"\n' +
        DMARC % "syntaxspf.test",
        "twospf.test": MX + GOOD_SPF + '@ IN TXT "v=spf1 mx -all"\n' +
        DMARC % "twospf.test",
        # recipient domains for the mx transport
        "dest.test": "@ IN MX 10 localhost.\n",
        "nullmx.test": "@ IN MX 0 .\n",
        "2.0.192.in-addr.arpa": "10 IN PTR mail.good.test.\n"
                                "11 IN PTR nofcrdns.good.test.\n",
    }
    nsd = Nsd(tmp.sub("nsd"), zones)
    yield {"conf": conf, "weak": weak, "nsd": nsd, "tmp": tmp,
           "good_rec": recs["badkey.test"]}
    nsd.stop()
    tmp.cleanup()


def check(world, domain, *args, conf=None, server=None, timeout=30):
    t0 = time.monotonic()
    r = harness.cli(conf or world["conf"], "check-dns", domain, "--server",
                    server or world["nsd"].addr, "--json", *args,
                    timeout=timeout)
    took = time.monotonic() - t0
    assert r.returncode in (0, 1), r.stderr
    assert r.stderr == "", r.stderr
    doc = json.loads(r.stdout)
    by = {}
    for c in doc["checks"]:
        by.setdefault(c["check"], c)
    return r.returncode, doc, by, took


def statuses(by):
    return {k: v["status"] for k, v in by.items()}


def test_good_domain_passes_everything(world):
    rc, doc, by, _ = check(world, "good.test", "--ip", IP)
    assert statuses(by) == {k: "pass" for k in (
        "from", "mx", "spf", "dkim", "dmarc", "alignment", "ptr", "bulk.spf",
        "bulk.dkim", "bulk.dmarc", "bulk.alignment", "bulk.ptr",
        "bulk.unsubscribe", "bulk.tls")}, doc
    assert rc == 0 and doc["ok"] is True
    assert "mx1.good.test (10)" in by["mx"]["summary"]
    assert "pass for 192.0.2.10" in by["spf"]["summary"]
    assert "1 of 10 DNS lookups" in by["spf"]["summary"]
    assert "mail.good.test" in by["ptr"]["summary"]
    # an address allowed through the include passes too, and the line
    # says where it matched
    rc, doc, by, _ = check(world, "good.test", "--ip", "198.51.100.7")
    assert by["spf"]["status"] == "pass"
    assert "in the record of _spf.relay.test" in by["spf"]["summary"]
    # the text form: one line per check, a summary, exit status 0
    r = harness.cli(world["conf"], "check-dns", "good.test", "--ip", IP,
                    "--server", world["nsd"].addr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  dkim" in r.stdout
    assert "14 pass, 0 warn, 0 fail, 0 could not run" in r.stdout


def test_without_ip_warns_but_passes(world):
    rc, doc, by, _ = check(world, "good.test")
    assert rc == 0, doc                 # warnings do not fail
    st = statuses(by)
    assert st["spf"] == "warn" and "--ip" in by["spf"]["fix"]
    assert "others get fail (-all)" in by["spf"]["summary"]
    assert st["ptr"] == "warn" and st["bulk.spf"] == "warn"
    assert st["dkim"] == "pass" and st["alignment"] == "pass"
    assert doc["counts"]["fail"] == 0 and doc["counts"]["warn"] == 4


def test_ip_outside_spf_and_without_ptr(world):
    rc, doc, by, _ = check(world, "good.test", "--ip", IP_NO_PTR)
    assert rc == 1
    assert by["spf"]["status"] == "fail"
    assert "fail for 192.0.2.12" in by["spf"]["summary"]
    assert "ip4:192.0.2.12" in by["spf"]["fix"]
    assert by["ptr"]["status"] == "fail"
    assert "no PTR record" in by["ptr"]["summary"]
    assert by["bulk.spf"]["status"] == "fail"
    # DKIM still aligns: DMARC passes on it
    assert by["alignment"]["status"] == "warn"
    assert by["bulk.alignment"]["status"] == "pass"


def test_ptr_without_forward_confirmation(world):
    rc, doc, by, _ = check(world, "good.test", "--ip", IP_NO_FCRDNS)
    assert by["ptr"]["status"] == "fail"
    assert "nofcrdns.good.test" in by["ptr"]["summary"]
    assert "does not resolve back" in by["ptr"]["summary"]
    assert "nofcrdns.good.test -> 192.0.2.11" in by["ptr"]["fix"]
    assert by["bulk.ptr"]["status"] == "fail"
    assert rc == 1


def test_spf_too_many_lookups(world):
    rc, doc, by, _ = check(world, "manyspf.test", "--ip", IP)
    assert rc == 1
    assert by["spf"]["status"] == "fail"
    assert "more than 10 DNS lookups" in by["spf"]["summary"]
    assert "include" in by["spf"]["fix"]
    assert by["bulk.spf"]["status"] == "fail"
    # the rest is unaffected
    assert by["dkim"]["status"] == "pass"
    assert by["dmarc"]["status"] == "pass"


def test_spf_syntax_error(world):
    rc, doc, by, _ = check(world, "syntaxspf.test", "--ip", IP)
    assert by["spf"]["status"] == "fail"
    assert "192.0.2.300" in by["spf"]["summary"]
    assert "IPv4" in by["spf"]["summary"]
    assert rc == 1


def test_two_spf_records(world):
    rc, doc, by, _ = check(world, "twospf.test", "--ip", IP)
    assert by["spf"]["status"] == "fail"
    assert "2 SPF records" in by["spf"]["summary"]
    assert "merge" in by["spf"]["fix"]


def test_missing_dmarc(world):
    rc, doc, by, _ = check(world, "nodmarc.test", "--ip", IP)
    assert rc == 1
    # the campaign sends from good.test, not from this domain
    assert by["from"]["status"] == "warn"
    assert "they send from good.test" in by["from"]["summary"]
    assert by["dmarc"]["status"] == "fail"
    assert "no DMARC record at _dmarc.nodmarc.test" in by["dmarc"]["summary"]
    assert "v=DMARC1; p=none" in by["dmarc"]["fix"]
    assert by["bulk.dmarc"]["status"] == "fail"
    assert by["spf"]["status"] == "pass" and by["dkim"]["status"] == "pass"


def test_mismatched_dkim_key(world):
    rc, doc, by, _ = check(world, "badkey.test", "--ip", IP)
    assert rc == 1
    d = by["dkim"]
    assert d["status"] == "fail"
    assert "not the key configured for badkey.test" in d["summary"]
    # the fix is the configured key's record, ready to publish
    configured_p = world["good_rec"].split("p=")[1].split('"')[0]
    assert configured_p[:60] in d["fix"]
    assert by["bulk.dkim"]["status"] == "fail"
    # SPF alone aligns: DMARC passes, but warns
    assert by["alignment"]["status"] == "warn"


def test_selector_without_record(world):
    rc, doc, by, _ = check(world, "good.test", "--ip", IP, "--selector",
                           "s2")
    assert by["dkim"]["status"] == "fail"
    assert "no key record at s2._domainkey.good.test" in \
        by["dkim"]["summary"]


def test_http_links_and_opportunistic_tls(world):
    rc, doc, by, _ = check(world, "good.test", "--ip", IP,
                           conf=world["weak"])
    assert by["bulk.unsubscribe"]["status"] == "fail"
    assert "http://news.good.test" in by["bulk.unsubscribe"]["summary"]
    assert "https" in by["bulk.unsubscribe"]["fix"]
    assert by["bulk.tls"]["status"] == "warn"
    assert rc == 1


def test_no_answer_for_one_name(world):
    """A server that does not answer the DMARC queries: that check (and
    what depends on it) says it could not run, within the timeout; the
    others still run."""
    relay = Relay(upstream=world["nsd"].port, drop=("_dmarc",))
    try:
        rc, doc, by, took = check(world, "good.test", "--ip", IP,
                                  "--timeout", "1s", server=relay.addr)
    finally:
        relay.stop()
    assert rc == 1
    assert by["dmarc"]["status"] == "error"
    assert "could not run" in by["dmarc"]["summary"]
    assert "_dmarc.good.test" in by["dmarc"]["summary"]
    assert by["bulk.dmarc"]["status"] == "error"
    for c in ("mx", "spf", "dkim", "ptr"):
        assert by[c]["status"] == "pass", by[c]
    assert relay.dropped >= 2       # two tries
    assert took < 8, took


def test_dead_server(world):
    dead = Relay(upstream=None)
    try:
        rc, doc, by, took = check(world, "good.test", "--ip", IP,
                                  "--timeout", "500ms", server=dead.addr)
    finally:
        dead.stop()
    assert rc == 1 and doc["ok"] is False
    for c in ("mx", "spf", "dkim", "dmarc", "ptr"):
        assert by[c]["status"] == "error", by[c]
        assert "could not run" in by[c]["summary"]
    # from, unsubscribe and TLS need no DNS
    assert doc["counts"]["pass"] == 3, doc
    assert took < 10, took


def test_bad_input(world):
    for args, words in ((["good.test", "--ip", "192.0.2.300"], "--ip"),
                        (["not a domain"], "domain"),
                        (["good.test", "--selector", "s 1"], "--selector"),
                        (["good.test", "--server", "dns.example"],
                         "--server"),
                        (["good.test", "--timeout", "2h"], "--timeout"),
                        ([], "usage")):
        r = harness.cli(world["conf"], "check-dns", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr, (args, r.stderr)
        assert r.stdout == ""


def test_mx_transport_asks_the_dns(world):
    """Delivery with transport = "mx" (lib/dns's dns_mx) through the same
    NSD: a domain whose MX is this host gets its messages (smtp-sink on
    mx_port), a null MX and a name that does not exist fail for good
    (5.1.2), and a domain the server refuses to answer for is deferred
    (4.4.3)."""
    tmp = harness.TempDir("mx")
    sink = mt.SmtpSink(tmp)
    d = None
    try:
        write_templates(tmp)
        write_campaign(tmp, "camp", "mx", lists=["mx"])
        sink.start()
        d = harness.Daemon(tmp, name="mx", top={"campaigns": "camp"},
                           extra_lines=list_lines("mx") + mail_section(
                               transport="mx", mx_port=sink.port,
                               nameserver=world["nsd"].addr, tls="none",
                               retry_base=harness.Raw("1h")))
        d.start(timeout=30)
        for dom, n in (("dest.test", 3), ("nullmx.test", 1),
                       ("nx.dest.test", 1), ("elsewhere.example", 1)):
            mt.add_many_subscribers(d, "mx", dom.split(".")[0], n, domain=dom)
        assert start(d, "mx")["recipients"] == 6
        harness.wait_until(lambda: mt.delivery_counts(d, "mx") == {
            "sent": 3, "failed": 2, "deferred": 1}, 30,
            what="3 sent, 2 failed, 1 deferred")
        rows = {r[0]: r[1:] for r in deliveries(
            d, "mx", "email, status, smtp_status, smtp_message")}
        for email, (status, st, msg) in rows.items():
            if email.endswith("@dest.test"):
                assert (status, st[:2]) == ("sent", "2."), rows
            elif email.endswith("@nullmx.test"):
                assert (status, st) == ("failed", "5.1.2"), rows
                assert "null MX" in msg, rows
            elif email.endswith("@nx.dest.test"):
                assert (status, st) == ("failed", "5.1.2"), rows
                assert "does not exist" in msg, rows
            else:
                assert (status, st) == ("deferred", "4.4.3"), rows
        got = sorted(r for t in sink.transactions() for r in t[0])
        assert got == sorted(e for e in rows if e.endswith("@dest.test"))
    finally:
        if d:
            d.cleanup()
        sink.stop()
        tmp.cleanup()
