"""Version ordering per package ecosystem (pure, no Django).

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
- **rpm** ("Red Hat", "Rocky Linux", "AlmaLinux", "openSUSE", "SUSE"): ``[epoch:]version[-release]``
  (a missing epoch is 0, the release is after the last "-"), each part ordered by ``rpmvercmp``
  (rpmio/rpmvercmp.c): alphanumeric segments, separators ignored, numbers above letters, ``~``
  before everything, ``^`` after the end but before any further segment. Proven against rpm's
  own rpmvercmp test cases and against univers' ``compare_rpm_versions``. A version without a
  release compares as if its release were empty (older than any release).
- **apk** ("Alpine"): a port of apk-tools' ``apk_version_compare`` (src/version.c): digits,
  one letter, ``_alpha``/``_beta``/``_pre``/``_rc`` (pre-releases) and ``_cvs``/``_svn``/``_git``/
  ``_hg``/``_p`` suffixes, ``-rN`` revisions, and a leading zero after "." compared as a
  fraction. univers' ``AlpineLinuxVersion`` uses Gentoo's rules instead and gets leading zeros
  wrong (``006 > 1.0.0`` in apk), so it is not used; proven against apk-tools' test cases.
- **pep440** ("PyPI"): ``packaging.version.Version``. A string that is not PEP 440 raises
  ``InvalidVersion`` (the matcher then only matches it against explicit ``versions`` lists).
- **semver** ("SEMVER", for OSV ranges of type SEMVER): SemVer 2.0.0 precedence (build metadata
  ignored); a leading "v" is tolerated.
"""

from __future__ import annotations

import re
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
_RPM_EPOCH = re.compile(r"[0-9]+")


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
    epoch_text, colon, rest = version.partition(":")
    if colon:
        if not _RPM_EPOCH.fullmatch(epoch_text):
            raise InvalidVersion(RPM, version, "the epoch is not a number")
        epoch = int(epoch_text)
    else:
        epoch, rest = 0, version
    upstream, _, release = rest.rpartition("-") if "-" in rest else (rest, "", "")
    if not upstream:
        raise InvalidVersion(RPM, version, "no version before the release")
    return (epoch, _rpm_part_key(upstream), _rpm_part_key(release))


# --- apk -------------------------------------------------------------------------------------

# apk-tools' token types, with their numeric values: the comparison relies on their order.
_T_INVALID = -1
_T_DIGIT_OR_ZERO = 0
_T_DIGIT = 1
_T_LETTER = 2
_T_SUFFIX = 3
_T_SUFFIX_NO = 4
_T_REVISION_NO = 5
_T_END = 6
_APK_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_APK_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
_APK_ALLOWED_BACKWARDS = {
    (_T_DIGIT, _T_DIGIT_OR_ZERO),
    (_T_SUFFIX_NO, _T_SUFFIX),
    (_T_LETTER, _T_DIGIT),
}
# A pre-release suffix ranks below every other token type when two versions part ways.
_APK_PRE_RELEASE_RANK = -100


def _apk_next_type(current: int, text: str, position: int) -> tuple[int, int]:
    """apk-tools' next_token(): the type of the token at ``position`` (and the position after
    its separator)."""
    if position >= len(text):
        new = _T_END
    elif current in (_T_DIGIT, _T_DIGIT_OR_ZERO) and "a" <= text[position] <= "z":
        new = _T_LETTER
    elif current == _T_LETTER and text[position].isdigit():
        new = _T_DIGIT
    elif current == _T_SUFFIX and text[position].isdigit():
        new = _T_SUFFIX_NO
    else:
        char = text[position]
        if char == ".":
            new = _T_DIGIT_OR_ZERO
        elif char == "_":
            new = _T_SUFFIX
        elif char == "-" and position + 1 < len(text) and text[position + 1] == "r":
            new = _T_REVISION_NO
            position += 1
        else:
            new = _T_INVALID
        position += 1
    if new < current and (current, new) not in _APK_ALLOWED_BACKWARDS:
        new = _T_INVALID
    return new, position


def _apk_digits(text: str, position: int) -> int:
    end = position
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return end


def _apk_get_token(kind: int, text: str, position: int) -> tuple[int, int, int]:
    """apk-tools' get_token(): (value of the token of type ``kind`` at ``position``, type of the
    next token, position of the next token)."""
    if position >= len(text):
        return 0, _T_END, position
    next_kind = _T_INVALID
    if kind == _T_DIGIT_OR_ZERO and text[position] == "0":
        # A leading zero after "." is a fraction: "1.02" < "1.1"; the zeros count negatively.
        end = position
        while end < len(text) and text[end] == "0":
            end += 1
        value = -(end - position)
        next_kind = _T_DIGIT
    elif kind in (_T_DIGIT_OR_ZERO, _T_DIGIT, _T_SUFFIX_NO, _T_REVISION_NO):
        end = _apk_digits(text, position)
        value = int(text[position:end]) if end > position else 0
    elif kind == _T_LETTER:
        value, end = ord(text[position]), position + 1
    elif kind == _T_SUFFIX:
        for index, suffix in enumerate(_APK_PRE_SUFFIXES):
            if text.startswith(suffix, position):
                value, end = index - len(_APK_PRE_SUFFIXES), position + len(suffix)
                break
        else:
            for index, suffix in enumerate(_APK_POST_SUFFIXES):
                if text.startswith(suffix, position):
                    value, end = index, position + len(suffix)
                    break
            else:
                return -1, _T_INVALID, position
    else:
        return -1, _T_INVALID, position
    if end >= len(text):
        return value, _T_END, end
    if next_kind != _T_INVALID:
        return value, next_kind, end
    new_kind, end = _apk_next_type(kind, text, end)
    return value, new_kind, end


def _apk_key(version: str) -> tuple:
    """apk's comparison walks both versions token by token: values first, then the type of the
    next token. The key lists them in that order — value, rank of the next type, value, ... —
    where a type's rank reproduces apk's tie-break: the version that goes on is newer, unless
    it goes on with a pre-release suffix (or an unknown one, which apk reads as -1)."""
    key: list[int] = []
    kind, position = _T_DIGIT, 0
    while True:
        value, kind, position = _apk_get_token(kind, version, position)
        key.append(value)
        if kind == _T_SUFFIX and _apk_get_token(_T_SUFFIX, version, position)[0] < 0:
            key.append(_APK_PRE_RELEASE_RANK)
        else:
            key.append(-kind)
        if kind in (_T_END, _T_INVALID):
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
