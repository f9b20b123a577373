"""Version ordering per package ecosystem. Pure logic, no Django imports.

``compare(family, a, b)`` answers "is ``a`` older than ``b``?" the way the ecosystem's own tool
does; ``sort_key(family, version)`` turns a version into a plain Python value with the same
order, so that the matcher compares tuples in C instead of calling a comparator per pair. Keys
are cached (``functools.lru_cache``): a host and the advisories for its packages repeat the same
few thousand version strings, and matching speed depends on parsing each of them once.

Schemes and where their rules come from:

- **dpkg** (families "Debian", "Ubuntu"): python-debian's ``debian.debian_support.Version``
  checks the syntax and splits epoch, upstream version and revision; the key then encodes dpkg's
  ``verrevcmp`` (lib/dpkg/version.c): alternate non-digit and digit runs, ``~`` sorts before
  everything (even the end of the string), letters before other characters, digit runs
  numerically, a missing revision equals ``0``. Proven against the 315 oracle pairs of
  ``tests/data/versions/dpkg-compare-cases.tsv`` (apt_pkg), against ``dpkg --compare-versions``
  and against python-debian's own comparison (tests/matching/test_versions_oracle.py). The two
  policy-invalid oracle versions (``a``, ``~``: no leading digit) are accepted and ordered as
  apt and dpkg order them (dpkg only warns).
- **rpm** ("Red Hat", "Rocky Linux", "AlmaLinux", "openSUSE", "SUSE"): rpm's EVR order as
  ``rpm.vercmp`` has it (rpmverParse/rpmverCmp in rpmio/rpmver.c): ``[epoch:]version[-release]``
  — the epoch is the digits before a leading ":" (missing or empty: 0), the release is after the
  last "-" — each part ordered by ``rpmvercmp`` (rpmio/rpmvercmp.c): alphanumeric segments,
  separators ignored, numbers above letters, ``~`` before everything, ``^`` after the end but
  before any further segment. A version without a release (no "-") sorts below the same version
  with any release, an empty or a ``~`` one included: ``1 < 1- < 1-~rc1 < 1-0``. Proven against
  rpm 4.18 itself, rpm's own rpmvercmp test cases and (where it agrees with rpm) univers'
  ``compare_rpm_versions``.
- **apk** ("Alpine"): apk-tools 3's ``apk_version_compare`` (src/version.c, the apk of Alpine
  3.23 and later): an initial number, ".number" components, one letter, ``_alpha``/``_beta``/
  ``_pre``/``_rc`` (pre-releases, below no suffix) and ``_cvs``/``_svn``/``_git``/``_hg``/``_p``
  (above it) suffixes with numbers, a ``~hash`` and a ``-rN`` revision. A component with a
  leading zero is compared as a string against the other's (``1.02 < 1.1``, ``8.2.0 <
  8.2.001``); the initial number is always a number (``006 > 1.0.0``). Where two versions part
  ways, the one that goes on is newer unless it goes on with a pre-release suffix
  (``6.0_pre1 < 6.0``, ``1.11.0_rc1 < 1.11.0``). apk-tools 2.14 (Alpine 3.22 and earlier)
  passes its own test data the same way, but orders a few leading-zero components otherwise
  (there ``8.2.0 > 8.2.001`` and ``1.0 > 1.00``) and knows no ``~hash``. univers'
  ``AlpineLinuxVersion`` follows Gentoo's rules instead and is not used. Proven against
  apk-tools' test data (tests/matching/test_versions_oracle.py).
- **pep440** ("PyPI"): ``packaging.version.Version``. A string that is not PEP 440 raises
  ``InvalidVersion`` (the matcher then only matches it against explicit ``versions`` lists).
- **semver** ("SEMVER", for OSV ranges of type SEMVER): SemVer 2.0.0 precedence (build metadata
  ignored); a leading "v" is tolerated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion as PackagingInvalidVersion
from packaging.version import Version as Pep440Version

DPKG = "dpkg"
RPM = "rpm"
APK = "apk"
PEP440 = "pep440"
SEMVER = "semver"

SCHEMES: dict[str, str] = {
    "Debian": DPKG,
    "Ubuntu": DPKG,
    "Alpine": APK,
    "Red Hat": RPM,
    "Rocky Linux": RPM,
    "AlmaLinux": RPM,
    "openSUSE": RPM,
    "SUSE": RPM,
    "PyPI": PEP440,
    "SEMVER": SEMVER,
}

# Versions longer than this are refused: no real package version comes close, and a hostile
# string must not cost more than a bounded amount of work per comparison.
MAX_VERSION_LENGTH = 256


class UnsupportedEcosystem(ValueError):
    """The family has no version ordering here (it is then simply not looked up)."""

    def __init__(self, family: str):
        self.family = family
        super().__init__(f"no version ordering for ecosystem {family!r}")


class InvalidVersion(ValueError):
    """A version string the ecosystem's rules cannot order."""

    def __init__(self, scheme: str, version: object, reason: str = ""):
        self.scheme = scheme
        self.version = version
        text = f"not a valid {scheme} version: {str(version)[:80]!r}"
        super().__init__(f"{text} ({reason})" if reason else text)


