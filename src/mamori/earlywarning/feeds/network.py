"""Network observation reports in Shadowserver's CSV shape (pure logic, no Django imports).

Shadowserver sends each network owner one CSV file a day per report type (``scan_rdp``,
``event4_sinkhole``, ``blocklist``, …), filtered to the owner's addresses. The columns differ
from one type to another and grow over the years, so a report is read by header name
(trimmed, case-insensitive) and every column, known or not, is kept in the row's ``raw``.

``read_report(source, report_type, source_name=...)`` checks the report type and the header at
once (``FeedError`` when the file cannot be used at all) and returns an iterator of
``ObservationRow``, or ``RowError`` for a row that cannot be used; reading continues after a bad
row. ``observation_key(report_type, row)`` identifies what was seen regardless of the day it was
seen, so that the same exposure reported every morning updates one alert.

Which address a report is about — each ``ReportKind`` names the column, and why:

- ``scan_*`` (open or vulnerable services): ``ip``, the scanned host, which is the organisation's.
- ``event4_sinkhole*`` / ``event6_sinkhole*`` (infected devices calling a sinkhole): ``src_ip``.
  ``dst_ip`` is the sinkhole itself (a security organisation's server); Shadowserver files the
  event under the network of the device that made the connection, the infected one.
- ``event4_honeypot*`` (brute force, scans and exploit attempts seen by honeypots): ``src_ip``,
  the attacking device on the organisation's network; ``dst_ip`` is the honeypot.
  ``event4_honeypot_ddos_target`` is the exception: it is filtered by ``dst_ip``, the victim of
  a DDoS command, while ``src_ip`` there is the botnet's command server.
- ``blocklist``: ``ip``, which may be a whole prefix ("192.0.2.0/24"): the only type whose
  address may be a network (``ReportKind.allows_prefix``).

The port, AS number and host name come from the same side as the address (``src_port`` with
``src_ip``). Choices made for the typed fields, documented once:

- ``seen_at``: Shadowserver's "YYYY-MM-DD HH:MM:SS" (UTC, as all its reports are) or ISO 8601
  with ``T``, fractions of a second and ``Z`` or an offset; always returned in UTC. A time more
  than a day after ``now`` is refused (a row from the future would keep an alert open for ever).
- ``ip``: normalised to ``ipaddress``'s text form ("2001:DB8:0::1" → "2001:db8::1",
  ``normalise_ip``); an IPv4-mapped IPv6 address becomes the IPv4 address it carries, so that
  it matches IPv4 prefixes. Zone ids
  ("fe80::1%eth0"), brackets and leading zeros ("192.000.002.001") are refused. A blocklist
  prefix must not have host bits set and must be no wider than /8 (IPv4) or /19 (IPv6), the
  registry's own limits; a /32 (/128) is returned as the plain address.
- ``port``: 0–65535, empty → None. ``asn``: "64496" or "AS64496", 0 and empty → None (Shadowserver
  writes 0 for "unknown").
- ``tag``: what the report says was seen — the first non-empty of the kind's tag columns
  (``tag`` for scans, ``infection`` then ``tag`` for sinkholes and honeypots, ``reason`` for the
  blocklist).
- Values are kept exactly as they are in ``raw`` (a value starting with "=", "+", "-" or "@" is
  text like any other: nothing here evaluates it; whoever writes ``raw`` back out to a
  spreadsheet must neutralise it there).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import ipaddress
import json
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from mamori.core import controls
from mamori.earlywarning.feeds.errors import FeedError, RowError, gettext_noop, shown
from mamori.earlywarning.feeds.lines import (
    DEFAULT_MAX_ROW_BYTES,
    CsvRecords,
    Source,
    complete_rows,
    header_names,
    header_problem,
)

INCIDENT = "incident"
NETWORK_ABUSE = "network_abuse"
EXPOSURE = "exposure"
ALERT_TYPES = (INCIDENT, NETWORK_ABUSE, EXPOSURE)
SEVERITIES = ("critical", "high", "medium", "low", "info")

DEFAULT_MAX_COLUMNS = 256
# A row may be dated this far after ``now`` (clocks differ; reports are dated by their sender).
FUTURE_TOLERANCE = timedelta(days=1)
# The widest blocklist prefix accepted: the asset registry's own limits.
WIDEST_PREFIX = {4: 8, 6: 19}


@dataclass(frozen=True)
class ReportKind:
    """What a report type means for Mamori. ``side`` is the prefix of the columns that
    describe the organisation's end ("" for ``ip``/``port``, "src_" or "dst_");
    ``key_parts`` names what, besides the report type and address, identifies one observation
    across days (``port``, ``protocol`` and ``tag`` are the row's fields, any other name a raw
    column). ``label`` and ``remediation`` are {"ja": …, "en": …}."""

    alert_type: str
    category: str
    severity: str
    control: str
    side: str
    tag_columns: tuple[str, ...]
    key_parts: tuple[str, ...]
    label: Mapping[str, str]
    remediation: Mapping[str, str]
    allows_prefix: bool = False

    @property
    def ip_column(self) -> str:
        return f"{self.side}ip"

    @property
    def port_column(self) -> str:
        return f"{self.side}port"

    @property
    def asn_column(self) -> str:
        return f"{self.side}asn"

    @property
    def hostname_column(self) -> str:
        return f"{self.side}hostname"


OPEN_SERVICE = ReportKind(
    alert_type=EXPOSURE,
    category="open_service",
    severity="medium",
    control=controls.FIREWALLS,
    side="",
    tag_columns=("tag",),
    key_parts=("port", "protocol", "tag"),
    label={"ja": "インターネットに公開されたサービス", "en": "Service open to the internet"},
    remediation={
        "ja": "このアドレスのサービスがインターネットから応答しています。公開する必要がなければ"
        "境界ファイアウォールでポートを閉じてください。必要な場合も接続元を既知のアドレスに限るか"
        " VPN の内側に置き、ソフトウェアを最新に保ってください。",
        "en": "A service on this address answers from the internet. If it need not be "
        "reachable, close the port at the boundary firewall; if it must be, allow only known "
        "addresses or put it behind a VPN, and keep its software up to date.",
    },
)

REMOTE_ACCESS = ReportKind(
    alert_type=EXPOSURE,
    category="remote_access_exposed",
    severity="high",
    control=controls.FIREWALLS,
    side="",
    tag_columns=("tag",),
    key_parts=("port", "protocol", "tag"),
    label={
        "ja": "インターネットに公開されたリモートアクセス",
        "en": "Remote access open to the internet",
    },
    remediation={
        "ja": "リモートデスクトップやファイル共有がインターネットから到達できます。"
        "ランサムウェアの侵入口として多用されるため、境界ファイアウォールで遮断し、"
        "多要素認証付きの VPN を経由した接続だけを許可してください。",
        "en": "Remote desktop or file sharing on this address can be reached from the "
        "internet, a common way in for ransomware. Block it at the boundary firewall and allow "
        "it only through a VPN with multi-factor authentication.",
    },
)

VULNERABLE_SERVICE = ReportKind(
    alert_type=EXPOSURE,
    category="vulnerable_service",
    severity="high",
    control=controls.SECURITY_UPDATE_MANAGEMENT,
    side="",
    tag_columns=("tag",),
    key_parts=("port", "protocol", "tag"),
    label={"ja": "脆弱なサービス", "en": "Vulnerable service"},
    remediation={
        "ja": "このアドレスのサービスに既知の脆弱性が見つかりました。ベンダーのセキュリティ"
        "アップデートを直ちに適用し（悪用が確認されている脆弱性は即時、それ以外も 14 日以内）、"
        "侵害の痕跡がないかホストを確認してください。",
        "en": "The service on this address was seen with a known vulnerability. Apply the "
        "vendor's security update now (at once for a flaw known to be exploited, within 14 days "
        "otherwise) and check the host for signs of compromise.",
    },
)

COMPROMISED_HOST = ReportKind(
    alert_type=INCIDENT,
    category="compromised_host",
    severity="critical",
    control=controls.MALWARE_PROTECTION,
    side="src_",
    tag_columns=("infection", "tag"),
    key_parts=("tag", "family"),
    label={"ja": "マルウェア感染の疑い", "en": "Suspected malware infection"},
    remediation={
        "ja": "このアドレスの機器が既知のマルウェアのシンクホールに接続しており、感染している"
        "可能性が高い状態です。時刻とポートを手がかりに（NAT のログ等で）機器を特定して"
        "ネットワークから隔離し、駆除または再構築したうえで、その機器で使われたパスワードを"
        "変更してください。",
        "en": "A device at this address connected to a sinkhole of known malware, so it is "
        "very likely infected. Find the device (the time and port help with NAT logs), isolate "
        "it, clean or rebuild it, and change the passwords used on it.",
    },
)

HONEYPOT_ABUSE = ReportKind(
    alert_type=NETWORK_ABUSE,
    category="honeypot_abuse",
    severity="high",
    control=controls.MALWARE_PROTECTION,
    side="src_",
    tag_columns=("infection", "tag"),
    key_parts=("protocol", "tag"),
    label={"ja": "ハニーポットへの攻撃元", "en": "Attacks seen by honeypots"},
    remediation={
        "ja": "このアドレスの機器がハニーポットに対して攻撃（総当たりログイン、スキャン、"
        "脆弱性を突く試み）を行っていました。他者を攻撃する機器は第三者に乗っ取られていることが"
        "多いため、機器を特定し、侵害を調査して通信を止めてください。",
        "en": "A device at this address attacked honeypots (brute-force logins, scans or "
        "exploit attempts). A device that attacks others is usually under someone else's "
        "control: find it, investigate it for compromise and stop the traffic.",
    },
)

BRUTE_FORCE_SOURCE = ReportKind(
    alert_type=NETWORK_ABUSE,
    category="brute_force_source",
    severity="critical",
    control=controls.MALWARE_PROTECTION,
    side="src_",
    tag_columns=("infection", "tag"),
    key_parts=("protocol", "tag"),
    label={"ja": "総当たり攻撃の送信元", "en": "Source of brute-force attacks"},
    remediation={
        "ja": "このアドレスの機器が SSH や Telnet などへの総当たりログインを繰り返しています。"
        "乗っ取られた機器（初期パスワードのままのルーターや IoT 機器が多い）を特定し、"
        "隔離して初期化し、パスワードを変更してください。",
        "en": "A device at this address keeps trying to log in to other systems (SSH, telnet "
        "and the like) by brute force. Find the hijacked device (often a router or IoT device "
        "with its default password), isolate and reset it, and change its passwords.",
    },
)

DDOS_TARGET = ReportKind(
    alert_type=NETWORK_ABUSE,
    category="ddos_target",
    severity="info",
    control=controls.FIREWALLS,
    side="dst_",
    tag_columns=("infection", "tag"),
    key_parts=("port", "protocol", "tag"),
    label={"ja": "DDoS 攻撃の標的", "en": "Target of a DDoS attack"},
    remediation={
        "ja": "このアドレスが DDoS 攻撃の指令で標的に指定されていました。回線事業者と"
        "DDoS 対策の状況を確認し、攻撃時の連絡手順を整えてください。",
        "en": "This address was named as the target in a DDoS attack command. Check the DDoS "
        "protection in place with your network provider and agree how to reach each other "
        "during an attack.",
    },
)

BLOCKLISTED = ReportKind(
    alert_type=NETWORK_ABUSE,
    category="blocklisted",
    severity="low",
    control=controls.MALWARE_PROTECTION,
    side="",
    tag_columns=("reason", "tag"),
    key_parts=("source",),
    label={"ja": "ブロックリストへの掲載", "en": "Listed on a block list"},
    remediation={
        "ja": "このアドレス（または範囲）が第三者のブロックリストに掲載されています。"
        "スパムやマルウェアの送信が原因であることが多いため、感染した機器や開いたままの"
        "中継・プロキシがないか調べて原因を取り除き、リストの運営者に削除を依頼してください。",
        "en": "This address or range is on a third-party block list, which usually follows spam "
        "or malware sent from it. Find the cause (an infected device, an open relay or proxy), "
        "remove it, then ask the list's owner to delist the address.",
    },
    allows_prefix=True,
)

# Report types by name: exact names first, then patterns ("*" is any text), the most specific
# (longest) pattern first. IPv6 variants (scan6_*, event6_*) carry the same columns.
REPORT_TYPES: dict[str, ReportKind] = {
    "scan_rdp": REMOTE_ACCESS,
    "scan6_rdp": REMOTE_ACCESS,
    "scan_smb": REMOTE_ACCESS,
    "scan6_smb": REMOTE_ACCESS,
    "scan_vnc": REMOTE_ACCESS,
    "scan6_vnc": REMOTE_ACCESS,
    "scan_telnet": REMOTE_ACCESS,
    "scan6_telnet": REMOTE_ACCESS,
    "scan_exchange": VULNERABLE_SERVICE,
    "event4_honeypot_brute_force": BRUTE_FORCE_SOURCE,
    "event6_honeypot_brute_force": BRUTE_FORCE_SOURCE,
    "event4_honeypot_ddos_target": DDOS_TARGET,
    "event6_honeypot_ddos_target": DDOS_TARGET,
    "scan_*_vulnerable": VULNERABLE_SERVICE,
    "scan6_*_vulnerable": VULNERABLE_SERVICE,
    "event4_sinkhole*": COMPROMISED_HOST,
    "event6_sinkhole*": COMPROMISED_HOST,
    "event4_honeypot*": HONEYPOT_ABUSE,
    "event6_honeypot*": HONEYPOT_ABUSE,
    "scan_*": OPEN_SERVICE,
    "scan6_*": OPEN_SERVICE,
    "blocklist*": BLOCKLISTED,
}

_REPORT_TYPE = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
_PATTERNS = sorted(
    (name for name in REPORT_TYPES if "*" in name), key=lambda name: (-len(name), name)
)
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:Z|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII | re.IGNORECASE,
)
# An IPv4 address in its one canonical form (no leading zeros): the common case, checked without
# the cost of ``ipaddress`` (a million-row report spends most of its time on addresses).
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)
_IPV4_MAPPED = bytes(10) + b"\xff\xff"
_ASN = re.compile(r"(?:AS)?(\d{1,10})", re.ASCII | re.IGNORECASE)
_PORT = re.compile(r"\d{1,5}", re.ASCII)


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """One row of a report: where it is in the file, the typed fields of the organisation's
    side, and every column as read (``raw``, keyed by lower-case column name)."""

    line: int
    seen_at: datetime
    ip: str
    port: int | None
    asn: int | None
    hostname: str
    tag: str
    protocol: str
    raw: dict[str, str]


def report_kind(report_type: str) -> ReportKind:
    """The kind of a report type; ``FeedError`` for a name no entry of ``REPORT_TYPES`` fits."""
    name = report_type.strip().lower()
    if _REPORT_TYPE.fullmatch(name):
        if name in REPORT_TYPES:
            return REPORT_TYPES[name]
        for pattern in _PATTERNS:
            if fnmatch.fnmatchcase(name, pattern):
                return REPORT_TYPES[pattern]
    raise FeedError(
        gettext_noop("the report type %(name)s is unknown; known types: %(known)s"),
        name=shown(report_type),
        known=", ".join(sorted(REPORT_TYPES)),
    )


def read_report(
    source: Source,
    report_type: str,
    *,
    source_name: str,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    now: datetime | None = None,
) -> Iterator[ObservationRow | RowError]:
    """The rows of one report. The report type and header are checked before this returns
    (``FeedError``); the rows are read as the iterator is consumed, so a file of any size takes
    constant memory. ``source_name`` (a file name or URL) only goes into the ``FeedError``
    message. A damaged gzip stream or a failed download raises ``FeedError`` mid-way, after
    the rows before it were yielded."""
    kind = report_kind(report_type)
    try:
        records = CsvRecords(source, max_row_bytes=max_row_bytes)
        rows = iter(records)
        first = next(rows, None)
        if first is None:
            raise FeedError(gettext_noop("the file is empty: it has no header line"))
        if isinstance(first, RowError):
            raise header_problem(first)
        columns = header_names(first[1], max_columns=max_columns)
        for required in ("timestamp", kind.ip_column):
            if required not in columns:
                raise FeedError(
                    gettext_noop(
                        "the header has no %(column)s column, which %(report_type)s reports need"
                    ),
                    column=shown(required),
                    report_type=report_type.strip().lower(),
                )
    except FeedError as error:
        raise error.about(source_name) from None
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    return _rows(rows, columns, kind, latest, source_name)


def _rows(rows, columns: list[str], kind: ReportKind, latest: datetime, source_name: str):
    try:
        yield from _checked_rows(rows, columns, kind, latest)
    except FeedError as error:
        raise error.about(source_name) from None


def _checked_rows(rows, columns: list[str], kind: ReportKind, latest: datetime):
    for record in complete_rows(rows, len(columns)):
        if isinstance(record, RowError):
            yield record
            continue
        line, values = record
        raw = dict(zip(columns, values, strict=True))
        try:
            yield _observation(line, raw, kind, latest)
        except _Invalid as invalid:
            yield RowError(line, invalid.template, invalid.params)


class _Invalid(Exception):
    def __init__(self, template: str, **params: object):
        self.template = template
        self.params = params


def _observation(line: int, raw: dict[str, str], kind: ReportKind, latest: datetime):
    tag = ""
    for column in kind.tag_columns:
        tag = raw.get(column, "").strip()
        if tag:
            break
    return ObservationRow(
        line=line,
        seen_at=_timestamp(raw["timestamp"], latest),
        ip=_address(raw[kind.ip_column], kind),
        port=_port(raw, kind.port_column),
        asn=_asn(raw, kind.asn_column),
        hostname=raw.get(kind.hostname_column, "").strip(),
        tag=tag,
        protocol=raw.get("protocol", "").strip().lower(),
        raw=raw,
    )


def parse_timestamp(value: str) -> datetime:
    """A report's timestamp in UTC; ``ValueError`` when it is not one of the accepted forms."""
    match = _TIMESTAMP.fullmatch(value.strip())
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
        zone = UTC
        if sign:
            if int(off_h) >= 24 or int(off_m) >= 60:
                raise ValueError
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(-offset if sign == "-" else offset)
        microsecond = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond, zone
        )
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r}") from None
    return moment.astimezone(UTC)


