"""
dnstools - DNS peers for the check-dns tests: NSD (Debian's nsd), an
authoritative server run unprivileged in the foreground on a free loopback
port with the zones a test writes, and two misbehaving servers in Python:
one that never answers, and a relay to NSD that drops the queries for some
names (so one check times out while the others get answers).
"""
import os
import socket
import struct
import subprocess
import threading
import time

import harness

NSD = "/usr/sbin/nsd"


def qname(packet):
    """The question name of a DNS query packet, lowercase, or ""."""
    labels, i = [], 12
    try:
        while packet[i]:
            n = packet[i]
            labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
    except IndexError:
        return ""
    return ".".join(labels).lower()


def query(port, name, qtype=1, timeout=1.0):
    """One UDP query to 127.0.0.1:port; the answer packet or None."""
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        return s.recvfrom(4096)[0]
    except OSError:
        return None
    finally:
        s.close()


class Nsd:
    """NSD serving zones {name: zone file text} from dir on a free port."""

    def __init__(self, dirpath, zones):
        self.dir = dirpath
        self.port = harness.free_port()
        os.makedirs(os.path.join(dirpath, "zones"), exist_ok=True)
        conf = ["server:",
                "\tip-address: 127.0.0.1@%d" % self.port,
                "\tport: %d" % self.port,
                '\tusername: ""', '\tchroot: ""',
                '\tzonesdir: "%s/zones"' % dirpath,
                '\tpidfile: "%s/nsd.pid"' % dirpath,
                '\tdatabase: ""',
                '\txfrdfile: "%s/xfrd.state"' % dirpath,
                '\tzonelistfile: "%s/zone.list"' % dirpath,
                '\tlogfile: "%s/nsd.log"' % dirpath,
                "\tserver-count: 1", "\tverbosity: 1",
                "remote-control:", "\tcontrol-enable: no"]
        for name, text in zones.items():
            fn = name.rstrip(".") + ".zone"
            with open(os.path.join(dirpath, "zones", fn), "w") as f:
                f.write("$ORIGIN %s.\n$TTL 300\n@ IN SOA ns.%s. "
                        "hostmaster.%s. 1 3600 600 86400 300\n@ IN NS "
                        "ns.invalid.\n" % (name, name, name))
                f.write(text)
            conf += ["zone:", "\tname: %s" % name, "\tzonefile: %s" % fn]
        self.conf = os.path.join(dirpath, "nsd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        r = harness.run([NSD + "-checkconf", self.conf], check=False) \
            if os.path.exists(NSD + "-checkconf") else None
        if r is not None and r.returncode != 0:
            raise RuntimeError("nsd-checkconf: %s%s" % (r.stdout, r.stderr))
        self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(
                                         dirpath, "nsd.err"), "w"))
        first = next(iter(zones))
        deadline = time.monotonic() + 15
        while query(self.port, first, 6, 0.2) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nsd did not start: %s" % self.log())
            time.sleep(0.05)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        out = ""
        for fn in ("nsd.err", "nsd.log"):
            try:
                with open(os.path.join(self.dir, fn)) as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Relay:
    """A UDP server on a free port: forwards each query to upstream
    (127.0.0.1:port) and relays the answer, except queries whose name
    contains one of drop (never answered). upstream None: answers
    nothing at all (a dead server). Counts what it dropped."""

    def __init__(self, upstream=None, drop=()):
        self.upstream = upstream
        self.drop = tuple(d.lower() for d in drop)
        self.dropped = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _loop(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            name = qname(data)
            if self.upstream is None or any(d in name for d in self.drop):
                self.dropped += 1
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            try:
                s.sendto(data, ("127.0.0.1", self.upstream))
                self.sock.sendto(s.recvfrom(65535)[0], peer)
            except OSError:
                pass
            finally:
                s.close()

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
