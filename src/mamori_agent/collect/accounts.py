"""The ``accounts`` section: local users from passwd and shadow. Password hashes are classified,
never copied."""

from __future__ import annotations

from ..context import Section
from ..rootfs import FileError

USER_DATABASE = "/etc/passwd"
SHADOW = "/etc/shadow"
GROUP = "/etc/group"
_MAX_ID = 2**32 - 1
_NO_LOGIN_SHELLS = frozenset(("nologin", "false", "sync", "shutdown", "halt"))
_WEAK_SCHEMES = frozenset(("md5", "des", "unknown"))
_SCHEMES = (
    ("$gy$", "gost-yescrypt"),
    ("$y$", "yescrypt"),
    ("$7$", "scrypt"),
    ("$6$", "sha512"),
    ("$5$", "sha256"),
    ("$2a$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2x$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$1$", "md5"),
    ("$md5", "md5"),
)


def hash_scheme(field: str) -> str:
    for prefix, scheme in _SCHEMES:
        if field.startswith(prefix):
            return scheme
    if len(field) == 13 or field.startswith("_"):
        return "des"  # traditional or BSDi extended DES crypt
    return "unknown"


def classify_password(field: str | None) -> tuple[str | None, str | None]:
    """(password state, hash scheme) of a shadow (or legacy passwd) password field."""
    if field is None:
        return None, None
    if field == "":
        return "empty", None
    if field.startswith(("!", "*")):
        return "locked", None
    return "hash", hash_scheme(field)


def parse_passwd(text: str) -> tuple[list[dict], list[str]]:
    users, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue  # NIS compat entries (+/-) are not local accounts
        fields = line.split(":")
        if len(fields) != 7 or not fields[2].isdigit() or not fields[3].isdigit():
            problems.append(f"line {number}: malformed entry")
            continue
        name, legacy_field, uid, gid, _gecos, home, shell = fields
        if int(uid) > _MAX_ID or int(gid) > _MAX_ID:
            problems.append(f"line {number}: uid or gid out of range")
            continue
        users.append(
            {
                "name": name,
                "uid": int(uid),
                "gid": int(gid),
                "shell": shell,
                "home": home,
                "login_shell": (shell.rsplit("/", 1)[-1] not in _NO_LOGIN_SHELLS),
                "_legacy_field": legacy_field,
            }
        )
    return users, problems


def parse_shadow(text: str) -> dict[str, str]:
    fields_by_user = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 2 and fields[0]:
            fields_by_user.setdefault(fields[0], fields[1])
    return fields_by_user


def parse_group(text: str) -> dict[str, dict]:
    """name → {gid, members}."""
    groups = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 4 or not fields[2].isdigit():
            continue
        members = [member for member in fields[3].split(",") if member]
        groups.setdefault(fields[0], {"gid": int(fields[2]), "members": members})
    return groups


def collect_accounts(section: Section) -> dict:
    ctx = section.ctx
    errors_before = len(section.errors)
    passwd = section.read_text(USER_DATABASE)
    if passwd is None:
        if len(section.errors) == errors_before:
            section.error(USER_DATABASE, "not found")
        section.unknown(USER_DATABASE, "the user database could not be read")
        ctx.facts["users"] = None
        return section.finish(
            {
                "users": None,
                "uid0_besides_root": None,
                "empty_password": None,
                "weak_hash": None,
                "locked": None,
            }
        )
    users, problems = parse_passwd(passwd)
    for problem in problems:
        section.error(USER_DATABASE, problem)
    try:
        shadow: dict[str, str] | None = parse_shadow(section.fs.read_text(SHADOW))
    except FileError as error:
        shadow = {} if error.missing else None
        if not error.missing:
            section.file_error(error)
    by_state: dict[str | None, list[str]] = {}
    weak: list[str] = []
    for user in users:
        legacy_field = user.pop("_legacy_field")
        if shadow is None:
            state, scheme = None, None
        elif user["name"] in shadow:
            state, scheme = classify_password(shadow[user["name"]])
        elif legacy_field == "x":
            state, scheme = "none", None
        else:  # a password kept in passwd itself (no shadow entry)
            state, scheme = classify_password(legacy_field)
        user["password"] = state
        user["hash_scheme"] = scheme
        user["weak_hash"] = None if state is None else scheme in _WEAK_SCHEMES
        by_state.setdefault(state, []).append(user["name"])
        if user["weak_hash"]:
            weak.append(user["name"])
    ctx.facts["users"] = users
    known = shadow is not None
    return section.finish(
        {
            "users": users,
            "uid0_besides_root": [
                u["name"] for u in users if u["uid"] == 0 and u["name"] != "root"
            ],
            "empty_password": by_state.get("empty", []) if known else None,
            "weak_hash": weak if known else None,
            "locked": by_state.get("locked", []) if known else None,
        }
    )
