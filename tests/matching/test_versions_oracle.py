"""Version ordering proven against oracles: the 315 apt_pkg pairs of the test data and dpkg
itself (dpkg), rpm 4.18 on this machine and rpm's own rpmvercmp test cases (rpm), apk-tools'
test cases (apk), PEP 440's and SemVer's examples."""

from __future__ import annotations

import itertools
import random
import subprocess

import pytest
from debian.debian_support import version_compare as python_debian_compare
from hypothesis import given, settings
from hypothesis import strategies as st
from univers.rpm import compare_rpm_versions

from mamori.advisories import versions
from tests.datafiles import VERSION_CASES

SIGN = {"<": -1, "=": 0, ">": 1}


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


def oracle_cases() -> list[tuple[str, int, str, str]]:
    lines = VERSION_CASES.read_text().splitlines()
    assert lines[0].split("\t") == ["left", "result", "right", "provenance"]
    cases = []
    for line in lines[1:]:
        left, result, right, provenance = line.split("\t")
        cases.append((left, SIGN[result], right, provenance))
    return cases


# --- dpkg ------------------------------------------------------------------------------------


def test_oracle_file_has_all_315_pairs_and_the_two_policy_invalid_ones():
    cases = oracle_cases()
    assert len(cases) == 315
    invalid = [case for case in cases if "invalid" in case[3]]
    assert [(left, right) for left, _, right, _ in invalid] == [("a", "b"), ("0", "~")]


@pytest.mark.parametrize(("left", "expected", "right", "provenance"), oracle_cases())
def test_dpkg_order_matches_the_apt_oracle(left, expected, right, provenance):
    assert sign(versions.compare("Debian", left, right)) == expected
    assert sign(versions.compare("Debian", right, left)) == -expected
    # The key is what the matcher compares: it must order exactly like compare().
    left_key, right_key = versions.sort_key("Ubuntu", left), versions.sort_key("Ubuntu", right)
    assert ((left_key > right_key) - (left_key < right_key)) == expected


def test_policy_invalid_versions_are_ordered_as_apt_and_dpkg_order_them():
    """dpkg only warns about a version that does not start with a digit; apt orders it. We do
    the same rather than refuse it: a real status file can contain one."""
    assert versions.compare("Debian", "a", "b") < 0
    assert versions.compare("Debian", "0", "~") > 0