def scheme_for(family: str) -> str:
    """The ordering scheme of an OSV ecosystem family ("Debian" → "dpkg")."""
    try:
        return SCHEMES[family]
    except KeyError:
        raise UnsupportedEcosystem(family) from None


def is_supported(family: str) -> bool:
    return family in SCHEMES


def sort_key(family: str, version: str) -> Any:
    """A value whose natural order is the ecosystem's version order. Keys of different schemes
    must never be compared with each other."""
    return scheme_key(scheme_for(family), version)


def compare(family: str, a: str, b: str) -> int:
    """<0, 0 or >0 as ``a`` is older than, equal to or newer than ``b`` in the ecosystem."""
    scheme = scheme_for(family)
    key_a, key_b = scheme_key(scheme, a), scheme_key(scheme, b)
    return (key_a > key_b) - (key_a < key_b)


def scheme_key(scheme: str, version: str) -> Any:
    """``sort_key`` by scheme name, cached; raises ``InvalidVersion``."""
    if not isinstance(version, str):
        raise InvalidVersion(scheme, version, "not a string")
    return _cached_key(scheme, version)


@lru_cache(maxsize=1 << 18)
def _cached_key(scheme: str, version: str) -> Any:
    if not version or len(version) > MAX_VERSION_LENGTH:
        raise InvalidVersion(scheme, version, f"empty or longer than {MAX_VERSION_LENGTH}")
    try:
        parse = _PARSERS[scheme]
    except KeyError:
        raise UnsupportedEcosystem(scheme) from None
    return parse(version)


def clear_cache() -> None:
    """Forget every parsed version (benchmarks measure a cold start with it)."""
    _cached_key.cache_clear()


def cache_info() -> Any:
    return _cached_key.cache_info()


# --- dpkg ------------------------------------------------------------------------------------

_DPKG_NON_DIGITS = re.compile(r"[^0-9]*")
_DPKG_DIGITS = re.compile(r"[0-9]*")
# The end of a non-digit run. dpkg's order(): "~" is -1, the end of the string 0, ASCII letters
# their code, anything else its code + 256 — so every character of a run is non-zero and a run
# ending in 0 can only be a prefix of another run when both are equal.
_DPKG_END = 0


def _dpkg_char_order(char: str) -> int:
    if char == "~":
        return -1
    if ("a" <= char <= "z") or ("A" <= char <= "Z"):
        return ord(char)
    return ord(char) + 256


def _dpkg_part_key(part: str) -> tuple:
    """dpkg's verrevcmp as a tuple: (non-digit run, number, non-digit run, number, ..., END).

    Every part has at least one (run, number) pair, so "" orders like "0" as in dpkg, and the
    key ends with the empty run (END,) that a longer part is compared against."""
    key: list = []
    position = 0
    length = len(part)
    while True:
        run = _DPKG_NON_DIGITS.match(part, position).group()
        position += len(run)
        digits = _DPKG_DIGITS.match(part, position).group()
        position += len(digits)
        key.append((*(_dpkg_char_order(char) for char in run), _DPKG_END))
        key.append(int(digits) if digits else 0)
        if position >= length:
            break
    key.append((_DPKG_END,))
    return tuple(key)


