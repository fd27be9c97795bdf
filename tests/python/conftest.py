"""Fixtures: real memory-mode memkv servers on random loopback ports.

MEMKV_BINARY names the server binary (ctest sets it; see CMakeLists.txt), and
PYTHONPATH reaches the built package (<build>/python).
"""

import os
import random
import shutil
import subprocess
import tempfile
import time

import pytest

MEMKV = os.environ.get("MEMKV_BINARY") or shutil.which("memkv")


class Server:
    """A `memkv server` in memory mode; stop() kills it."""

    def __init__(self, tmp, *extra):
        if not MEMKV:
            pytest.fail("MEMKV_BINARY is not set and no memkv binary is on PATH")
        for _ in range(5):
            port = 20000 + random.randrange(20000) * 2
            log = open(os.path.join(tmp, f"server-{port}.err"), "w+")
            proc = subprocess.Popen(
                [MEMKV, "--log-level", "warn", "server", "--address", f"127.0.0.1:{port}",
                 "--unix-socket", os.path.join(tmp, f"s{port}.sock"),
                 "--set", "storage.mode=memory", *extra],
                stdout=subprocess.DEVNULL, stderr=log)
            for _ in range(100):
                if proc.poll() is not None:
                    break
                health = subprocess.run(
                    [MEMKV, "admin", "health", "--server", f"127.0.0.1:{port + 1}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if health.returncode == 0:
                    self.proc, self.address, self.log = proc, f"127.0.0.1:{port}", log
                    return
                time.sleep(0.05)
            proc.kill()
            proc.wait()
            log.seek(0)
            last = log.read()
            log.close()
        pytest.fail(f"could not start a memkv server: {last}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def tmpdir_session():
    with tempfile.TemporaryDirectory(prefix="memkv-pytest-") as d:
        yield d


@pytest.fixture(scope="session")
def server(tmpdir_session):
    s = Server(tmpdir_session, "--set", "memory.max_size=2GiB")
    yield s
    s.stop()


@pytest.fixture
def start_server(tmpdir_session):
    """Starts extra servers for one test (killed at its end)."""
    started = []

    def start(*extra):
        s = Server(tmpdir_session, *extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def engine(server):
    import memkv
    return memkv.Engine(server.address)