# Rows of a report share their timestamps (many per second, all within a day), so parsing each
# once saves a tenth of the reading time.
_cached_timestamp = functools.lru_cache(maxsize=4096)(parse_timestamp)


def _timestamp(value: str, latest: datetime) -> datetime:
    if not value.strip():
        raise _Invalid(gettext_noop("the timestamp is empty"))
    try:
        moment = _cached_timestamp(value)
    except ValueError:
        raise _Invalid(
            gettext_noop("the timestamp %(value)s is not a date and time"), value=shown(value)
        ) from None
    if moment > latest:
        raise _Invalid(gettext_noop("the timestamp %(value)s is in the future"), value=shown(value))
    return moment


def normalise_ip(text: str) -> str:
    """An IP address as ``ObservationRow.ip`` holds it: ``ipaddress``'s text form, an
    IPv4-mapped IPv6 address as the IPv4 address it carries; ``ValueError`` for anything else
    (zone ids, brackets, leading zeros, prefixes)."""
    text = text.strip()
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    if "%" in text:  # a zone id ("fe80::1%eth0") names an interface, not an address
        raise ValueError(f"not an IP address: {text!r}")
    if ":" in text:
        # The C library parses and prints IPv6 in RFC 5952's form, as ipaddress does, at a
        # tenth of the cost (half the rows of a mixed report); ipaddress prints the forms with
        # an IPv4 tail ("::192.0.2.1") differently, so those go through it.
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except OSError:
            raise ValueError(f"not an IP address: {text!r}") from None
        if packed.startswith(_IPV4_MAPPED):
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        shown_text = socket.inet_ntop(socket.AF_INET6, packed)
        return str(ipaddress.IPv6Address(packed)) if "." in shown_text else shown_text
    return str(ipaddress.IPv4Address(text))


