"""
Public lead forms (GET/POST /f/{form}) against the real daemon and its
embedded PostgreSQL: the form page, urlencoded and multipart posts creating
leads with the mapped fields and the form's source, required fields (400
naming the field, nothing stored), the honeypot (thanks, nothing stored),
the per-client rate limit (429), the redirect form (303 to the configured
URL only), JSON answers, a list subscription, allowed origins (CORS and
403), malformed bodies, and forms in check-config and reload.

One daemon (module scope) serves every form; each test uses addresses of
its own, so the tests do not depend on each other's leads.
"""
import json
import os
import re
import uuid
from urllib.parse import urlencode

import pytest

import harness
import mailtools as mt
from harness import cli

REDIRECT = "https://www.example.com/thanks?from=form"

FORMS = {
    "contact": """
title = "Talk to sales"
intro = "We answer within a day."
honeypot = website
rate_limit = 1000/m
field "email" {
\tlabel = "Work email"
\trequired = true
}
field "name" {
\tto = first_name
\tlabel = "Your name"
\trequired = true
}
field "company" { }
field "phone" { }
field "plan" { choices = { "basic", "pro" } }
field "message" { type = textarea }
field "utm" { to = campaign; type = hidden }
""",
    "limited": """
rate_limit = 3/m
field "email" { required = true }
""",
    "goto": """
redirect = "%s"
source = "landing-page"
field "email" { required = true }
""" % REDIRECT,
    "news": """
list = news
field "email" { required = true }
field "first_name" { }
""",
    "partner": """
allowed_origins = { "https://www.acme.example" }
field "email" { required = true }
""",
}


def write_forms(tmp, forms):
    for name, text in forms.items():
        mt.write_file(os.path.join(tmp.path, "forms", name + ".conf"), text)


def copy_pages(tmp):
    pages = os.path.join(harness.SRCDIR, "templates", "pages")
    for n in os.listdir(pages):
        with open(os.path.join(pages, n)) as f:
            mt.write_file(os.path.join(tmp.path, "tpl", "pages", n), f.read())


@pytest.fixture(scope="module")
def fd():
    t = harness.TempDir("form")
    copy_pages(t)
    write_forms(t, FORMS)
    d = harness.Daemon(t, name="fm", top={"forms": "forms"},
                       extra_lines=['list "news" { title = "News" }'])
    try:
        d.start(timeout=40)
        yield d
    finally:
        d.cleanup()
        t.cleanup()


def unique(tag):
    return "%s-%s@example.com" % (tag, uuid.uuid4().hex[:10])


def post_form(d, name, body, ctype="application/x-www-form-urlencoded",
              headers=None):
    h = {"Content-Type": ctype}
    h.update(headers or {})
    if isinstance(body, dict):
        body = urlencode(body)
    if isinstance(body, str):
        body = body.encode()
    return d.request("POST", "/f/" + name, body=body, headers=h)


def multipart(parts, boundary="----lcFormBoundary7MA4YWxkTrZu0gW"):
    """parts: [(name, value)] or [(name, value, filename)]."""
    out = []
    for p in parts:
        disp = 'form-data; name="%s"' % p[0]
        if len(p) > 2:
            disp += '; filename="%s"' % p[2]
        out.append("--%s\r\nContent-Disposition: %s\r\n%s\r\n" % (
            boundary, disp, "Content-Type: application/octet-stream\r\n"
            if len(p) > 2 else ""))
        out.append(p[1])
        out.append("\r\n")
    out.append("--%s--\r\n" % boundary)
    body = "".join(out).encode()
    return body, "multipart/form-data; boundary=%s" % boundary


def lead_row(d, email):
    """The lead with this email as a dict, or None."""
    out = d.psql("SELECT row_to_json(l) FROM leads l WHERE lower(email) = "
                 "lower(%s)" % mt.sql_str(email))
    return json.loads(out) if out else None


def count_leads(d, email):
    return int(d.psql("SELECT count(*) FROM leads WHERE lower(email) = "
                      "lower(%s)" % mt.sql_str(email)))


# ---- the page ------------------------------------------------------------------

