"""The resolver every file access goes through: it must never leave the root, never block and
never read more than it may."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from mamori_agent.collect import collect
from mamori_agent.rootfs import MAX_FILE_BYTES, FileError, FileSystem

from .conftest import run_unprivileged
from .roots import build_escapes, link, write


def reason(fs: FileSystem, path: str) -> str:
    with pytest.raises(FileError) as caught:
        fs.read_text(path)
    return caught.value.reason


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "root"
    write(root, "/data/hostname", "inside\n")
    write(root, "/etc/motd", "hello\n")
    return root


def test_absolute_links_are_rerooted(tree):
    link(tree, "/etc/hostname", "/data/hostname")
    link(tree, "/etc/passwd", "/etc/passwd-missing")  # exists on the host, not in the root
    link(tree, "/var/data", "/data")  # an absolute link in an intermediate directory
    fs = FileSystem(str(tree))
    assert fs.read_text("/etc/hostname") == "inside\n"
    assert fs.read_text("/var/data/hostname") == "inside\n"
    assert reason(fs, "/etc/passwd") == "not found"


def test_relative_links_resolve_from_their_directory(tree):
    link(tree, "/etc/os-release", "../usr/lib/os-release")
    write(tree, "/usr/lib/os-release", "ID=debian\n")
    link(tree, "/lib", "usr/lib")
    fs = FileSystem(str(tree))
    assert fs.read_text("/etc/os-release") == "ID=debian\n"
    assert fs.read_text("/lib/os-release") == "ID=debian\n"
    # ".." is the physical parent, as for the kernel: /lib/.. is /usr here
    assert fs.read_text("/lib/../lib/os-release") == "ID=debian\n"
    assert reason(fs, "/lib/../etc/motd") == "not found"
    write(tree, "/usr/etc/motd", "usr\n")
    assert fs.read_text("/lib/../etc/motd") == "usr\n"


def test_links_leaving_the_root_are_refused(tmp_path):
    outside = tmp_path / "outside"
    root = build_escapes(tmp_path / "root", outside)
    fs = FileSystem(str(root))
    assert reason(fs, "/etc/passwd") == "symlink leaves the root"
    assert reason(fs, "/etc/ssh/sshd_config") == "symlink leaves the root"  # intermediate dir
    assert reason(fs, "/etc/sudoers.d/passwd") == "not found"  # absolute: re-rooted, not there
    assert reason(fs, "/../../etc/hostname") == "path leaves the root"
    with pytest.raises(FileError):
        fs.list_dir("/etc/ssh")
    assert fs.glob("/etc/ssh/*") == []
    assert fs.kind("/etc/sudoers.d") is None


def test_link_loops_stop(tmp_path):
    root = build_escapes(tmp_path / "root", tmp_path / "outside")
    fs = FileSystem(str(root))
    assert reason(fs, "/etc/shadow") == "too many levels of symbolic links"
    link(root, "/self", "self")
    assert reason(fs, "/self") == "too many levels of symbolic links"
    assert reason(fs, "/self/x") == "too many levels of symbolic links"


def test_collection_never_follows_links_out_of_the_root(tmp_path, assert_valid):
    outside = tmp_path / "outside"
    root = build_escapes(tmp_path / "root", outside)
    evidence = assert_valid(collect(str(root)))
    text = str(evidence)
    assert "mallory" not in text  # the outside passwd
    assert evidence["accounts"]["status"] == "unknown"
    assert {"path": "/etc/passwd", "reason": "symlink leaves the root"} in evidence["accounts"][
        "errors"
    ]
    ssh = evidence["ssh"]
    assert ssh["status"] == "unknown"
    assert ssh["settings"] is None
    assert ssh["errors"][0] == {"path": "/etc/ssh/sshd_config", "reason": "symlink leaves the root"}
    assert evidence["privileges"]["sudoers_files"] == ["/etc/sudoers"]


def test_a_directory_where_a_file_is_expected(tree):
    (tree / "etc/shadow").mkdir()
    fs = FileSystem(str(tree))
    assert reason(fs, "/etc/shadow") == "is a directory"
    assert reason(fs, "/etc/motd/x") == "not a directory"


def test_a_fifo_is_refused_without_blocking(tree):
    os.mkfifo(tree / "etc/passwd")
    fs = FileSystem(str(tree))
    outcome = {}

    def read() -> None:
        try:
            fs.read_text("/etc/passwd")
        except FileError as error:
            outcome["reason"] = error.reason

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert outcome["reason"] == "not a regular file (FIFO)"


def test_devices_and_sockets_are_refused_before_opening(tree):
    host = FileSystem("/")
    assert reason(host, "/dev/null") == "not a regular file (device)"
    assert reason(host, "/dev/zero") == "not a regular file (device)"
    if os.geteuid() == 0:  # only root may create device nodes
        os.mknod(tree / "etc/tape", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        assert reason(FileSystem(str(tree)), "/etc/tape") == "not a regular file (device)"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tree / "etc/socket"))
        assert reason(FileSystem(str(tree)), "/etc/socket") == "not a regular file (socket)"
    finally:
        server.close()


def test_huge_files_are_capped(tree):
    with open(tree / "etc/huge", "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: cheap to make
    fs = FileSystem(str(tree))
    assert reason(fs, "/etc/huge").startswith("file too large")
    head = fs.read_bytes("/etc/huge", limit=512, truncate=True)
    assert head == b"\0" * 512


def test_the_root_must_be_a_directory(tmp_path):
    with pytest.raises(NotADirectoryError):
        FileSystem(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        FileSystem(str(tmp_path / "file"))


def test_odd_paths(tree):
    fs = FileSystem(str(tree))
    assert reason(fs, "/etc/\x00passwd") == "invalid path (NUL byte)"
    assert reason(fs, "relative/path") == "not an absolute path"
    assert fs.kind("/") == "dir"
    assert fs.list_dir("/") == ["data", "etc"]


def test_unreadable_files_under_root(shared_tmp, assert_valid):
    root = shared_tmp / "root"
    write(root, "/etc/passwd", "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/a:/bin/sh\n")
    write(root, "/etc/shadow", "root:*:1::::::\nalice:$6$x$y:1::::::\n", mode=0o000)
    write(root, "/etc/ssh/sshd_config", "PermitRootLogin no\n", mode=0o000)
    out = shared_tmp / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    result = run_unprivileged(["collect", "--root", str(root), "-o", str(out / "evidence.json")])
    assert result.returncode == 0, result.stderr
    evidence = assert_valid(json.loads((out / "evidence.json").read_text()))
    accounts = evidence["accounts"]
    assert accounts["status"] == "partial"
    assert {"path": "/etc/shadow", "reason": "permission denied"} in accounts["errors"]
    assert [user["password"] for user in accounts["users"]] == [None, None]
    assert accounts["empty_password"] is None
    ssh = evidence["ssh"]
    assert ssh["status"] == "unknown"
    assert {"path": "/etc/ssh/sshd_config", "reason": "permission denied"} in ssh["errors"]