def _dpkg_key(version: str) -> tuple:
    if version.endswith("-"):
        # python-debian would read "1.0-" as upstream "1.0-"; dpkg refuses it.
        raise InvalidVersion(DPKG, version, "revision number is empty")
    try:
        parsed = DebianVersion(version)
    except ValueError as error:
        raise InvalidVersion(DPKG, version, str(error)) from None
    epoch = int(parsed.epoch) if parsed.epoch else 0
    return (
        epoch,
        _dpkg_part_key(parsed.upstream_version or ""),
        _dpkg_part_key(parsed.debian_revision or ""),
    )


# --- rpm -------------------------------------------------------------------------------------

_RPM_SEGMENT = re.compile(r"[0-9]+|[A-Za-z]+|~|\^")
# Token ranks in rpmvercmp's order: "~" < end of string < "^" < letters < digits.
_RPM_TILDE = (0,)
_RPM_END = (1,)
_RPM_CARET = (2,)
_RPM_ALPHA = 3
_RPM_NUMBER = 4
# rpm's parseEVR: an epoch is the run of digits (possibly none) before a ":" at the start.
_RPM_EPOCH = re.compile(r"([0-9]*):")
# The key of a missing release: below every release, the empty one included (rpmverCmp
# compares a missing release as lower than any present one).
_RPM_NO_RELEASE = ()


def _rpm_part_key(part: str) -> tuple:
    tokens: list[tuple] = []
    for segment in _RPM_SEGMENT.findall(part):
        if segment == "~":
            tokens.append(_RPM_TILDE)
        elif segment == "^":
            tokens.append(_RPM_CARET)
        elif segment[0].isdigit():
            tokens.append((_RPM_NUMBER, int(segment)))
        else:
            tokens.append((_RPM_ALPHA, segment))
    tokens.append(_RPM_END)
    return tuple(tokens)


def _rpm_key(version: str) -> tuple:
    """rpm's own EVR order (rpmverParse and rpmverCmp in rpmio/rpmver.c, what ``rpm.vercmp``
    runs): the epoch is the digits before a leading ":" (none, or none written: 0); the
    release is what follows the last "-" after it, and a version without any "-" has no
    release at all, which sorts below every release, even an empty one ("1" < "1-" <
    "1-~rc1" < "1-0")."""
    epoch_match = _RPM_EPOCH.match(version)
    if epoch_match:
        epoch, rest = int(epoch_match.group(1) or 0), version[epoch_match.end() :]
    else:
        # "x:1.0" has no epoch in rpm: the colon is a separator inside the version.
        epoch, rest = 0, version
    upstream, dash, release = rest.rpartition("-")
    if not dash:
        upstream = rest
    if not upstream:
        raise InvalidVersion(RPM, version, "no version before the release")
    return (
        epoch,
        _rpm_part_key(upstream),
        _rpm_part_key(release) if dash else _RPM_NO_RELEASE,
    )


# --- apk -------------------------------------------------------------------------------------

# apk-tools 3's token types (src/version.c), in its order: a version that stops while the other
# goes on is newer when the other goes on with a later type (a revision after a suffix, ...),
# except that going on with a pre-release suffix (or hitting an invalid token) is older.
_APK_INITIAL_DIGIT = 0
_APK_DIGIT = 1
_APK_LETTER = 2
_APK_SUFFIX = 3
_APK_SUFFIX_NO = 4
_APK_COMMIT_HASH = 5
_APK_REVISION_NO = 6
_APK_END = 7
_APK_INVALID = 8
# Suffix values: pre-releases below "no suffix" (0), the others above it.
_APK_SUFFIXES = {
    "alpha": -4,
    "beta": -3,
    "pre": -2,
    "rc": -1,
    "cvs": 1,
    "svn": 2,
    "git": 3,
    "hg": 4,
    "p": 5,
}
# The rank of a pre-release suffix token where two versions part ways: below every type, an
# invalid token included (apk checks for it first).
_APK_PRE_RELEASE_RANK = -100
_APK_DIGITS = re.compile(r"[0-9]*")
_APK_SUFFIX_NAME = re.compile(r"[a-z]*")
_APK_HASH = re.compile(r"[0-9a-f]*")
# apk reads numbers into an unsigned 64-bit integer, wrapping around on longer ones.
_APK_NUMBER_MODULUS = 1 << 64