def _dpkg_relation(left: str, right: str) -> int:
    def holds(operator: str) -> bool:
        return (
            subprocess.run(
                ["dpkg", "--compare-versions", left, operator, right],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )

    if holds("lt"):
        return -1
    return 0 if holds("eq") else 1


needs_dpkg = pytest.mark.usefixtures("dpkg_tool")


@needs_dpkg
def test_a_sample_of_the_oracle_agrees_with_dpkg_itself():
    sample = oracle_cases()[::5]
    assert len(sample) == 63
    for left, expected, right, _ in sample:
        assert _dpkg_relation(left, right) == expected, (left, right)


def _random_debian_version(rng: random.Random) -> str:
    alphabet = "0123456789abcXYZ.+~"
    text = rng.choice("0123456789") + "".join(
        rng.choice(alphabet) for _ in range(rng.randint(0, 6))
    )
    if rng.random() < 0.3:
        text = f"{rng.randint(0, 2)}:{text}"
    if rng.random() < 0.6:
        text += "-" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
    return text


@needs_dpkg
def test_random_versions_are_ordered_as_dpkg_orders_them():
    rng = random.Random(20261125)
    for _ in range(80):
        left, right = _random_debian_version(rng), _random_debian_version(rng)
        assert sign(versions.compare("Debian", left, right)) == _dpkg_relation(left, right), (
            left,
            right,
        )


_debian_versions = st.from_regex(
    r"\A([0-9]{1,2}:)?[0-9][0-9A-Za-z.+~]{0,8}(-[0-9A-Za-z.+~]{1,6})?\Z", fullmatch=True
)


@settings(max_examples=400, deadline=None)
@given(_debian_versions, _debian_versions)
def test_dpkg_keys_agree_with_python_debian(left, right):
    assert sign(versions.compare("Debian", left, right)) == python_debian_compare(left, right)


@pytest.mark.parametrize("bad", ["", "1.0 beta", "1:", "x" * 300, "1.0-", ":1.0", None, ["1.0"]])
def test_unreadable_debian_versions_raise_a_clear_error(bad):
    with pytest.raises(versions.InvalidVersion, match="not a valid dpkg version"):
        versions.sort_key("Debian", bad)


# --- rpm -------------------------------------------------------------------------------------

# rpm's own test cases (rpm-software-management/rpm, tests/rpmvercmp.at): (a, b, rpmvercmp).
RPMVERCMP_CASES = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1),
    ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1),
    ("2", "xyz.4", 1),
    ("5.5p2", "5.6p1", -1), ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1),
    ("6.0.rc1", "6.0", 1), ("6.0", "6.0.rc1", -1),
    ("10b2", "10a1", 1), ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1), ("1.0aa", "1.0a", 1),
    ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0), ("10.1", "10.0001", 0),
    ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1),
    ("20101121", "20101121", 0), ("20101121", "20101122", -1), ("20101122", "20101121", 1),
    ("2_0", "2_0", 0), ("2.0", "2_0", 0), ("2_0", "2.0", 0),
    ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0), ("+a", "+a", 0),
    ("+a", "_a", 0), ("_a", "+a", 0), ("+_", "+_", 0), ("_+", "+_", 0), ("_+", "_+", 0),
    ("+", "_", 0), ("_", "+", 0),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1),
    ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1), ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0^git2", -1), ("1.0^git2", "1.0^git1", 1),
    ("1.0^git1", "1.01", -1), ("1.01", "1.0^git1", 1),
    ("1.0^20160101", "1.0^20160101", 0), ("1.0^20160101", "1.0.1", -1),
    ("1.0.1", "1.0^20160101", 1),
    ("1.0^20160101^git1", "1.0^20160101^git1", 0), ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0^20160101^git1", "1.0^20160102", -1),
    ("1.0~rc1^git1", "1.0~rc1^git1", 0), ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc1^git1", -1),
    ("1.0^git1~pre", "1.0^git1~pre", 0), ("1.0^git1", "1.0^git1~pre", 1),
    ("1.0^git1~pre", "1.0^git1", -1),
    # Documented oddities (RhBug:811992): kept as rpm behaves.
    ("1b.fc17", "1b.fc17", 0), ("1b.fc17", "1.fc17", -1), ("1.fc17", "1b.fc17", 1),
    ("1g.fc17", "1g.fc17", 0), ("1g.fc17", "1.fc17", 1), ("1.fc17", "1g.fc17", -1),
]  # fmt: skip

# Whole [epoch:]version-release strings as RHEL-family advisories write them.
RPM_EVR_CASES = [
    ("1:1.0-1", "2.0-1", 1),  # the epoch wins
    ("0:2.0-1", "2.0-1", 0),  # a missing epoch is 0
    ("1.0-1", "1.0-2", -1),
    ("3.0.7-27.el9", "3.0.7-27.el9_4", -1),
    ("3.0.7-27.el9_4", "1:3.0.7-24.el9", -1),
    ("2.35.2-54.el9", "2.35.2-54.el9_4.1", -1),
    ("8.7p1-38.el9_4.1", "8.7p1-38.el9", 1),
    ("1.0", "1.0-1", -1),  # no release: older than any release
]

# Where a release is missing, empty or a pre-release, and where an epoch is empty or not one:
# rpm's EVR parsing (rpmverParse, rpmverCmp). univers' compare_rpm_versions reads the first
# three otherwise (it takes "1" and "1-" as equal), so only rpm itself is the oracle here.
RPM_RELEASE_CASES = [
    ("1", "1-", -1),  # a missing release is below an empty one
    ("1-", "1", 1),
    ("1.0", "1.0-~rc1", -1),  # ... and below a "~" release, which is below an empty one
    ("1.0-~rc1", "1.0-", -1),
    ("1.0-", "1.0-0", -1),
    ("1.0-1-", "1.0-1", 1),  # the release is after the last "-": version "1.0-1" here
    ("1.0--1", "1.0-1", 0),
    (":1.0", "0:1.0", 0),  # an empty epoch is 0
    ("00:1.0", "1.0", 0),
    ("x:1.0", "x.1.0", 0),  # not an epoch: the ":" separates segments of the version
    ("1:1.0-", "1:1.0", 1),
]


