"""Format detection and the streaming readers (files only, no database)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from mamori.advisories import osv, records, sources
from tests.advisories.conftest import real_record, write_json
from tests.datafiles import (
    DEBIAN12,
    DISTRO_INFO,
    EOL_PRODUCTS,
    KEV_ENTRIES,
    KEV_FILE,
    PYPI,
    UBUNTU,
    UBUNTU_RECORDS,
    padded_copy,
)


def stream(values: bytes):
    return io.BytesIO(values)


def decode_all(data: bytes) -> list:
    return list(sources.iter_json_array(stream(data)))


# --- iter_json_array --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 7, 4096])
def test_streamed_elements_equal_a_whole_decode(monkeypatch, chunk):
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    records_list = [real_record(path) for path in sorted(UBUNTU.glob("*.json"))]
    data = json.dumps(records_list, indent=1, ensure_ascii=False).encode()
    assert decode_all(data) == records_list


@pytest.mark.parametrize("chunk", [1, 3])
def test_numbers_and_strings_cut_at_chunk_boundaries(monkeypatch, chunk):
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    data = '[1, 23, 456.5e3, "a,]b", {"k": [1, 2]}, true, null, "日本語"]'.encode()
    assert decode_all(data) == json.loads(data)


@pytest.mark.parametrize(
    "data",
    [b"[]", b"  [ ]  ", b"\xef\xbb\xbf[1]", b"\n[\n1\n,\n2\n]\n"],
)
def test_whitespace_bom_and_empty_lists(data):
    assert decode_all(data) == json.loads(data.decode("utf-8-sig"))


@pytest.mark.parametrize(
    ("data", "reason", "before"),
    [
        (b'[{"id": "A"}, {"id": "B"', "invalid JSON", [{"id": "A"}]),
        (b'[{"id": "A"} {"id": "B"}]', "expected ',' or ']'", [{"id": "A"}]),
        (b"[1, 2] 3", "data after the end of the list", [1, 2]),
        (b'{"id": "A"}', "expected a list", []),
        (b"", "expected a list", []),
        (b"[1,", "unexpected end of data", [1]),
        (b'[{"id": "A"}, {"id": "\xff"}]', "not UTF-8", [{"id": "A"}]),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply", []),
    ],
)
def test_broken_lists_stop_with_a_reason_after_the_good_elements(data, reason, before):
    decoded = []
    with pytest.raises(osv.BadRecord) as caught:
        decoded.extend(sources.iter_json_array(stream(data)))
    assert reason in caught.value.reason
    assert caught.value.record_id is None
    assert decoded == before


# --- detect -----------------------------------------------------------------------------------


def test_each_real_format_is_detected(tmp_path):
    assert sources.detect(PYPI / "django" / "PYSEC-2007-1.json").format == sources.OSV_RECORD
    assert sources.detect(UBUNTU).format == sources.OSV_DIRECTORY
    assert sources.detect(UBUNTU).total == UBUNTU_RECORDS
    kev = sources.detect(KEV_FILE)
    assert (kev.format, kev.total) == (sources.KEV, KEV_ENTRIES)
    eol = sources.detect(EOL_PRODUCTS / "python.json")
    assert (eol.format, eol.product) == (sources.ENDOFLIFE, "python")
    renamed = sources.detect(EOL_PRODUCTS / "python.json", product="cpython")
    assert (renamed.format, renamed.product) == (sources.ENDOFLIFE, "cpython")
    for product in ("debian", "ubuntu"):
        found = sources.detect(DISTRO_INFO / f"{product}.csv")
        assert (found.format, found.product) == (sources.DISTRO_INFO, product)
    listing = write_json(tmp_path / "list.json", [real_record(UBUNTU / "USN-6859-1.json")])
    assert sources.detect(listing).format == sources.OSV_LIST
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        writer.write(UBUNTU / "USN-6859-1.json", "USN-6859-1.json")
    assert (sources.detect(archive).format, sources.detect(archive).total) == (sources.OSV_ZIP, 1)
    # The format comes from the content, not the name.
    nameless = tmp_path / "kev-download"
    shutil.copy(KEV_FILE, nameless)
    assert sources.detect(nameless).format == sources.KEV


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello, world\n", "unrecognised format"),
        (b'{"title": "not a feed"}', "unrecognised format"),
        (b"[1, 2, 3]", "unrecognised format"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "unrecognised format"),
        (b"PK\x03\x04 but not a zip", "not a readable zip archive"),
    ],
)
def test_unrecognised_files_are_usage_errors_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "input.json"
    path.write_bytes(content)
    with pytest.raises(sources.UsageError) as caught:
        sources.detect(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_paths_and_empty_directories(tmp_path):
    with pytest.raises(sources.UsageError, match="no such file or directory"):
        sources.detect(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(sources.UsageError, match=r"no \.json or \.csv files"):
        sources.detect(tmp_path / "empty")


def test_product_only_for_an_endoflife_list(tmp_path):
    with pytest.raises(sources.UsageError, match="--product"):
        sources.detect(KEV_FILE, product="python")
    with pytest.raises(sources.UsageError, match="--product"):
        sources.detect(UBUNTU, product="python")


def test_a_single_document_over_the_cap_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "MAX_DOCUMENT_BYTES", 1024 * 1024)
    catalogue = padded_copy(KEV_FILE, tmp_path / "kev.json", 1024 * 1024 + 1)
    with pytest.raises(sources.UsageError, match="over the 1 MiB limit"):
        sources.detect(catalogue)
    # One byte less is at the cap, not over it: the same document is detected.
    catalogue = padded_copy(KEV_FILE, tmp_path / "kev.json", 1024 * 1024)
    assert (sources.detect(catalogue).format, sources.detect(catalogue).total) == (
        sources.KEV,
        KEV_ENTRIES,
    )


# --- read -------------------------------------------------------------------------------------


def read_all(path: Path) -> list[tuple[str, str, object]]:
    return list(sources.read(sources.detect(path)))


def test_read_a_directory_recursively_in_order(tmp_path):
    shutil.copytree(UBUNTU, tmp_path / "b-ubuntu")
    shutil.copy(DEBIAN12 / "MAMORI-DEB12-CVE-2022-48303-tar.json", tmp_path / "a.json")
    (tmp_path / "c").mkdir()
    shutil.copy(DISTRO_INFO / "debian.csv", tmp_path / "c" / "debian.csv")
    items = read_all(tmp_path)
    kinds = [kind for kind, _, _ in items]
    assert kinds == ["osv"] * (1 + UBUNTU_RECORDS) + ["eol"] * 22
    ids = [item.id for kind, _, item in items if kind == "osv"]
    assert ids[0] == "MAMORI-DEB12-CVE-2022-48303-tar"
    assert ids[1:] == sorted(path.stem for path in UBUNTU.glob("*.json"))


def test_read_a_zip_with_bad_members(tmp_path):
    archive = tmp_path / "all.zip"
    good = sorted(UBUNTU.glob("*.json"))
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as writer:
        for path in good:
            writer.write(path, path.name)
        writer.writestr("BROKEN-1.json", '{"id": "BROKEN-1", "modified": ')
        writer.writestr("LATIN-1.json", b'{"id": "LATIN-1", "summary": "caf\xe9"}')
        writer.writestr("README.md", "not a record")
    items = read_all(archive)
    bad = {where: item for _, where, item in items if isinstance(item, osv.BadRecord)}
    assert set(bad) == {f"{archive}:BROKEN-1.json", f"{archive}:LATIN-1.json"}
    assert "invalid JSON" in bad[f"{archive}:BROKEN-1.json"].reason
    assert "not UTF-8" in bad[f"{archive}:LATIN-1.json"].reason
    parsed = [item for _, _, item in items if isinstance(item, records.Advisory)]
    assert [item.id for item in parsed] == [path.stem for path in good]


def test_a_corrupted_zip_member_is_reported_and_the_rest_read(tmp_path):
    archive = tmp_path / "all.zip"
    first, second = sorted(UBUNTU.glob("*.json"))[:2]
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as writer:
        writer.write(first, first.name)
        writer.write(second, second.name)
    data = bytearray(archive.read_bytes())
    marker = data.find(b'"summary"')  # inside the first member's stored bytes
    data[marker + 1] ^= 0x20
    archive.write_bytes(bytes(data))
    items = read_all(archive)
    assert isinstance(items[0][2], osv.BadRecord)
    assert "unreadable member" in items[0][2].reason
    assert items[1][2].id == second.stem


def test_an_endoflife_file_must_be_named_after_its_product(tmp_path):
    odd = tmp_path / "Python 3 (copy).json"
    shutil.copy(EOL_PRODUCTS / "python.json", odd)
    with pytest.raises(sources.UsageError, match="name it with --product"):
        sources.detect(odd)
    assert sources.detect(odd, product="python").product == "python"


def test_a_part_left_out_follows_its_record(tmp_path):
    binderhub = real_record(PYPI / "binderhub" / "PYSEC-2021-371.json")
    listing = write_json(
        tmp_path / "list.json", [binderhub, real_record(UBUNTU / "USN-6859-1.json")]
    )
    items = read_all(listing)
    assert [type(item) for _, _, item in items] == [
        records.Advisory,
        osv.SkippedPart,
        records.Advisory,
    ]
    assert {where for _, where, _ in items} == {str(listing)}
    part = items[1][2]
    assert (part.record_id, part.part) == ("PYSEC-2021-371", "affected[0].ranges[1]")
    assert [item.id for _, _, item in items if isinstance(item, records.Advisory)] == [
        "PYSEC-2021-371",
        "USN-6859-1",
    ]
