"""
What people look at, through headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium) against the real daemon and
its embedded PostgreSQL: the rep's lead card (Accept really accepts; a
second Accept after another rep took the lead says so; expired, altered
and foreign tokens show no data), the rep's page (Take next, cherry-pick,
filters, availability, profile with an error shown beside its field),
the public form (bad input shows the errors and keeps the values; every
input has a label) and the read-only /admin dashboard (basic auth, SVG
charts, CSV export). Phone-sized screenshots (390x844) of the rep pages
and desktop ones (1280x800) of the reports are written to
$LEADCAST_SCREENSHOTS (default: the test's temp dir).

One daemon and one browser for the module: Chromium starts once (~1 s).
"""
import base64
import csv
import io
import json
import os
import re
import shutil
import urllib.parse

import pytest

import harness
import mailtools as mt
from harness import wait_until

ROUTING = """\
time_zone = "UTC"
team "field" {
	method = round_robin
	offer_window = 10m
	max_offers = 2
	catch_all = "cat"
}
team "inside" {
	method = pull
}
team "bc" {
	method = broadcast
	offer_window = 10m
	catch_all = "cat"
}
rep "ann" { name = "Ann Archer"; email = "ann@reps.example"; teams = { "field", "inside", "bc" } }
rep "bob" { name = "Bob Baker"; email = "bob@reps.example"; teams = { "field", "bc" } }
rep "cat" { name = "Cat Catchall"; email = "cat@reps.example" }
rule "bc" { when = "source == 'bc'"; team = "bc" }
rule "inside" { when = "source == 'inbound'"; team = "inside" }
rule "default" { team = "field" }
"""

SCORING = """\
profile "enterprise" { when = "company_size >= 500"; points = 30 }
profile "decision maker" { when = "title contains 'VP'"; points = 20 }
profile "free mail" { when = "email matches '*@gmail.com'"; points = -10 }
"""

FORM = """
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
field "company" { label = "Company" }
field "phone" { label = "Phone" }
field "size" { to = company_size; label = "Company size" }
field "timeframe" {
\tlabel = "When do you want to start?"
\tchoices = { "This month", "This quarter", "Later" }
}
field "message" { to = fields.message; label = "How can we help?"; type = textarea }
"""

NEWS_FORM = """
title = "Acme News"
list = news
template = "brand/form"
rate_limit = 1000/m
field "email" { label = "Email"; required = true }
field "first_name" { label = "First name" }
"""

# A marketer's restyled copy of the form page: the same data, another look.
BRAND_TEMPLATE = """{{<pages/layout}}
{{$title}}{{form.title}}{{/title}}
{{$body}}
<h1 class="brand">{{form.title}} &mdash; once a month</h1>
<form method="post">
{{#fields}}<p><label for="{{id}}">{{label}}</label>
<input type="{{type}}" id="{{id}}" name="{{name}}" value="{{value}}">
{{#error}}<span class="error">{{error}}</span>{{/error}}</p>{{/fields}}
<button type="submit">Subscribe</button>
</form>
{{/body}}
{{/pages/layout}}
"""


def chromium_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--hide-scrollbars",
              "--force-device-scale-factor=1", "--disable-extensions",
              "--no-first-run", "--disable-background-networking"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")),
                            options=opts)


@pytest.fixture(scope="module")
def env():
    tmp = harness.TempDir("pages")
    mt.routing_dir(tmp, ROUTING, scoring=SCORING)
    mt.write_file(os.path.join(tmp.path, "forms", "contact.conf"), FORM)
    mt.write_file(os.path.join(tmp.path, "forms", "news.conf"), NEWS_FORM)
    mt.write_file(os.path.join(tmp.path, "tpl", "brand", "form.mustache"),
                  BRAND_TEMPLATE)
    outbox = tmp.sub("outbox", owner_daemon=True)
    d = harness.Daemon(tmp, name="pg", top={"forms": "forms"}, extra_lines=[
        "mail {", '\ttransport = "maildir:%s"' % outbox, "}",
        'list "news" {', '\ttitle = "Acme News"', "\tdouble_optin = true",
        "}"])
    d.outbox = mt.Maildir(outbox)
    browser = None
    try:
        d.start(timeout=30)
        d.key = mt.url_key(d)
        browser = chromium_driver()
        browser.set_page_load_timeout(10)
        d.browser = browser
        d.shots = os.environ.get("LEADCAST_SCREENSHOTS") or tmp.path
        os.makedirs(d.shots, exist_ok=True)
        yield d
    finally:
        if browser is not None:
            browser.quit()
        d.cleanup()
        tmp.cleanup()