def _rpm_oracle(pairs: list[tuple[str, str]]) -> list[int]:
    """rpm.vercmp of every pair, in one rpm process (rpm's own test runs the same call)."""
    table = ",".join(f"{{[[{left}]],[[{right}]]}}" for left, right in pairs)
    script = (
        "%{lua: local r={} for _,p in ipairs({" + table + "}) do "
        "r[#r+1]=tostring(rpm.vercmp(p[1],p[2])) end print(table.concat(r, ','))}"
    )
    output = subprocess.run(
        ["rpm", "--eval", script], capture_output=True, text=True, check=True
    ).stdout
    return [int(value) for value in output.strip().split(",")]


@pytest.mark.parametrize(("left", "right", "expected"), RPMVERCMP_CASES + RPM_EVR_CASES)
def test_rpm_order_matches_rpms_test_cases(left, right, expected):
    assert sign(versions.compare("Red Hat", left, right)) == expected
    assert sign(compare_rpm_versions(left, right)) == expected


@pytest.mark.parametrize(("left", "right", "expected"), RPM_RELEASE_CASES)
def test_rpm_release_and_epoch_parsing_follows_rpm(left, right, expected):
    assert sign(versions.compare("Red Hat", left, right)) == expected
    left_key, right_key = versions.sort_key("AlmaLinux", left), versions.sort_key("SUSE", right)
    assert ((left_key > right_key) - (left_key < right_key)) == expected


def test_a_version_without_a_release_is_below_every_release():
    """What the docstring promises, over releases of every kind ("~rc1" sorts below an empty
    release in rpmvercmp, yet "X" is below "X-~rc1")."""
    for release in ("", "~rc1", "~", "0", "^git1", "1.el9", "a"):
        assert versions.compare("Rocky Linux", "2.4.1", f"2.4.1-{release}") < 0, release
        assert versions.compare("Rocky Linux", "2.4.1", f"2.4.0-{release}") > 0, release


@pytest.mark.parametrize("bad", ["-1", "1:", "1:-2", "", None])
def test_rpm_versions_without_a_version_are_refused(bad):
    with pytest.raises(versions.InvalidVersion, match="not a valid rpm version"):
        versions.sort_key("Red Hat", bad)


needs_rpm = pytest.mark.usefixtures("rpm_tool")


@needs_rpm
def test_the_rpm_cases_agree_with_rpm_itself():
    cases = RPMVERCMP_CASES + RPM_EVR_CASES + RPM_RELEASE_CASES
    assert _rpm_oracle([(left, right) for left, right, _ in cases]) == [
        expected for _, _, expected in cases
    ]


def _random_rpm_version(rng: random.Random) -> str:
    alphabet = "0123456789abcXY.~^_"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
    if rng.random() < 0.5:
        # Empty releases too ("1.0-"): rpm tells them from missing ones.
        text += "-" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
    if rng.random() < 0.2:
        text = f"{rng.choice(['', '0', '00', '1', '2'])}:{text}"
    return text


@needs_rpm
def test_random_versions_are_ordered_as_rpm_orders_them():
    rng = random.Random(4180)
    pairs = [(_random_rpm_version(rng), _random_rpm_version(rng)) for _ in range(600)]
    ours = [sign(versions.compare("Rocky Linux", left, right)) for left, right in pairs]
    assert ours == _rpm_oracle(pairs)


# --- apk -------------------------------------------------------------------------------------

