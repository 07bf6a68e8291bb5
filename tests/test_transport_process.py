"""Node processes: start, control, metrics scraped over HTTP, a proxy process's partition, SIGKILL, restart, nothing left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from implementations.transport.control import ControlError
from implementations.transport.process import ROOT, ChildProcess, ProcessError, ProcessGroup, leftovers, snapshot
from tests.transport_kit import nothing_left_behind

NODE, PROXY = "implementations.transport.toy", "implementations.transport.proxy"


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.02)


def value(node: ChildProcess) -> int:
    return node.call("op", name="value")


def link(proxy: ChildProcess, nodes: dict[str, ChildProcess]) -> None:
    """Every node reaches every other through the proxy, and counts with all of them."""
    addresses = {name: node.call("status")["address"] for name, node in nodes.items()}
    keys = [address["public_key"] for address in addresses.values()]
    for name, node in nodes.items():
        directory = {}
        for other, address in addresses.items():
            if other != name:
                here, there = ["127.0.0.1", addresses[name]["port"]], ["127.0.0.1", address["port"]]
                port = proxy.call("link", a=name, a_address=here, b=other, b_address=there)
                directory[address["public_key"]] = {**address, "port": port}
        assert node.call("peers", peers=directory) == len(directory)
        node.call("op", name="set_peers", args={"keys": keys})


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


#: A group's children started by ``python -m`` each, or forked by a zygote that imported them (``zygote.py``).
STARTS = {"python -m": None, "zygote": [NODE, PROXY]}


@pytest.mark.parametrize("preload", STARTS.values(), ids=STARTS.keys())
def test_node_processes_crash_restart_on_their_files_and_leave_nothing_behind(tmp_path, preload):
    with nothing_left_behind(), ProcessGroup(tmp_path, preload=preload) as group:
        proxy = group.start("proxy", PROXY, ["--seed", "5"])
        nodes = {name: group.start(name, NODE, ["--data", str(tmp_path / name)]) for name in ("a", "b")}
        a, b = nodes["a"], nodes["b"]
        link(proxy, nodes)
        assert a.call("op", name="increment", args={"by": 5}) == 5
        eventually(lambda: value(b) == 5)

        # control: what is refused is named, and changes nothing
        with pytest.raises(ControlError, match="unknown operation 'nope'"):
            a.call("nope")
        with pytest.raises(ControlError, match="no operation 'nope'"):
            a.call("op", name="nope")
        with pytest.raises(ControlError, match="must be a positive int"):
            a.call("op", name="increment", args={"by": -1})
        assert value(a) == 5

        # metrics, scraped over loopback HTTP
        page = scrape(a.ready["metrics"])
        assert 'mbt_gossip_messages_total{kind="counts"}' in page and "mbt_resident_memory_bytes" in page
        eventually(lambda: "mbt_peers_online 1.0" in scrape(a.ready["metrics"]))

        # a partition made by the proxy holds until it heals
        proxy.call("partition", groups=[["a"], ["b"]])
        a.call("op", name="increment", args={"by": 1})
        time.sleep(0.3)  # a tick period is 0.2 s: anti-entropy had its chance
        assert value(b) == 5 and proxy.call("stats")["stats"]["partitioned"] > 0
        proxy.call("heal")
        eventually(lambda: value(b) == 6)

        # SIGKILL is a crash; a restart on the same files is the same node with its count
        identity = b.call("status")["address"]["public_key"]
        assert b.kill() == -9 and not b.alive
        with pytest.raises(ControlError, match="not running"):
            value(b)
        b.restart()
        assert b.call("status")["address"]["public_key"] == identity and b.starts == 2
        assert value(b) == 6  # from its SQLite file
        link(proxy, nodes)  # the directory lives in memory: given again, as a cluster would
        a.call("op", name="increment", args={"by": 1})
        eventually(lambda: value(b) == 7)
        b.call("op", name="increment", args={"by": 10})
        eventually(lambda: value(a) == 17)


@pytest.mark.parametrize("preload", STARTS.values(), ids=STARTS.keys())
def test_a_child_that_never_gets_ready_is_reported_and_reaped(tmp_path, preload):
    with nothing_left_behind(), ProcessGroup(tmp_path, preload=preload) as group:
        with pytest.raises(ProcessError, match=r"(?s)exited with 2 before it was ready.*required: --data") as refused:
            group.start("broken", NODE, ["--no-such-flag"])
        child = group["broken"]
        assert not child.alive
        # a trace keeps a failure's first line: it names the log's last line (argparse's complaint)
        first = str(refused.value).splitlines()[0]
        assert "its log ends:" in first and "required: --data" in first, first


def test_a_zygote_runs_each_child_as_python_m_would_and_kills_what_runs_when_its_group_ends(tmp_path, monkeypatch):
    with nothing_left_behind(), ProcessGroup(tmp_path / "group", preload=[NODE]) as group:
        node = group.start("a", NODE, ["--data", str(tmp_path / "a")])
        zygote = group.zygote.proc.pid
        assert node.pid != zygote and node.call("op", name="increment", args={"by": 2}) == 2
        with open(f"/proc/{node.pid}/stat") as stat:
            assert int(stat.read().rsplit(")", 1)[1].split()[1]) == zygote  # forked by the zygote
        assert node.kill() == -9  # a crash is a SIGKILL, its status as subprocess gives it
        node.restart()
        assert value(node) == 2 and node.starts == 2
        # run as ``python -m`` runs it, in the environment of the fork (not of the zygote's start)
        monkeypatch.setenv("MBT_ZYGOTE_PROBE", "asked")
        probe = group.spawn("probe", "tests.zygote_probe", [str(tmp_path / "probe.json"), "3"])
        assert probe.proc.wait(10) == 3
        told = json.loads((tmp_path / "probe.json").read_text())
        draws = told.pop("draws")
        assert told == {"name": "__main__", "argv": [str(ROOT / "tests" / "zygote_probe.py"), str(tmp_path / "probe.json"), "3"],
                        "cwd": str(tmp_path / "group"), "probe": "asked"}, told  # argv[0] the file, as ``python -m`` has it
        # each child draws afresh, as a new interpreter would: ``random`` and trio's scheduler (made at import)
        sibling = group.spawn("sibling", "tests.zygote_probe", [str(tmp_path / "sibling.json"), "0"])
        assert sibling.proc.wait(10) == 0
        other = json.loads((tmp_path / "sibling.json").read_text())["draws"]
        assert draws["trio"] is not None and draws["random"] != other["random"] and draws["trio"] != other["trio"], (draws, other)
        running = node.pid
        group.zygote.close()  # the zygote's end: it kills and reaps what it forked, tells it, then exits
        with pytest.raises(ProcessLookupError):
            os.kill(running, 0)
        assert not node.alive and node.proc.returncode == -9
        with pytest.raises(ProcessError, match="has ended: it forks nothing more"):
            node.restart()


def test_bound_sockets_names_where_each_socket_listens():
    """What realnet's loopback check reads: the address and port of each bound socket, IPv4 and IPv6."""
    from implementations.transport.process import bound_sockets, socket_inodes

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("::", 0))
        tcp.listen()
        u, t = os.fstat(udp.fileno()).st_ino, os.fstat(tcp.fileno()).st_ino
        mine = socket_inodes({os.getpid()}) & {u, t}
        assert bound_sockets(mine) == {(u, "udp", "127.0.0.1", udp.getsockname()[1]), (t, "tcp", "::", tcp.getsockname()[1])}