def _apk_tokens(version: str) -> Iterator[tuple[int, Any]]:
    """apk-tools 3's lexer: (type, value) for each token, ending with an END or INVALID one.

    ``digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}``: each token may only follow
    the types its grammar allows; anything else is an INVALID token, and the walk stops."""
    digits = _APK_DIGITS.match(version).group()
    if not digits:
        yield _APK_INVALID, None
        return
    yield _APK_INITIAL_DIGIT, int(digits) % _APK_NUMBER_MODULUS
    kind, position, length = _APK_INITIAL_DIGIT, len(digits), len(version)
    while position < length:
        char = version[position]
        value: Any
        if "a" <= char <= "z" and kind <= _APK_DIGIT:
            kind, value = _APK_LETTER, char
            position += 1
        elif char == "." and kind <= _APK_DIGIT:
            digits = _APK_DIGITS.match(version, position + 1).group()
            if not digits:
                break
            # A component with a leading zero is compared with the other one as a string
            # (apk's token_cmp), and such a string is lower than any number without one.
            kind = _APK_DIGIT
            value = (0, digits) if digits[0] == "0" else (1, int(digits) % _APK_NUMBER_MODULUS)
            position += 1 + len(digits)
        elif "0" <= char <= "9" and kind == _APK_SUFFIX:
            digits = _APK_DIGITS.match(version, position).group()
            kind, value = _APK_SUFFIX_NO, int(digits) % _APK_NUMBER_MODULUS
            position += len(digits)
        elif char == "_" and kind <= _APK_SUFFIX_NO:
            name = _APK_SUFFIX_NAME.match(version, position + 1).group()
            if name not in _APK_SUFFIXES:
                break
            kind, value = _APK_SUFFIX, _APK_SUFFIXES[name]
            position += 1 + len(name)
        elif char == "~" and kind < _APK_COMMIT_HASH:
            value = _APK_HASH.match(version, position + 1).group()
            if not value:
                break
            kind = _APK_COMMIT_HASH
            position += 1 + len(value)
        elif version.startswith("-r", position) and kind < _APK_REVISION_NO:
            digits = _APK_DIGITS.match(version, position + 2).group()
            if not digits:
                break
            kind, value = _APK_REVISION_NO, int(digits) % _APK_NUMBER_MODULUS
            position += 2 + len(digits)
        else:
            break
        yield kind, value
    else:
        yield _APK_END, None
        return
    yield _APK_INVALID, None


def _apk_key(version: str) -> tuple:
    """apk compares two versions token by token: while both have a token of the same type, by
    value; where the types differ, by type (see the constants above). The key lists each token
    as (rank, value), so that tuple order does the same walk; the END or INVALID token closes
    it, and two versions that turn invalid at the same place compare equal, as in apk."""
    key: list[tuple] = []
    for kind, value in _apk_tokens(version):
        if kind >= _APK_END:
            key.append((-kind,))
        elif kind == _APK_SUFFIX and value < 0:
            key.append((_APK_PRE_RELEASE_RANK, value))
        else:
            key.append((-kind, value))
    return tuple(key)


# --- PEP 440 ---------------------------------------------------------------------------------


def _pep440_key(version: str) -> Pep440Version:
    try:
        return Pep440Version(version)
    except PackagingInvalidVersion as error:
        raise InvalidVersion(PEP440, version, str(error)) from None


# --- SemVer 2.0.0 ----------------------------------------------------------------------------

# The regular expression semver.org publishes, with an optional leading "v".
_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
_SEMVER_RELEASE = (1,)  # a release sorts after all of its pre-releases


def _semver_key(version: str) -> tuple:
    match = _SEMVER.fullmatch(version.strip())
    if not match:
        raise InvalidVersion(SEMVER, version)
    major, minor, patch, pre_release = match.group(1, 2, 3, 4)
    if pre_release is None:
        pre_key: tuple = _SEMVER_RELEASE
    else:
        # Numeric identifiers sort below alphanumeric ones; more identifiers sort higher when
        # the shared ones are equal (tuple order gives exactly that).
        pre_key = (
            0,
            *((0, int(part)) if part.isdigit() else (1, part) for part in pre_release.split(".")),
        )
    return (int(major), int(minor), int(patch), pre_key)


_PARSERS = {
    DPKG: _dpkg_key,
    RPM: _rpm_key,
    APK: _apk_key,
    PEP440: _pep440_key,
    SEMVER: _semver_key,
}