def _address(value: str, kind: ReportKind) -> str:
    text = value.strip()
    if not text:
        raise _Invalid(gettext_noop("the %(column)s column is empty"), column=kind.ip_column)
    try:
        return normalise_ip(text)
    except ValueError:
        pass
    if kind.allows_prefix and "/" in text and "%" not in text:
        return _prefix(text, kind)
    if kind.allows_prefix:
        raise _Invalid(
            gettext_noop("the %(column)s value %(value)s is not an IP address or prefix"),
            column=kind.ip_column,
            value=shown(value),
        )
    raise _Invalid(
        gettext_noop("the %(column)s value %(value)s is not an IP address"),
        column=kind.ip_column,
        value=shown(value),
    )


def _prefix(text: str, kind: ReportKind) -> str:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _Invalid(
            gettext_noop("the %(column)s value %(value)s is not an IP address or prefix"),
            column=kind.ip_column,
            value=shown(text),
        ) from None
    if str(network.network_address) != str(ipaddress.ip_address(text.split("/", 1)[0])):
        raise _Invalid(
            gettext_noop("the prefix %(value)s has host bits set (the network is %(network)s)"),
            value=shown(text),
            network=str(network),
        )
    widest = WIDEST_PREFIX[network.version]
    if network.prefixlen < widest:
        raise _Invalid(
            gettext_noop("the prefix %(value)s is wider than /%(widest)s"),
            value=shown(text),
            widest=widest,
        )
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def _port(raw: dict[str, str], column: str) -> int | None:
    value = raw.get(column, "").strip()
    if not value:
        return None
    if _PORT.fullmatch(value) and int(value) <= 65535:
        return int(value)
    raise _Invalid(
        gettext_noop("the %(column)s value %(value)s is not a port number (0–65535)"),
        column=column,
        value=shown(raw[column]),
    )


def _asn(raw: dict[str, str], column: str) -> int | None:
    value = raw.get(column, "").strip()
    if not value:
        return None
    match = _ASN.fullmatch(value)
    if match is None or int(match.group(1)) > 4294967295:
        raise _Invalid(
            gettext_noop("the %(column)s value %(value)s is not an AS number"),
            column=column,
            value=shown(raw[column]),
        )
    return int(match.group(1)) or None


def observation_key(report_type: str, row: ObservationRow) -> str:
    """A SHA-256 hex digest of what was observed, without when: the report type, the address
    and the kind's ``key_parts`` (lower-cased, trimmed). The same exposure seen on two days has
    one key; another port, tag or infection has another. Sinkholes and honeypots leave the
    port out: it is the infected device's ephemeral source port, new on every connection."""
    name = report_type.strip().lower()
    kind = report_kind(name)
    fields = {"port": row.port, "protocol": row.protocol, "tag": row.tag}
    parts: list[object] = [name, row.ip]
    for part in kind.key_parts:
        value = fields[part] if part in fields else row.raw.get(part, "")
        parts.append(value.strip().lower() if isinstance(value, str) else value)
    encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