def url(d, path):
    return "http://127.0.0.1:%d%s" % (d.port, path)


def phone(d):
    d.browser.set_window_size(390, 844)


def shot(d, name):
    """A full-page screenshot at the window's width."""
    b = d.browser
    h = b.execute_script("return document.documentElement.scrollHeight")
    w = b.execute_script("return window.innerWidth")
    size = b.get_window_size()
    b.set_window_size(size["width"], max(size["height"], h + 100))
    b.save_screenshot(os.path.join(d.shots, name + ".png"))
    b.set_window_size(size["width"], size["height"])
    assert w == size["width"] or w > 0


_seq = [0]


def capture(d, **fields):
    _seq[0] += 1
    lead = {"email": "p%d.%d@example.com" % (_seq[0], os.getpid()),
            "first_name": "Lee", "last_name": "Number%d" % _seq[0],
            "source": "web"}
    lead.update(fields)
    r = d.post("/api/v1/leads", body=json.dumps(lead).encode(),
               token=d.token)
    assert r.status in (200, 201), (r, r.text)
    return r.json()["lead"]["id"]


def pending(d, lead):
    out = d.psql("SELECT id, rep_id FROM offers WHERE lead_id = %d AND "
                 "status = 'pending' ORDER BY id" % lead)
    return [(int(l.split("|")[0]), l.split("|")[1])
            for l in out.splitlines()]


def rep_num(d, rep):
    return int(d.psql("SELECT num FROM reps WHERE id = '%s'" % rep))


def card_token(d, offer, rep):
    return mt.url_token(d.key, "r", offer, rep_num(d, rep))


def rep_token(d, rep):
    gen = int(d.psql("SELECT token_gen FROM reps WHERE id = '%s'" % rep))
    return mt.url_token(d.key, "p", rep_num(d, rep), gen)


def owner(d, lead):
    return d.psql("SELECT coalesce(owner, '') FROM leads WHERE id = %d"
                  % lead)


def unlabeled_inputs(b):
    """Visible form controls without a <label for> or aria-label."""
    return b.execute_script("""
        return Array.from(document.querySelectorAll(
            'input:not([type=hidden]):not([tabindex="-1"]), select, textarea'))
          .filter(e => !(e.labels && e.labels.length) &&
                       !e.getAttribute('aria-label'))
          .map(e => e.name || e.id);""")


# ---- the lead card -------------------------------------------------------------

