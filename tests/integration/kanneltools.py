"""
kanneltools - Kannel for the SMS tests and benchmark: bearerbox, smsbox
and the fake SMSC client fakesmsc (Debian's kannel and kannel-extras) on
free loopback ports with a generated kannel.conf whose sms-service
forwards inbound texts to leadcast's /sms/in/kannel; a small local HTTP
server standing in for an http gateway (LocalGateway); the project's SMS
templates copied beside a test's configuration. Standard library only,
like harness.py.
"""
import http.server
import json
import os
import re
import shutil
import subprocess
import threading

import harness
from harness import wait_until

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"


def installed():
    return all(os.access(p, os.X_OK) for p in (BEARERBOX, SMSBOX, FAKESMSC))


def copy_sms_templates(tmp):
    """templates/sms/* of the source tree into tmp's tpl/sms."""
    src = os.path.join(harness.SRCDIR, "templates", "sms")
    for n in os.listdir(src):
        shutil.copy(os.path.join(src, n), os.path.join(tmp.sub("tpl/sms"),
                                                       n))


class LocalGateway:
    """An HTTP API on a free loopback port: post(handler, body) is called
    for each POST and returns (status, JSON document) to answer, or None
    to answer nothing. keep_alive: HTTP/1.1 (connections kept between
    requests), else HTTP/1.0 (closed after each answer); ssl_ctx: TLS."""

    def __init__(self, post, keep_alive=False, ssl_ctx=None):
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                answer = post(self, self.rfile.read(n))
                if answer is None:
                    return
                out = json.dumps(answer[1]).encode()
                self.send_response(answer[0])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        if ssl_ctx:
            self.server.socket = ssl_ctx.wrap_socket(self.server.socket,
                                                     server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- Kannel --------------------------------------------------------------------

class Kannel:
    """bearerbox + smsbox + fakesmsc on free ports; get-url to leadcast."""

    def __init__(self, tmp, leadcast_port, secret):
        self.dir = tmp.sub("kannel")
        self.admin = harness.free_port()
        self.box = harness.free_port()
        self.smsc = harness.free_port()
        self.sendsms = harness.free_port()
        self.conf = os.path.join(self.dir, "kannel.conf")
        self.fake_out = os.path.join(self.dir, "fakesmsc.out")
        self.procs = {}
        get_url = ("http://127.0.0.1:%d/sms/in/kannel?secret=%s&from=%%p&"
                   "to=%%P&text=%%a" % (leadcast_port, secret))
        with open(self.conf, "w") as f:
            f.write("""\
group = core
admin-port = %(admin)d
admin-password = adminpw
admin-interface = 127.0.0.1
smsbox-port = %(box)d
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "%(dir)s/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = %(smsc)d
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = %(box)d
sendsms-port = %(sendsms)d
sendsms-interface = 127.0.0.1
log-file = "%(dir)s/smsbox.log"
log-level = 1

group = sendsms-user
username = leadcast
password = pw
max-messages = 10
concatenation = true

group = sms-service
keyword = default
get-url = "%(get_url)s"
max-messages = 0
catch-all = true
""" % dict(admin=self.admin, box=self.box, smsc=self.smsc,
           sendsms=self.sendsms, dir=self.dir, get_url=get_url))

    def _spawn(self, name, argv, out=None):
        f = open(out or os.path.join(self.dir, name + ".out"), "ab")
        self.procs[name] = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
            cwd=self.dir, start_new_session=True)
        f.close()

    def _wait_port(self, port, what):
        wait_until(lambda: not harness.port_is_free(port), 15,
                   what="%s listening on %d" % (what, port))

    def start(self):
        self._spawn("bearerbox", [BEARERBOX, self.conf])
        self._wait_port(self.box, "bearerbox")
        self._wait_port(self.smsc, "the fake SMSC")
        self._spawn("smsbox", [SMSBOX, self.conf])
        self._wait_port(self.sendsms, "smsbox")
        self.fake()
        # smsbox connected to bearerbox, fakesmsc to the SMSC port
        wait_until(lambda: "Fakesmsc client connected" in
                   self.log("bearerbox") and
                   self.log("bearerbox").count("Client connected") >= 1, 15,
                   what="Kannel boxes connected")

    def fake(self, mo=None):
        """(Re)start fakesmsc, the phone side; mo: (from, text) to send
        once. It keeps printing what it receives."""
        self.stop_proc("fakesmsc")
        argv = [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.smsc), "-i",
                "0.05"]
        if mo:
            argv += ["-m", "1", "%s 12345 text %s" % mo]
        else:
            argv += ["-m", "0", "0 0 text nothing"]
        mark = len(self.fake_log())
        self._spawn("fakesmsc", argv, out=self.fake_out)
        if mo:
            wait_until(lambda: "sent message 1" in self.fake_log()[mark:],
                       10, what="fakesmsc sending")

    def stop_proc(self, name, timeout=5):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def stop(self):
        for name in ("fakesmsc", "smsbox", "bearerbox"):
            self.stop_proc(name)

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def fake_log(self):
        try:
            with open(self.fake_out, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def received(self, to=None):
        """[(from, to, text)] fakesmsc got from the SMSC."""
        out = []
        for m in re.finditer(r"Got message \d+: <(\S+) (\S+) text (.*)>\n",
                             self.fake_log()):
            if to is None or m.group(2) == to:
                out.append(m.groups())
        return out