def test_the_leftover_check_sees_a_bound_port_and_an_unreaped_child():
    before = snapshot()
    leaked = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    leaked.bind(("127.0.0.1", 0))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        found = leftovers(before, attempts=1)
        assert f"bound udp port {leaked.getsockname()[1]}" in found
        assert f"child process {child.pid}" in found
    finally:
        leaked.close()
        child.wait(timeout=10)
    assert leftovers(before) == []


CHURN = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(100)]
    for one in held:
        one.bind(("127.0.0.1", 0))
    for one in held:
        one.close()
"""


def test_a_neighbour_opening_and_closing_sockets_makes_no_leftover_of_a_port_held_all_along():
    """Found by CI (1 December): the leftover check named three ports a pooled node process had
    held since before the test. One read of /proc/net/udp misses rows while another process
    opens and closes sockets, so ``before`` had missed them; the check now compares socket inodes."""
    held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for one in held:
        one.bind(("127.0.0.1", 0))
    # the neighbour is no child of ours (as the other pytest-xdist worker was): the shell that starts it exits
    start = subprocess.run(["sh", "-c", f'"{sys.executable}" -c \'{CHURN}\' 30 >/dev/null 2>&1 & echo $!'],
                           capture_output=True, text=True, timeout=10, check=True)
    neighbour = int(start.stdout)
    try:
        for _ in range(200):
            assert leftovers(snapshot(), attempts=1) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(neighbour, signal.SIGKILL)
        for one in held:
            one.close()


def test_a_zygote_that_cannot_import_what_it_preloads_is_named_with_what_it_raised(tmp_path):
    refused = pytest.raises(ProcessError, match=r"zygote .* exited with 1; its log ends: ModuleNotFoundError: .*no_such_module")
    with nothing_left_behind(), ProcessGroup(tmp_path, preload=["implementations.transport.no_such_module"]) as group, refused:
        group.start("a", NODE, ["--data", str(tmp_path / "a")])


def test_a_child_that_cannot_start_exits_1_and_harms_no_sibling(tmp_path):
    """A fork whose working directory is gone fails in the child, before its program runs: that
    child exits with status 1 (as ``python -m`` in a missing directory cannot start), and the
    zygote's other children run on."""
    with nothing_left_behind(), ProcessGroup(tmp_path / "group", preload=[NODE]) as group:
        node = group.start("a", NODE, ["--data", str(tmp_path / "a")])
        with open(os.devnull, "wb") as sink:
            pid = group.zygote.fork("tests.zygote_probe", [str(tmp_path / "never.json"), "0"], tmp_path / "gone",
                                    {}, sink.fileno(), sink.fileno())
        assert group.zygote.wait(pid, 10) == 1
        assert not (tmp_path / "never.json").exists()
        assert node.alive and node.call("op", name="increment", args={"by": 1}) == 1


