"""Live collection on this machine (a Debian 12 host), checked against what the system's own
tools say, under the project's Python and under Python 3.9."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mamori_agent.collect import collect

from .conftest import agent_environment, run_unprivileged

LIVE_LIMIT_SECONDS = 10.0


def dpkg_truth() -> dict[tuple[str, str], tuple[str, str, str]]:
    """dpkg-query's own view: installed (ii) or held (hi) packages with their source."""
    fields = "${Package}\t${Architecture}\t${Version}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n"
    output = subprocess.run(
        ["dpkg-query", "-W", "-f", fields], capture_output=True, text=True, check=True
    ).stdout
    truth = {}
    for line in output.splitlines():
        name, architecture, version, source, source_version, abbrev = line.split("\t")
        if abbrev.strip() in ("ii", "hi"):
            truth[(name, architecture)] = (version, source, source_version)
    return truth


@pytest.fixture(scope="module")
def live(assert_valid) -> tuple[dict, float, dict]:
    """One live collection (while the package database stays still), its wall time, and the
    dpkg truth at that moment."""
    for _attempt in range(3):
        before = dpkg_truth()
        started = time.monotonic()
        evidence = collect()
        elapsed = time.monotonic() - started
        if dpkg_truth() == before:  # nobody installed a package meanwhile
            return assert_valid(evidence), elapsed, before
    pytest.fail("the dpkg database kept changing during collection")


def test_live_collection_is_fast(live):
    evidence, elapsed, _truth = live
    assert evidence["mode"] == "live"
    assert elapsed < LIVE_LIMIT_SECONDS
    assert evidence["duration_ms"] < LIVE_LIMIT_SECONDS * 1000
    print(f"live collection: {elapsed * 1000:.0f} ms (duration_ms {evidence['duration_ms']})")


def test_live_packages_match_dpkg_query(live):
    evidence, _elapsed, truth = live
    dpkg = {
        (item["name"], item["architecture"]): (
            item["version"],
            item["source_name"],
            item["source_version"],
        )
        for item in evidence["packages"]["items"]
        if item["manager"] == "dpkg"
    }
    # the shell pipeline `dpkg-query -W -f='${db:Status-Abbrev}\n' | grep -c '^[ih]i'`
    abbreviations = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}\n"], capture_output=True, check=True
    ).stdout
    count = subprocess.run(
        ["grep", "-c", "^[ih]i"], input=abbreviations, capture_output=True, check=False
    ).stdout.strip()
    assert len(dpkg) == int(count)
    assert dpkg == truth  # names, versions, and the binary → source mapping


def test_live_python_distributions(live):
    evidence, _elapsed, _truth = live
    python = [item for item in evidence["packages"]["items"] if item["manager"] == "python"]
    on_disk = {
        path.name.split("-")[0].lower().replace("_", "-")
        for path in Path("/usr/lib/python3/dist-packages").glob("*.dist-info")
    }
    vendor = {
        item["name"] for item in python if item["location"] == "/usr/lib/python3/dist-packages"
    }
    assert on_disk <= {name.replace(".", "-") for name in vendor}
    owned = [item for item in python if item["managed_by"] == "dpkg"]
    assert owned, "Debian's python3-* packages own their dist-packages metadata"


def test_live_host_and_os(live):
    evidence, _elapsed, _truth = live
    host = evidence["host"]
    assert host["hostname"] == socket.gethostname()
    assert host["architecture"] == os.uname().machine
    machine_id = Path("/etc/machine-id").read_text().strip()
    assert host["machine_id"] == (machine_id or None)
    assert evidence["os"]["id"] == "debian"
    assert evidence["os"]["kernel"]["release"] == os.uname().release


def test_live_sockets_include_ours(live_sockets):
    evidence, ours = live_sockets
    sockets = {
        (s["protocol"], s["address"], s["port"], s["inode"])
        for s in evidence["listening"]["sockets"]
    }
    assert ours <= sockets
    assert evidence["listening"]["status"] == "ok"


