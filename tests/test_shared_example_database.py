"""Two nightly runners on one Redis share what they found.

A real ``redis-server`` is started on 127.0.0.1 on a free port (and always stopped). Runner
one, a separate process, hunts a planted bug under the nightly profile with the Redis
example database and finds it after some random examples (its shrinking bounded to 50
examples: what is shared, not how short, is the point here); runner two, another process
with other randomness, finds it at its first example: Hypothesis replays the failure
runner one saved. Examples are kept per machine and implementation (``harness.database``),
under the project's key prefix.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.database import REDIS_KEY_PREFIX

ROOT = Path(__file__).resolve().parent.parent
RUNNER = """
import json, sys
from hypothesis import settings
from tests.bugs.catalogue import bug
from tests.bugs.hunt import hunt, load_everything
from tests.bugs.benchmark import nightly_settings
from harness.database import from_spec
load_everything()
the_bug = bug("orset-join-ignores-context")
chosen = settings(nightly_settings(the_bug), database=from_spec(sys.argv[1]), max_examples=300, stateful_step_count=30)
found = hunt(the_bug, chosen, seed=int(sys.argv[2]), shrink_examples=50)
print(json.dumps({"found": found.found, "examples": found.examples}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed and could not be (.ci/run installs it with apt-get install -y redis-server)")
    redis = pytest.importorskip("redis", reason="the redis client comes with pip install 'hypothesis[redis]'")
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0", client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run(url: str, seed: int, storage: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPOTHESIS_STORAGE_DIRECTORY": str(storage)}
    done = subprocess.run([sys.executable, "-c", RUNNER, url, str(seed)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_runners_on_one_redis_share_what_they_found(redis_url, tmp_path):
    url, client = redis_url
    first = run(url, seed=1, storage=tmp_path / "one")
    assert first["found"]
    keys = client.keys(REDIS_KEY_PREFIX + b"*")
    assert keys, "runner one saved nothing"
    assert all(b"orset/bug-join-ignores-context" in key for key in keys), keys
    second = run(url, seed=2, storage=tmp_path / "two")
    assert second == {"found": True, "examples": 1}, f"runner two did not start from runner one's failure: {second}"