def test_a_zygote_that_does_not_exit_cleanly_at_its_close_is_named(tmp_path):
    """Found by the mutation run of zygote.py: its ``main`` returning 1 survived, as nothing read the
    zygote's exit status. Its children are stopped and reaped all the same."""
    with nothing_left_behind():
        group = ProcessGroup(tmp_path, preload=[NODE, "tests.zygote_exits_badly"])
        node = group.start("a", NODE, ["--data", str(tmp_path / "a")])
        with pytest.raises(ProcessError, match=r"the zygote \(pid \d+\) exited with 3 at its close"):
            group.close()
        assert not node.alive


@pytest.mark.parametrize("module", ["implementations.transport.mesh_node", "implementations.transport.proxy",
                                    "implementations.transport.zygote"])
def test_a_module_run_in_a_child_process_runs_the_module_of_its_name(module):
    """Run as ``__main__`` (``python -m``, or a zygote's ``runpy``), a module a machine runs in a
    child process calls the ``main`` of the module imported by its name, not the copy of its
    functions ``__main__`` holds: those are the functions the project imports and a mutation run
    mutates (mutmut activates a mutant only in the module of its name, so a ``__main__`` copy
    never ran one: zygote.py's first mutants all survived)."""
    probe = (f"import importlib, runpy; named = importlib.import_module({module!r}); "
             "named.main = lambda *args: print('the named module ran') or 0; "
             f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert ran.returncode == 0 and ran.stdout == "the named module ran\n", (ran.returncode, ran.stdout, ran.stderr[-2000:])