def test_get_renders_the_form(fd):
    r = fd.get("/f/contact")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/html")
    page = r.text
    assert "<h1>Talk to sales</h1>" in page
    assert "We answer within a day." in page
    assert re.search(r'<form method="post"', page)
    # labels tied to inputs, required ones marked and required
    assert '<label for="f-email">Work email <span class="req" ' \
        'aria-hidden="true">*</span></label>' in page
    assert re.search(r'<input type="email" id="f-email" name="email" '
                     r'value="" maxlength="254" autocomplete="email" '
                     r'required>', page)
    assert re.search(r'<input type="text" id="f-name" name="name"[^>]* '
                     r'required>', page)
    assert re.search(r'<input type="text" id="f-company" name="company"'
                     r'[^>]*autocomplete="organization">', page)
    assert '<textarea id="f-message" name="message"' in page
    assert '<option>pro</option>' in page
    assert '<input type="hidden" name="utm" value="">' in page
    # the honeypot: hidden from people and from screen readers
    assert re.search(r'<div class="hp" aria-hidden="true">\s*<label '
                     r'for="f-hp">[^<]*</label>\s*<input type="text" '
                     r'id="f-hp" name="website" value="" tabindex="-1" '
                     r'autocomplete="off">', page)
    assert "frame-ancestors 'none'" in r.header("Content-Security-Policy")
    assert "form-action 'self'" in r.header("Content-Security-Policy")


def test_get_prefills_from_the_query(fd):
    r = fd.get("/f/contact?email=jo%40example.com&utm=spring%22%3E&x=1")
    assert r.status == 200, r
    assert 'name="email" value="jo@example.com"' in r.text
    # escaped: no way out of the attribute
    assert '<input type="hidden" name="utm" value="spring&quot;&gt;">' \
        in r.text


def test_unknown_form_is_404(fd):
    assert fd.get("/f/nope").status == 404
    assert fd.get("/f/").status == 404
    assert fd.get("/f/contact/x").status == 404
    r = post_form(fd, "nope", "email=a%40b.example",
                  headers={"Accept": "application/json"})
    assert r.status == 404
    assert r.json()["error"]["message"] == "no such form"


# ---- capture --------------------------------------------------------------------

def test_urlencoded_post_creates_a_lead(fd):
    email = unique("url")
    r = post_form(fd, "contact", {
        "email": email, "name": "Jane", "company": "Acme",
        "plan": "pro", "message": "Call me\r\nafter 5", "utm": "spring",
        "website": "", "unknown": "ignored"})
    assert r.status == 200, r
    assert "Thank you, Jane" in r.text
    assert email in r.text
    lead = lead_row(fd, email)
    assert lead, "no lead stored"
    assert lead["first_name"] == "Jane"
    assert lead["company"] == "Acme"
    assert lead["campaign"] == "spring"
    assert lead["source"] == "form:contact"
    assert lead["fields"] == {"plan": "pro", "message": "Call me after 5"}


def test_multipart_post_creates_a_lead(fd):
    email = unique("mp")
    body, ctype = multipart([
        ("email", email), ("name", "Jos\u00e9"), ("company", "Acme GmbH"),
        ("message", "line one\r\nline two"),
        ("attachment", "%PDF-1.4 binary", "cv.pdf"), ("website", "")])
    r = post_form(fd, "contact", body, ctype)
    assert r.status == 200, r
    assert "Thank you, Jos\u00e9" in r.text
    lead = lead_row(fd, email)
    assert lead, "no lead stored"
    assert lead["first_name"] == "Jos\u00e9"
    assert lead["company"] == "Acme GmbH"
    assert lead["source"] == "form:contact"
    assert lead["fields"] == {"message": "line one line two"}


def test_json_clients_get_json(fd):
    email = unique("json")
    r = post_form(fd, "contact", {"email": email, "name": "Al"},
                  headers={"Accept": "application/json"})
    assert r.status == 200, r
    assert r.json() == {"ok": True}
    assert count_leads(fd, email) == 1


# ---- refused posts store nothing ----------------------------------------------

def test_missing_required_field_is_400_naming_it(fd):
    email = unique("req")
    r = post_form(fd, "contact", {"email": email, "company": "Acme",
                                  "name": "  "})
    assert r.status == 400, r
    page = r.text
    # the form again, with what was typed and the message at the field
    assert 'value="%s"' % email in page
    assert 'value="Acme"' in page
    assert re.search(r'id="f-name" name="name"[^>]*aria-invalid="true" '
                     r'aria-describedby="f-name-error">', page)
    assert '<p class="error" id="f-name-error">this field is required</p>' \
        in page
    assert 'role="alert"' in page
    r = post_form(fd, "contact", {"email": email},
                  headers={"Accept": "application/json"})
    assert r.status == 400, r
    assert r.json()["error"]["field"] == "name"
    assert count_leads(fd, email) == 0