def test_card_accept_in_browser(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    lead = capture(d, first_name="Maria", last_name="Gonzalez",
                   email="maria.gonzalez@northwind.example",
                   company="Northwind Logistics", title="VP Operations",
                   company_size=800, phone="+15125550142", city="Austin",
                   region="TX", country="US", product="Fleet tracking")
    r = d.post("/api/v1/events", body=json.dumps(
        {"lead": lead, "type": "visit", "url": "https://acme.example/pricing"}
    ).encode(), token=d.token)
    assert r.status in (200, 201), r.text
    (oid, rep), = wait_until(lambda: pending(d, lead), 10, what="offer")
    phone(d)
    b.get(url(d, "/r/" + card_token(d, oid, rep)))
    assert b.find_element(By.TAG_NAME, "h1").text == "Maria Gonzalez"
    text = b.find_element(By.TAG_NAME, "body").text
    assert "Northwind Logistics" in text and "Austin, TX, US" in text
    assert "Why score 50" in text and "+30 enterprise" in text
    assert "+20 decision maker" in text
    assert "Visited the site" in text and "Came in" in text
    assert re.search(r"\b(9 min|10 min)\b.* left", text), text
    # contact links only once the lead is the rep's
    assert not b.find_elements(By.CSS_SELECTOR, "a[href^='tel:']")
    shot(d, "lead-card-offer")
    assert owner(d, lead) == ""
    b.find_element(By.XPATH, "//button[text()='Accept lead']").click()
    wait_until(lambda: "this lead is yours" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="accepted")
    assert owner(d, lead) == rep
    hrefs = [a.get_attribute("href") for a in
             b.find_elements(By.CSS_SELECTOR, ".actions a")]
    assert hrefs == ["tel:+15125550142", "sms:+15125550142",
                     "mailto:" + d.psql("SELECT email FROM leads WHERE "
                                        "id = %d" % lead)]
    # big touch targets: every button and contact link at least 44 px high
    for e in b.find_elements(By.CSS_SELECTOR, ".actions a, button"):
        assert e.size["height"] >= 44, e.text
    # nothing wider than the phone
    assert b.execute_script("return document.documentElement.scrollWidth"
                            ) <= 390
    shot(d, "lead-card")
    # the card again (a GET) shows the same, with no answer buttons
    b.get(url(d, "/r/" + card_token(d, oid, rep)))
    assert not b.find_elements(By.XPATH, "//button[text()='Accept lead']")
    assert b.find_elements(By.CSS_SELECTOR, "a[href='tel:+15125550142']")


def test_second_accept_after_another_took_it(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    lead = capture(d, source="bc", company="Contoso")
    offers = wait_until(lambda: len(pending(d, lead)) == 2 and
                        pending(d, lead), 10, what="broadcast")
    mine = [o for o in offers if o[1] == "ann"][0]
    theirs = [o for o in offers if o[1] == "bob"][0]
    phone(d)
    b.get(url(d, "/r/" + card_token(d, mine[0], "ann")))
    assert "first to accept wins" in b.find_element(By.TAG_NAME, "body").text
    r = d.post("/api/v1/offers/%d/accept" % theirs[0], token=d.token)
    assert r.status == 200, r.text
    b.find_element(By.XPATH, "//button[text()='Accept lead']").click()
    wait_until(lambda: "Someone else took this lead first" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="taken")
    assert owner(d, lead) == "bob"
    assert not b.find_elements(By.CSS_SELECTOR, "a[href^='tel:'], "
                               "a[href^='mailto:']")
    # by plain HTTP: 409, and a GET says the same without a form
    r = d.request("POST", "/r/%s/accept" % card_token(d, mine[0], "ann"))
    assert r.status == 409 and "Someone else took this lead" in r.text
    r = d.get("/r/" + card_token(d, mine[0], "ann"))
    assert "Someone else took this lead" in r.text and "<form" not in r.text


def test_bad_tokens_show_no_data(env):
    d = env
    lead = capture(d, company="Secretco", first_name="Hidden")
    (oid, rep), = wait_until(lambda: pending(d, lead), 10, what="offer")
    good = card_token(d, oid, rep)
    other = "bob" if rep == "ann" else "ann"
    for path in ("/r/" + mt.tamper(good), "/r/" + card_token(d, oid, other),
                 "/r/" + good[:-3], "/rep/" + mt.tamper(rep_token(d, rep)),
                 "/rep/" + card_token(d, oid, rep)):
        r = d.get(path)
        assert r.status == 404, path
        assert "not valid" in r.text and "Secretco" not in r.text
        assert "Hidden" not in r.text
    # a POST with a foreign token changes nothing
    r = d.request("POST", "/r/%s/accept" % card_token(d, oid, other))
    assert r.status == 404 and owner(d, lead) == ""
    # a card older than 7 days has expired
    d.psql("UPDATE offers SET created_at = now() - interval '8 days' "
           "WHERE id = %d" % oid)
    r = d.get("/r/" + good)
    assert r.status == 404 and "expired" in r.text
    assert "Secretco" not in r.text
    # a revoked rep token (token_gen bumped)
    tok = rep_token(d, "bob")
    assert d.get("/rep/" + tok).status == 200
    d.psql("UPDATE reps SET token_gen = token_gen + 1 WHERE id = 'bob'")
    r = d.get("/rep/" + tok)
    assert r.status == 404 and "Bob" not in r.text
    r = d.request("POST", "/rep/%s/availability" % tok, body=b"on=0",
                  headers={"Content-Type":
                           "application/x-www-form-urlencoded"})
    assert r.status == 404
    assert d.psql("SELECT on_duty FROM reps WHERE id = 'bob'") == "t"


# ---- the rep's page ---------------------------------------------------------------

def test_queue_take_filter_and_availability(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    leads = {}
    for co, size in (("Globex", 900), ("Initech", 50), ("Umbrella", 20)):
        leads[co] = capture(d, source="inbound", company=co,
                            company_size=size, city="Denver")
    wait_until(lambda: d.psql("SELECT count(*) FROM leads WHERE queue = "
                              "'inside' AND owner IS NULL") == "3", 10,
               what="queued")
    tok = rep_token(d, "ann")
    phone(d)
    b.get(url(d, "/rep/" + tok))
    body = b.find_element(By.TAG_NAME, "body").text
    assert "Queue · 3 waiting" in body
    assert all(co in body for co in leads)
    assert unlabeled_inputs(b) == []
    shot(d, "rep-queue")
    # filters: text, then minimum score
    b.find_element(By.TAG_NAME, "summary").click()
    q = b.find_element(By.ID, "f-q")
    q.send_keys("initech")
    b.find_element(By.XPATH, "//button[text()='Filter']").click()
    # the click starts a navigation; the old page may still be there
    wait_until(lambda: "q=initech" in b.current_url and
               b.execute_script("return document.readyState") == "complete",
               10, what="the filtered queue")
    items = b.find_elements(By.CSS_SELECTOR, "section[aria-label=Queue] "
                            "li.lead-line")
    assert len(items) == 1 and "Initech" in items[0].text
    assert b.find_element(By.ID, "f-q").get_attribute("value") == "initech"
    b.get(url(d, "/rep/%s?min_score=25" % tok))
    items = b.find_elements(By.CSS_SELECTOR, "section[aria-label=Queue] "
                            "li.lead-line")
    assert len(items) == 1 and "Globex" in items[0].text
    # cherry-pick Initech
    b.get(url(d, "/rep/%s?q=initech" % tok))
    b.find_element(By.CSS_SELECTOR, "form.take button").click()
    wait_until(lambda: "This lead is yours" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="taken")
    assert owner(d, leads["Initech"]) == "ann"
    # Take next: the oldest of the highest priority of the two left
    b.get(url(d, "/rep/" + tok))
    b.find_element(By.XPATH, "//button[text()='Take next lead']").click()
    wait_until(lambda: "This lead is yours" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="next")
    assert owner(d, leads["Globex"]) == "ann"
    b.get(url(d, "/rep/" + tok))
    body = b.find_element(By.TAG_NAME, "body").text
    assert "Queue · 1 waiting" in body and "Globex" in body.split(
        "My open leads")[1]
    # availability
    b.find_element(By.XPATH, "//button[text()='Go off duty']").click()
    wait_until(lambda: "You are off duty" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="off")
    assert d.psql("SELECT on_duty FROM reps WHERE id = 'ann'") == "f"
    b.find_element(By.XPATH, "//button[text()='Go available']").click()
    wait_until(lambda: "You are available" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="on")
    assert d.psql("SELECT on_duty FROM reps WHERE id = 'ann'") == "t"
    # a GET never changes anything
    d.get("/rep/%s/availability?on=0" % tok)
    d.get("/rep/%s/next" % tok)
    assert d.psql("SELECT on_duty FROM reps WHERE id = 'ann'") == "t"
    assert owner(d, leads["Umbrella"]) == ""


def test_profile_edit_with_error(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    tok = rep_token(d, "bob")
    phone(d)
    b.get(url(d, "/rep/%s/profile" % tok))
    assert unlabeled_inputs(b) == []
    skills = b.find_element(By.ID, "p-skills")
    skills.clear()
    skills.send_keys("enterprise, spanish")
    hours = b.find_element(By.ID, "p-hours")
    hours.clear()
    hours.send_keys("someday 25:00-26:00")
    b.find_element(By.XPATH, "//button[text()='Save profile']").click()
    err = wait_until(lambda: b.find_elements(By.CSS_SELECTOR, ".error"), 5,
                     what="the error beside the field")
    assert "hours" in err[0].text.lower() or "hours" in \
        b.find_element(By.CSS_SELECTOR, ".note").text.lower()
    assert b.find_element(By.ID, "p-skills").get_attribute("value") == \
        "enterprise, spanish"
    assert b.find_element(By.ID, "p-hours").get_attribute("value") == \
        "someday 25:00-26:00"
    assert "spanish" not in d.psql("SELECT profile FROM reps WHERE id = "
                                   "'bob'")
    shot(d, "rep-profile-error")
    hours = b.find_element(By.ID, "p-hours")
    hours.clear()
    hours.send_keys("mon-fri 08:00-18:00")
    b.find_element(By.XPATH, "//button[text()='Save profile']").click()
    wait_until(lambda: "Your profile is saved" in
               b.find_element(By.TAG_NAME, "body").text, 5, what="saved")
    prof = json.loads(d.psql("SELECT profile FROM reps WHERE id = 'bob'"))
    assert prof["skills"] == ["enterprise", "spanish"]
    assert prof["hours"] == ["mon-fri 08:00-18:00"]
    r = d.get("/api/v1/reps/bob", token=d.token)
    assert r.json()["rep"]["skills"] == ["enterprise", "spanish"]


# ---- the reports dashboard ------------------------------------------------------------

def seed_campaigns(d):
    """Two sent campaigns with opens, clicks, bounces over a few hours."""
    d.psql("""
    INSERT INTO campaigns (name, kind, status, started_at)
    VALUES ('spring-sale', 'newsletter', 'done', now() - interval '20 hours'),
           ('summer-news', 'newsletter', 'done', now() - interval '10 hours');
    INSERT INTO campaign_links (campaign_id, url)
    SELECT c.id, u FROM campaigns c, unnest(ARRAY[
        'https://shop.example/pricing', 'https://shop.example/blog/spring',
        'https://shop.example/contact']) u WHERE c.name LIKE 's%-%';
    INSERT INTO deliveries (campaign_id, email, status, smtp_status, sent_at)
    SELECT c.id, 'r' || g || '@' || (ARRAY['gmail.com', 'yahoo.com',
        'outlook.com', 'acme.example'])[1 + g % 4],
        CASE WHEN g % 10 = 0 THEN 'bounced' ELSE 'sent' END,
        CASE WHEN g % 20 = 0 THEN '5.1.1' WHEN g % 10 = 0 THEN '4.2.2' END,
        c.started_at
    FROM campaigns c, generate_series(1, CASE WHEN c.name = 'spring-sale'
        THEN 200 ELSE 120 END) g WHERE c.name LIKE 's%-%';
    INSERT INTO events (type, campaign_id, delivery_id, created_at)
    SELECT 'open', d.campaign_id, d.id, c.started_at + (d.id % 9) *
        interval '1 hour' + (d.id % 7) * interval '5 minutes'
    FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
    WHERE d.status = 'sent' AND d.id % 3 <> 0 AND c.name LIKE 's%-%';
    INSERT INTO events (type, campaign_id, delivery_id, link_id, created_at)
    SELECT 'click', d.campaign_id, d.id, (SELECT min(id) + d.id % 3 FROM
        campaign_links WHERE campaign_id = d.campaign_id), c.started_at +
        (d.id % 8) * interval '1 hour' + interval '10 minutes'
    FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
    WHERE d.status = 'sent' AND d.id % 4 = 1 AND c.name LIKE 's%-%';
    UPDATE events SET class = CASE WHEN id % 5 = 0 THEN 'machine' WHEN
        id % 7 = 0 THEN 'scanner' ELSE 'human' END WHERE campaign_id IS
        NOT NULL;
    """)


def test_admin_dashboard(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    seed_campaigns(d)
    # no credentials, a wrong password: 401 with a Basic challenge
    r = d.get("/admin")
    assert r.status == 401 and "Basic" in r.header("WWW-Authenticate")
    bad = base64.b64encode(b"admin:" + b"x" * len(d.token)).decode()
    assert d.request("GET", "/admin", headers={
        "Authorization": "Basic " + bad}).status == 401
    assert d.get("/admin/campaign/spring-sale").status == 401
    good = base64.b64encode(("admin:" + d.token).encode()).decode()
    r = d.request("GET", "/admin", headers={"Authorization": "Basic " + good})
    assert r.status == 200 and "spring-sale" in r.text
    # read-only
    assert d.request("POST", "/admin", headers={
        "Authorization": "Basic " + good}).status in (404, 405)
    # CSV of a table: the numbers the page shows
    r = d.get("/admin?csv=campaigns", token=d.token)
    assert r.status == 200 and r.header("Content-Type").startswith("text/csv")
    assert "attachment" in r.header("Content-Disposition")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["Campaign", "Kind", "Status"]
    spring = [x for x in rows if x[0] == "spring-sale"][0]
    hdr = rows[0]
    assert spring[hdr.index("Recipients")] == "200"
    assert spring[hdr.index("Sent")] == "180"
    assert spring[hdr.index("Bounced")] == "20"
    opened = int(d.psql("SELECT count(DISTINCT delivery_id) FROM events e "
                        "JOIN campaigns c ON c.id = e.campaign_id WHERE "
                        "c.name = 'spring-sale' AND type = 'open'"))
    assert spring[hdr.index("Opened")] == str(opened)
    assert d.get("/admin?csv=nope", token=d.token).status == 404
    human = int(d.psql("SELECT count(DISTINCT delivery_id) FROM events e "
                       "JOIN campaigns c ON c.id = e.campaign_id WHERE "
                       "c.name = 'spring-sale' AND type = 'open' AND "
                       "class = 'human'"))
    assert 0 < human < opened
    assert spring[hdr.index("Opened (human)")] == str(human)
    # rates count people only
    assert float(spring[hdr.index("Open rate %")]) == round(
        100.0 * human / 180, 1)
    r = d.get("/admin/campaign/spring-sale?csv=human_machine",
              token=d.token)
    by = {x[0]: x[1:] for x in csv.reader(io.StringIO(r.text))}
    assert [int(v) for v in by["open"]] == [int(d.psql(
        "SELECT count(*) FROM events e JOIN campaigns c ON c.id = "
        "e.campaign_id WHERE c.name = 'spring-sale' AND type = 'open' AND "
        "class = '%s'" % k)) for k in ("human", "machine", "scanner")]

    # the browser: the campaign report at 1280x800
    b.set_window_size(1280, 800)
    b.get("http://admin:%s@127.0.0.1:%d/admin" % (d.token, d.port))
    assert b.find_element(By.TAG_NAME, "h1").text == "Campaigns"
    assert unlabeled_inputs(b) == []
    b.find_element(By.LINK_TEXT, "spring-sale").click()
    wait_until(lambda: b.find_element(By.TAG_NAME, "h1").text ==
               "spring-sale", 10, what="the campaign's page")
    svgs = b.find_elements(By.CSS_SELECTOR, "section svg")
    assert len(svgs) >= 5
    # the time series has one point per hour from the start
    line = b.find_element(By.CSS_SELECTOR, "svg polyline")
    assert len(line.get_attribute("points").split()) >= 9
    body = b.find_element(By.TAG_NAME, "body").text
    assert "https://shop.example/pricing" in body
    assert "gmail.com" in body and "hard: bad address" in body
    assert "soft: temporary" in body
    # every chart is drawn inside its section, none wider than the page
    assert b.execute_script("return document.documentElement.scrollWidth"
                            ) <= 1280
    shot(d, "campaign-report")
    # CSV links on every table
    sections = b.find_elements(By.CSS_SELECTOR, "section")
    tables = b.find_elements(By.CSS_SELECTOR, "section table")
    csv_links = b.find_elements(By.LINK_TEXT, "CSV")
    assert len(csv_links) == len(tables) >= 6 and sections
    href = csv_links[-1].get_attribute("href")
    r = d.get(href.split(str(d.port), 1)[1], token=d.token)
    assert r.status == 200 and "hard: bad address,10" in r.text
    # compare two campaigns side by side
    b.get("http://admin:%s@127.0.0.1:%d/admin" % (d.token, d.port))
    for box in b.find_elements(By.CSS_SELECTOR, "input[name=c]"):
        if box.get_attribute("value") in ("spring-sale", "summer-news"):
            box.click()
    b.find_element(By.XPATH, "//button[text()='Compare']").click()
    heads = wait_until(lambda: (lambda h: h if h[:1] == ["Measure"] else
                                None)([th.text for th in b.find_elements(
                                    By.CSS_SELECTOR, "thead th")]),
                       10, what="the comparison")
    assert heads[0] == "Measure" and sorted(heads[1:]) == [
        "spring-sale", "summer-news"]
    assert b.find_elements(By.CSS_SELECTOR, "section svg rect")
    # routing and leads (the leads of the tests above)
    b.get("http://admin:%s@127.0.0.1:%d/admin/routing?days=7" % (
        d.token, d.port))
    body = b.find_element(By.TAG_NAME, "body").text
    assert "Speed to lead by team" in body and "Acceptance" in body
    assert "ann" in body and "field" in body
    assert len(b.find_elements(By.CSS_SELECTOR, "section svg")) >= 3
    shot(d, "routing-report")
    b.get("http://admin:%s@127.0.0.1:%d/admin/leads" % (d.token, d.port))
    body = b.find_element(By.TAG_NAME, "body").text
    assert "inbound" in body and "web" in body
    assert d.get("/admin/routing?days=0", token=d.token).status == 400
    # the numbers behind them: queue depth now, acceptance per rep
    r = d.get("/admin/routing?days=7&csv=queue_depth", token=d.token)
    last = list(csv.reader(io.StringIO(r.text)))[-1]
    assert last[1] == d.psql("SELECT count(*) FROM leads WHERE queue IS "
                             "NOT NULL AND owner IS NULL") != "0"
    r = d.get("/admin/routing?days=7&csv=acceptance", token=d.token)
    acc = {x[0]: x for x in csv.reader(io.StringIO(r.text))}
    assert acc["bob"][1:3] == d.psql(
        "SELECT count(*) || '|' || count(*) FILTER (WHERE status = "
        "'accepted') FROM offers WHERE rep_id = 'bob'").split("|")


# ---- forms ---------------------------------------------------------------------------

def test_form_errors_keep_values(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    phone(d)
    b.get(url(d, "/f/contact"))
    assert b.find_element(By.TAG_NAME, "h1").text == "Talk to sales"
    assert unlabeled_inputs(b) == []
    b.find_element(By.ID, "f-email").send_keys("not-an-address")
    b.find_element(By.ID, "f-name").send_keys("Zoë Quinn")
    b.find_element(By.ID, "f-company").send_keys("Quinn & Co")
    b.find_element(By.ID, "f-message").send_keys("Line one, <b>two</b>")
    # the browser's own checks off: the server's are what is tested
    b.execute_script("document.querySelector('main form').noValidate = true")
    b.find_element(By.CSS_SELECTOR, "main form button").click()
    err = wait_until(lambda: b.find_elements(By.CSS_SELECTOR, "p.error"), 5,
                     what="inline error")
    assert len(err) == 1 and "email" in err[0].text.lower()
    email = b.find_element(By.ID, "f-email")
    assert email.get_attribute("aria-invalid") == "true"
    assert email.get_attribute("aria-describedby") == err[0].get_attribute(
        "id")
    assert email.get_attribute("value") == "not-an-address"
    assert b.find_element(By.ID, "f-name").get_attribute("value") == \
        "Zoë Quinn"
    assert b.find_element(By.ID, "f-company").get_attribute("value") == \
        "Quinn & Co"
    assert b.find_element(By.ID, "f-message").get_attribute("value") == \
        "Line one, <b>two</b>"
    assert unlabeled_inputs(b) == []
    assert d.psql("SELECT count(*) FROM leads WHERE company = "
                  "'Quinn & Co'") == "0"
    shot(d, "form-error")
    email = b.find_element(By.ID, "f-email")
    email.clear()
    email.send_keys("zoe@quinn.example")
    b.find_element(By.CSS_SELECTOR, "main form button").click()
    wait_until(lambda: "Thank you, Zoë" in
               b.find_element(By.TAG_NAME, "h1").text, 5, what="thanks")
    assert d.psql("SELECT company FROM leads WHERE email = "
                  "'zoe@quinn.example'") == "Quinn & Co"


def test_restyled_form_double_opt_in(env):
    from selenium.webdriver.common.by import By
    d, b = env, env.browser
    phone(d)
    b.get(url(d, "/f/news"))
    assert b.find_element(By.CSS_SELECTOR, "h1.brand").text == \
        "Acme News — once a month"
    assert unlabeled_inputs(b) == []
    b.find_element(By.ID, "f-email").send_keys("reader@news.example")
    b.find_element(By.ID, "f-first_name").send_keys("Rita")
    b.find_element(By.XPATH, "//button[text()='Subscribe']").click()
    wait_until(lambda: "Thank you, Rita" in
               b.find_element(By.TAG_NAME, "h1").text, 5, what="thanks")
    sub = "SELECT s.status FROM subscriptions s JOIN leads l ON l.id = " \
        "s.lead_id WHERE l.email = 'reader@news.example'"
    assert d.psql(sub) == "unconfirmed"
    msg = wait_until(lambda: [m for m in d.outbox.messages() if
                              "reader@news.example" in (m[2]["To"] or "")],
                     10, what="confirmation email")
    body = msg[-1][1].decode(errors="replace").replace("=\r\n", "")
    link = re.search(r"(/s/[A-Za-z0-9_-]+)", body).group(1)
    b.get(url(d, link))
    assert d.psql(sub) == "unconfirmed"   # opening the link is not enough
    b.find_element(By.XPATH, "//button[text()='Yes, subscribe me']").click()
    wait_until(lambda: "You are subscribed" in
               b.find_element(By.TAG_NAME, "h1").text, 5, what="confirmed")
    assert d.psql(sub) == "confirmed"
