"""
dovecottools - a real Dovecot (Debian's dovecot-imapd and dovecot-pop3d)
for the bounce tests and tests/bench/bounce: a generated configuration in
a temporary directory, IMAP and POP3 (and IMAPS with a throwaway
certificate) on free loopback ports, a passwd-file of users, Maildir
stores filled by writing files (Dovecot indexes them on first access),
run as the unprivileged test user when the suite runs as root.

Dovecot(tmp, idle=False) hides IDLE from the capabilities (the daemon
then polls). Standard library only.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

import harness

DOVECOT = "/usr/sbin/dovecot"


def available():
    return os.access(DOVECOT, os.X_OK)


class Dovecot:
    def __init__(self, tmp, name="dovecot", idle=True, tls=False):
        if not available():
            raise RuntimeError("dovecot not found: apt-get install "
                               "dovecot-imapd dovecot-pop3d")
        self.tmp = tmp
        self.dir = tmp.sub(name)
        self.idle = idle
        self.tls = tls
        self.imap_port = harness.free_port()
        self.pop3_port = harness.free_port()
        self.imaps_port = harness.free_port() if tls else 0
        self.users = {}
        self.proc = None
        if harness.IS_ROOT:
            harness.ensure_test_user()
            pw = pwd.getpwnam(harness.TEST_USER)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            self.user = harness.TEST_USER
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            self.user = pwd.getpwuid(self.uid).pw_name
        os.chown(self.dir, self.uid, self.gid)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.cert = self.key = None
        if tls:
            self.cert = os.path.join(self.dir, "cert.pem")
            self.key = os.path.join(self.dir, "key.pem")
            harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                         "-addext", "subjectAltName=IP:127.0.0.1",
                         "-keyout", self.key, "-out", self.cert])

    # -- users and mail --------------------------------------------------

    def add_user(self, name, password):
        self.users[name] = password
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for u, p in self.users.items():
                f.write("%s:{PLAIN}%s\n" % (u, p))
        for sub in ("cur", "new", "tmp"):
            self._mkdir(os.path.join(self.maildir(name), sub))

    def maildir(self, user, folder="INBOX"):
        base = os.path.join(self.dir, "home", user, "Maildir")
        return base if folder == "INBOX" else os.path.join(base, "." + folder)

    def _mkdir(self, path):
        os.makedirs(path, exist_ok=True)
        p = path
        while p.startswith(self.dir) and p != self.dir:
            os.chown(p, self.uid, self.gid)
            p = os.path.dirname(p)

    def deliver(self, user, raw, folder="INBOX", n=[0]):
        """Put one message (bytes) into user's folder; returns its file."""
        md = self.maildir(user, folder)
        for sub in ("cur", "new", "tmp"):
            self._mkdir(os.path.join(md, sub))
        n[0] += 1
        name = "%d.M%dP%d.lctest" % (int(time.time()), n[0], os.getpid())
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(raw.replace(b"\r\n", b"\n"))
        os.chown(tmp, self.uid, self.gid)
        dst = os.path.join(md, "new", name)
        os.rename(tmp, dst)
        return dst

    def count(self, user, folder="INBOX"):
        md = self.maildir(user, folder)
        total = 0
        for sub in ("cur", "new"):
            p = os.path.join(md, sub)
            if os.path.isdir(p):
                total += len(os.listdir(p))
        return total

    def messages(self, user, folder="INBOX"):
        md = self.maildir(user, folder)
        out = []
        for sub in ("new", "cur"):
            p = os.path.join(md, sub)
            if os.path.isdir(p):
                for n in sorted(os.listdir(p)):
                    with open(os.path.join(p, n), "rb") as f:
                        out.append((n, f.read()))
        return out

    def seen(self, user, folder="INBOX"):
        """Names of messages with the \\Seen flag (maildir ":2,...S")."""
        p = os.path.join(self.maildir(user, folder), "cur")
        if not os.path.isdir(p):
            return []
        return [n for n in os.listdir(p) if ":2," in n and
                "S" in n.split(":2,", 1)[1]]

    # -- the server --------------------------------------------------------

    def config_text(self):
        caps = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ "
                "UIDPLUS MOVE NAMESPACE UNSELECT CHILDREN")
        if self.idle:
            caps += " IDLE"
        d = self.dir
        lines = [
            "base_dir = %s/run" % d,
            "state_dir = %s/state" % d,
            "log_path = %s" % self.log,
            "info_log_path = %s" % self.log,
            "protocols = imap pop3",
            "listen = 127.0.0.1",
            "ssl = %s" % ("yes" if self.tls else "no"),
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "default_internal_user = %s" % self.user,
            "default_internal_group = %s" % self.user,
            "default_login_user = %s" % self.user,
            "first_valid_uid = 1",
            "mail_location = maildir:~/Maildir",
            "pop3_uidl_format = %08Xu%08Xv",
            "imap_capability = %s" % caps,
            "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN "
            "username_format=%%u %s/passwd\n}" % d,
            "userdb {\n  driver = static\n  args = uid=%d gid=%d "
            "home=%s/home/%%u\n}" % (self.uid, self.gid, d),
            "service imap-login {\n  inet_listener imap {\n    port = %d\n"
            "  }\n  inet_listener imaps {\n    port = %d\n  }\n}" % (
                self.imap_port, self.imaps_port),
            "service pop3-login {\n  inet_listener pop3 {\n    port = %d\n"
            "  }\n  inet_listener pop3s {\n    port = 0\n  }\n}" %
            self.pop3_port,
            "service anvil {\n  chroot =\n}",
            "service imap-login {\n  chroot =\n}",
            "service pop3-login {\n  chroot =\n}",
            "ssl_dh =",
        ]
        if self.tls:
            lines += ["ssl_cert = <%s" % self.cert, "ssl_key = <%s" % self.key]
        return "\n".join(l for l in lines if l != "ssl_dh =") + "\n"

    def start(self):
        for sub in ("run", "state", "home"):
            self._mkdir(os.path.join(self.dir, sub))
        if not os.path.exists(os.path.join(self.dir, "passwd")):
            self.add_user("nobody-here", "x")
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        for p in (self.conf, os.path.join(self.dir, "passwd"), self.cert,
                  self.key):
            if p:
                os.chown(p, self.uid, self.gid)
        argv = [DOVECOT, "-F", "-c", self.conf]
        if harness.IS_ROOT:
            argv = ["runuser", "-u", self.user, "--"] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log + ".err", "ab"),
                                     cwd=self.dir, start_new_session=True)

        def greets():
            if self.proc.poll() is not None:
                raise AssertionError("dovecot exited %s: %s %s" % (
                    self.proc.returncode, self._read(self.log + ".err"),
                    self._read(self.log)))
            try:
                s = socket.create_connection(("127.0.0.1", self.imap_port),
                                             timeout=2)
            except OSError:
                return False
            try:
                return s.recv(200).startswith(b"* OK")
            finally:
                s.close()
        harness.wait_until(greets, 15, what="dovecot listening")
        return self

    def _read(self, p):
        try:
            with open(p, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def mailbox_conf(self, name, user, protocol="imap", **keys):
        """A mailbox section for leadcast.conf reading user's mail here."""
        port = {"imap": self.imap_port, "pop3": self.pop3_port,
                "imaps": self.imaps_port}[protocol]
        body = {"protocol": protocol, "host": "127.0.0.1", "port": port,
                "user": user, "password": self.users[user], "poll": "1s"}
        body.update(keys)
        out = ['mailbox "%s" {' % name]
        for k, v in body.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, int):
                v = str(v)
            else:
                v = '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')
            out.append("\t%s = %s" % (k, v))
        out.append("}")
        return "\n".join(out)