def test_invalid_values_are_400_naming_the_field(fd):
    email = unique("inv")
    cases = [
        ({"email": "not-an-address", "name": "A"}, "email"),
        ({"email": email, "name": "A", "plan": "gold"}, "plan"),
        ({"email": email, "name": "A", "phone": "call me"}, "phone"),
        ({"email": email, "name": "x" * 201}, "name"),
        ("email=%s&name=A&email=b%%40c.example" % email, "email"),
    ]
    for body, field in cases:
        r = post_form(fd, "contact", body,
                      headers={"Accept": "application/json"})
        assert r.status == 400, (body, r)
        assert r.json()["error"]["field"] == field, (body, r.json())
    assert count_leads(fd, email) == 0


def test_malformed_bodies(fd):
    h = {"Accept": "application/json"}
    r = post_form(fd, "contact", "email=a%4&name=A", headers=h)
    assert r.status == 400 and r.json()["error"]["field"] == "email", r
    r = post_form(fd, "contact", b"email=a%40b.example&name=%C3%28",
                  headers=h)
    assert r.status == 400 and r.json()["error"]["field"] == "name", r
    assert "UTF-8" in r.json()["error"]["message"]
    r = post_form(fd, "contact", '{"email": "a@b.example"}',
                  "application/json", headers=h)
    assert r.status == 415, r
    r = post_form(fd, "contact", b"--x\r\nno headers\r\n",
                  "multipart/form-data; boundary=x", headers=h)
    assert r.status == 400, r
    r = post_form(fd, "contact", b"anything", "multipart/form-data",
                  headers=h)
    assert r.status == 400, r
    assert "boundary" in r.json()["error"]["message"]
    # HTML clients get the form back with the message on top
    r = post_form(fd, "contact", "email=%zz")
    assert r.status == 400
    assert '<p class="error" id="f-email-error">malformed %-escape</p>' \
        in r.text
    r = post_form(fd, "contact", "&".join("f%d=1" % i for i in range(150)))
    assert r.status == 413
    assert "more than 100 fields" in r.text


def test_honeypot_gets_thanks_and_stores_nothing(fd):
    email = unique("bot")
    r = post_form(fd, "contact", {"email": email, "name": "Bot",
                                  "website": "http://spam.example"})
    assert r.status == 200, r
    assert "Thank you" in r.text
    body, ctype = multipart([("email", email), ("name", "Bot"),
                             ("website", "x")])
    r = post_form(fd, "contact", body, ctype,
                  headers={"Accept": "application/json"})
    assert r.status == 200 and r.json() == {"ok": True}, r
    assert count_leads(fd, email) == 0
    values, _ = fd.metrics()
    assert values.get('leadcast_form_posts_total{form="contact",'
                      'result="spam"}', 0) >= 2


def test_rate_limit_gives_429(fd):
    emails = [unique("rl") for _ in range(5)]
    for e in emails[:3]:
        r = post_form(fd, "limited", {"email": e})
        assert r.status == 200, r
    r = post_form(fd, "limited", {"email": emails[3]})
    assert r.status == 429, r
    assert 1 <= int(r.header("Retry-After")) <= 20
    assert "Too many submissions" in r.text
    r = post_form(fd, "limited", {"email": emails[4]},
                  headers={"Accept": "application/json"})
    assert r.status == 429
    assert "Too many" in r.json()["error"]["message"]
    assert count_leads(fd, emails[3]) == 0
    assert count_leads(fd, emails[4]) == 0
    # other forms have their own budget
    e = unique("rl-other")
    assert post_form(fd, "contact", {"email": e, "name": "N"}).status == 200