# From apk-tools' own test data (alpinelinux/apk-tools: test/version.data in 2.x,
# test/unit/version.data in 3.x): cases covering suffixes, revisions, letters, leading zeros
# and invalid tails; the last lines are the 2023 fix of a ".0" before a suffix (apk-tools
# 2.12.11/2.14) and apk-tools 3's leading zeros and "~hash".
APK_CASES = """
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.2 < 1.3_alpha
1.3_alpha2 < 1.3_alpha3
0.7.0 < 0.8_beta1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
3.1_p16 < 3.1_p17
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
3.9.8-r5 > 2.01.01_alpha10
1.0 > 0.99.3.20040818
1.39 > 1.00_beta2
4.2.52_p2-r1 < 4.2.52_p4-r2
2.18.3-r10 > 1.05-r18
20060720 > 3.0.20060720
2.5.1-r8 < 2.5.1a-r1
20040401 > 2.0.0_rc3-r1
3.0.0-r2 < 021109-r3
0.9.16-r1 < 3.9_pre20060124
1.1.7 < 6b-r7
0.10.0 < 0.10.1_rc1
0.15.1b-r2 > 0.15.1b
22.7-r1 < 22.7.3-r1
2.10.1 > 02.08.01b
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
0.59s-r11 < 0.65
0.20070118 < 0.20070207_rc1
0.9.8c-r1 < 0.9.8d
2.2.3-r2 < 013
1.7 < 1.7b
1.8.5 < 1.8.5_p2
0.98 < 1.00
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
1.6.8_p12-r1 > 1.6.8_p9-r2
0.9.28-r2 < 0.9.28.1
0.9.28.1 < 087-r1
104-r11 > 104-r9
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
6.0_pre1 < 6.0
6.1_pre1 < 6.1
6.0_p1 > 6.0
6.1_p1 > 6.1
8.2.0 < 8.2.001
8.2.0015 < 8.2.002
1.0~1234 < 1.0~2345
1.0~1234-r1 < 1.0~2345-r0
1.0~1234-r1 > 1.0~1234-r0
"""

# More cases, one rule each, written for this suite and checked, when written, with apk-tools'
# own apk_version_compare (master, 3.0.x) built from source: apk is not packaged for Debian,
# so the suite cannot run it.
APK_MORE_CASES = """
1.11.0_rc1 < 1.11.0
1.11.0_rc1-r3 < 1.11.0-r0
1.11.0 < 1.11.0_p1
1.0_rc9 < 1.0_rc10
1.0_alpha10 < 1.0_beta1
1.0_p1 < 1.0_p1-r1
1.02 < 1.1
1.002 < 1.02
1.0 < 1.00
1.00 < 1.001
1.010 < 1.1
1.09 < 1.1
1.05 = 1.05
006 = 6
010 > 9
1.0a < 1.0b
1.0 < 1.0a
1.0a < 1.0.1
1.0z < 1.1
1.0a_p1 > 1.0a
1.0a-r1 > 1.0a
1.0 < 1.0-r0
1.0-r9 < 1.0-r10
1.0-r01 = 1.0-r1
1.0_p1 > 1.0-r5
1.0~abc > 1.0-r0
1.0_p1 < 1.0_p1~abc
"""

# apk's suffix order, lowest first: the pre-releases, no suffix, then the others.
APK_SUFFIX_ORDER = ("_alpha", "_beta", "_pre", "_rc", "", "_cvs", "_svn", "_git", "_hg", "_p")


def apk_cases() -> list[tuple[str, int, str]]:
    cases = []
    for line in (APK_CASES + APK_MORE_CASES).split("\n"):
        if not line.strip():
            continue
        left, operator, right = line.split()
        cases.append((left, SIGN[operator], right))
    return cases


@pytest.mark.parametrize(("left", "expected", "right"), apk_cases())
def test_apk_order_matches_apk_tools_test_cases(left, expected, right):
    assert sign(versions.compare("Alpine", left, right)) == expected
    assert sign(versions.compare("Alpine", right, left)) == -expected