@pytest.fixture
def live_sockets():
    """Sockets opened by the test itself: their inodes must come back exactly."""
    opened, expected = [], set()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))  # noqa: S104 - a test socket, closed below
    opened += [tcp, udp]
    expected.add(("tcp", "127.0.0.1", tcp.getsockname()[1], os.fstat(tcp.fileno()).st_ino))
    wildcard = "0.0.0.0"  # noqa: S104 - how /proc/net shows a socket bound to every address
    expected.add(("udp", wildcard, udp.getsockname()[1], os.fstat(udp.fileno()).st_ino))
    if socket.has_ipv6 and Path("/proc/net/tcp6").exists():
        try:
            tcp6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            tcp6.bind(("::1", 0))
            tcp6.listen()
            opened.append(tcp6)
            expected.add(("tcp6", "::1", tcp6.getsockname()[1], os.fstat(tcp6.fileno()).st_ino))
        except OSError:
            pass  # no IPv6 loopback in this container
    try:
        yield collect(), expected
    finally:
        for each in opened:
            each.close()


def test_live_sockets_agree_with_ss(live):
    """Long-lived listeners seen by ss before and after are in the evidence."""
    if shutil.which("ss") is None:
        pytest.fail("ss (iproute2) is needed to cross-check the listening sockets")

    def ss_ports() -> set[int]:
        output = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
        return {int(line.split()[3].rsplit(":", 1)[1]) for line in output.splitlines() if line}

    before = ss_ports()
    evidence = collect()
    after = ss_ports()
    ours = {s["port"] for s in evidence["listening"]["sockets"] if s["protocol"].startswith("tcp")}
    assert before & after <= ours


def test_live_services_and_accounts(live):
    evidence, _elapsed, _truth = live
    wants = set()
    for directory in Path("/etc/systemd/system").glob("*.wants"):
        wants.update(entry.name for entry in directory.iterdir())
    assert set(evidence["services"]["enabled"]) == wants
    if not Path("/run/systemd/system").is_dir():
        assert evidence["services"]["running"] is None
        assert evidence["services"]["status"] == "partial"
    names = [user["name"] for user in evidence["accounts"]["users"]]
    assert names == [entry.pw_name for entry in pwd.getpwall()]
    expected_uid0 = [e.pw_name for e in pwd.getpwall() if e.pw_uid == 0 and e.pw_name != "root"]
    assert evidence["accounts"]["uid0_besides_root"] == expected_uid0
    if os.geteuid() == 0:
        assert evidence["accounts"]["status"] == "ok"
        assert all(user["password"] is not None for user in evidence["accounts"]["users"])


def test_live_collection_without_root(shared_tmp, assert_valid):
    """What an unprivileged user cannot read is reported, never guessed."""
    output = shared_tmp / "out"
    output.mkdir(mode=0o777)
    output.chmod(0o777)
    result = run_unprivileged(["collect", "-o", str(output / "evidence.json")])
    assert result.returncode == 0, result.stderr
    evidence = assert_valid(json.loads((output / "evidence.json").read_text()))
    accounts = evidence["accounts"]
    assert accounts["status"] == "partial"
    assert {"path": "/etc/shadow", "reason": "permission denied"} in accounts["errors"]
    assert {user["password"] for user in accounts["users"]} == {None}
    assert evidence["packages"]["status"] == "ok"
    assert evidence["duration_ms"] < LIVE_LIMIT_SECONDS * 1000


def test_live_collection_under_python39(python39, tmp_path, assert_valid):
    output = tmp_path / "evidence.json"
    started = time.monotonic()
    result = subprocess.run(
        [python39, "-m", "mamori_agent", "collect", "--output", str(output)],
        capture_output=True,
        text=True,
        env=agent_environment(),
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    evidence = assert_valid(json.loads(output.read_text()))
    assert evidence["agent"]["python"].startswith("3.9.")
    assert elapsed < LIVE_LIMIT_SECONDS
    assert len([i for i in evidence["packages"]["items"] if i["manager"] == "dpkg"]) == len(
        dpkg_truth()
    )


def test_live_collection_as_console_script(tmp_path, assert_valid):
    script = Path(sys.executable).with_name("mamori-agent")
    result = subprocess.run(
        [str(script), "collect"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert_valid(json.loads(result.stdout))