def test_redirect_form_answers_303_to_its_url_only(fd):
    email = unique("redir")
    body = {"email": email, "redirect": "https://evil.example/",
            "next": "https://evil.example/", "Location": "//evil.example"}
    r = fd.request("POST", "/f/goto?redirect=https://evil.example/&next=x",
                   body=urlencode(body),
                   headers={"Content-Type":
                            "application/x-www-form-urlencoded",
                            "Referer": "https://evil.example/"})
    assert r.status == 303, r
    assert r.header("Location") == REDIRECT
    lead = lead_row(fd, email)
    assert lead and lead["source"] == "landing-page"
    # errors stay on our page; JSON clients are told where to go
    r = post_form(fd, "goto", {"email": ""})
    assert r.status == 400 and r.header("Location") is None
    r = post_form(fd, "goto", {"email": unique("redir2")},
                  headers={"Accept": "application/json"})
    assert r.status == 200
    assert r.json() == {"ok": True, "redirect": REDIRECT}
    # the form page may be sent on to the redirect's site
    csp = fd.get("/f/goto").header("Content-Security-Policy")
    assert "form-action 'self' https://www.example.com;" in csp


def test_list_form_subscribes(fd):
    email = unique("sub")
    r = post_form(fd, "news", {"email": email, "first_name": "Sam"})
    assert r.status == 200, r

    def status():
        return fd.psql("SELECT s.status FROM subscriptions s JOIN lists li "
                       "ON li.id = s.list_id JOIN leads l ON l.id = "
                       "s.lead_id WHERE li.name = 'news' AND l.email = %s"
                       % mt.sql_str(email))
    assert harness.wait_until(status, 10, what="subscription") == "confirmed"
    assert lead_row(fd, email)["source"] == "form:news"


def test_allowed_origins(fd):
    email = unique("cors")
    h = {"Origin": "https://www.acme.example",
         "Accept": "application/json"}
    r = post_form(fd, "partner", {"email": email}, headers=h)
    assert r.status == 200, r
    assert r.header("Access-Control-Allow-Origin") == \
        "https://www.acme.example"
    assert r.header("Vary") == "Origin"
    assert count_leads(fd, email) == 1
    other = unique("cors-x")
    r = post_form(fd, "partner", {"email": other},
                  headers={"Origin": "https://evil.example"})
    assert r.status == 403, r
    assert r.header("Access-Control-Allow-Origin") is None
    assert count_leads(fd, other) == 0
    # our own pages may always post; the page may be framed by the partner
    r = post_form(fd, "partner", {"email": unique("cors-own")},
                  headers={"Origin": "http://127.0.0.1:%d" % fd.port})
    assert r.status == 200, r
    csp = fd.get("/f/partner").header("Content-Security-Policy")
    assert "frame-ancestors https://www.acme.example" in csp
    # forms without allowed_origins take plain posts from anywhere
    r = post_form(fd, "contact", {"email": unique("any"), "name": "A"},
                  headers={"Origin": "https://elsewhere.example"})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") is None


# ---- configuration ----------------------------------------------------------------

def test_check_config_and_reload(daemons, tmp):
    copy_pages(tmp)
    write_forms(tmp, {"a": 'field "email" { required = true }\n'})
    d = daemons(top={"forms": "forms"})
    r = cli(d.conf_path, "check-config")
    assert r.returncode == 0, r.stdout + r.stderr
    d.start(timeout=40)
    assert d.get("/f/a").status == 200
    assert d.get("/f/b").status == 404
    # a bad form: check-config names file:line:col, reload keeps the old
    bad = os.path.join(tmp.path, "forms", "b.conf")
    mt.write_file(bad, 'field "email" { }\nredirect = "http://x.example/"\n'
                  'colour = red\n')
    r = cli(d.conf_path, "check-config")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "%s:2:12: redirect: a fixed absolute https:// URL" % bad in out, out
    assert "%s:3:1: unknown key 'colour'" % bad in out, out
    r = d.post("/api/v1/reload", token=d.token)
    assert r.status == 422, r
    assert d.get("/f/a").status == 200
    assert d.get("/f/b").status == 404
    # fixed: the reload brings the new form in
    mt.write_file(bad, 'field "email" { }\nredirect = "https://x.example/"\n')
    r = d.post("/api/v1/reload", token=d.token)
    assert r.status == 200, r
    assert d.get("/f/b").status == 200
    r = post_form(d, "b", {"email": unique("rl")})
    assert r.status == 303 and r.header("Location") == "https://x.example/"


def test_the_example_configuration_checks():
    r = cli(os.path.join(harness.SRCDIR, "conf", "leadcast.conf"),
            "check-config")
    assert r.returncode == 0, r.stdout + r.stderr
