"""
Fixtures of the leadcast integration suite (see harness.py).

  tmp          a per-test TempDir (removed, with anything still running in
               it, at teardown)
  daemons      factory: daemons(**kw) -> harness.Daemon in the test's tmp;
               every daemon made is stopped at teardown
  shared       one embedded-database daemon per module, for tests that only
               read (workers = 3, http.max_body_size = 1K)
  pg_external  one external PostgreSQL for the session; ext_db gives each
               test a fresh database in it
  pg_private   a PostgreSQL of the test's own (for tests that stop it)
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "root: needs to run as root")


@pytest.fixture(scope="session", autouse=True)
def environment():
    for b in (harness.LEADCASTD, harness.LEADCAST):
        if not os.access(b, os.X_OK):
            pytest.exit("%s is not built: run make first (or set LEADCASTD "
                        "and LEADCAST)" % b, returncode=2)
    if not harness.pg_bindir():
        pytest.exit("PostgreSQL server binaries not found: apt-get install "
                    "postgresql", returncode=2)
    harness.ensure_test_user()
    yield
    # Safety net: nothing of ours may outlive the session.
    for d in harness.leftover_tempdirs():
        harness.kill_procs_mentioning(d)


@pytest.fixture
def tmp():
    t = harness.TempDir("t")
    yield t
    t.cleanup()


@pytest.fixture
def daemons(tmp):
    made = []

    def make(name=None, **kw):
        d = harness.Daemon(tmp, name=name or "d%d" % len(made), **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


@pytest.fixture(scope="module")
def shared():
    t = harness.TempDir("sh")
    d = harness.Daemon(t, name="sh", top={"workers": 3},
                       http_={"max_body_size": harness.Raw("1K")})
    try:
        d.start(timeout=30)
        yield d
    finally:
        d.cleanup()
        t.cleanup()


@pytest.fixture(scope="session")
def pg_external():
    c = harness.new_cluster("ext")
    yield c
    c.destroy()


@pytest.fixture
def ext_db(pg_external):
    return pg_external.uri(pg_external.create_db())


@pytest.fixture
def pg_private():
    c = harness.new_cluster("pgp")
    yield c
    c.destroy()


def pytest_terminal_summary(terminalreporter):
    if harness.TIMINGS:
        terminalreporter.section("leadcast timings")
        for label, secs in harness.TIMINGS:
            terminalreporter.write_line("%-50s %6.2f s" % (label, secs))