@pytest.mark.parametrize("base", ["1.0", "6.0", "1.11.0", "2.4.10a"])
def test_apk_suffixes_order_pre_releases_below_the_release_and_the_others_above(base):
    ordered = [base + suffix for suffix in APK_SUFFIX_ORDER]
    for lower, higher in itertools.combinations(ordered, 2):
        assert versions.compare("Alpine", lower, higher) < 0, (lower, higher)
        assert versions.compare("Alpine", f"{lower}-r9", f"{higher}-r0") < 0, (lower, higher)
    # A suffix's number counts within the suffix only.
    assert versions.compare("Alpine", f"{base}_rc10", base) < 0
    assert versions.compare("Alpine", f"{base}_p1", f"{base}_p10") < 0


def test_apk_keys_order_like_compare():
    """The matcher sorts and bisects keys: they must order every case exactly as compare()."""
    for left, expected, right in apk_cases():
        left_key, right_key = versions.sort_key("Alpine", left), versions.sort_key("Alpine", right)
        assert ((left_key > right_key) - (left_key < right_key)) == expected, (left, right)


def test_real_alpine_security_fix_versions_order():
    assert versions.compare("Alpine", "3.1.4-r5", "3.1.4-r6") < 0
    assert versions.compare("Alpine", "3.1.4_p1-r0", "3.1.4-r9") > 0  # a patch level is newer
    assert versions.compare("Alpine", "1.36.1-r5", "1.36.1-r15") < 0


# --- PEP 440 (PyPI) --------------------------------------------------------------------------

# The ordering example PEP 440 gives ("Summary of permitted suffixes and relative ordering"),
# lowest first.
PEP440_ORDER = [
    "1.dev0",
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
]


def test_pep440_examples_are_in_order():
    for lower, higher in itertools.pairwise(PEP440_ORDER):
        assert versions.compare("PyPI", lower, higher) < 0, (lower, higher)


def test_pep440_equivalent_spellings_are_equal():
    assert versions.compare("PyPI", "1.0", "1.0.0") == 0
    assert versions.compare("PyPI", "1.0-rc1", "1.0rc1") == 0
    assert versions.compare("PyPI", "3.2.25", "3.2.3") > 0


@pytest.mark.parametrize("bad", ["2019-09-12x", "0.2.0-n653", "latest", "1.0 final"])
def test_invalid_pep440_versions_raise_a_clear_error(bad):
    with pytest.raises(versions.InvalidVersion, match="not a valid pep440 version"):
        versions.compare("PyPI", bad, "1.0")


# --- SemVer ----------------------------------------------------------------------------------

# semver.org, section 11: "1.0.0-alpha < 1.0.0-alpha.1 < ... < 1.0.0".
SEMVER_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]


def test_semver_precedence_follows_the_specification():
    for lower, higher in itertools.pairwise(SEMVER_ORDER):
        assert versions.compare("SEMVER", lower, higher) < 0, (lower, higher)
    assert versions.compare("SEMVER", "1.0.0+build.1", "1.0.0+build.2") == 0
    assert versions.compare("SEMVER", "v1.2.3", "1.2.3") == 0


@pytest.mark.parametrize("bad", ["1.2", "01.2.3", "1.2.3-", "1.2.3.4"])
def test_invalid_semver_raises(bad):
    with pytest.raises(versions.InvalidVersion):
        versions.compare("SEMVER", bad, "1.0.0")


# --- families --------------------------------------------------------------------------------


def test_unknown_ecosystems_are_refused_clearly():
    with pytest.raises(versions.UnsupportedEcosystem, match="npm"):
        versions.compare("npm", "1.0.0", "1.0.1")
    assert not versions.is_supported("Mageia")
    for family in ("Debian", "Ubuntu", "Alpine", "Red Hat", "Rocky Linux", "AlmaLinux"):
        assert versions.is_supported(family)
    for family in ("openSUSE", "SUSE", "PyPI", "SEMVER"):
        assert versions.is_supported(family)


def test_keys_are_cached():
    versions.clear_cache()
    versions.sort_key("Debian", "1:2.3-4")
    versions.sort_key("Debian", "1:2.3-4")
    info = versions.cache_info()
    assert (info.hits, info.misses) == (1, 1)
