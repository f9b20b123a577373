"""The ``authentication`` section: PAM account lockout and password quality, login.defs."""

from __future__ import annotations

import re

from ..context import Section
from .util import key_values, parse_int

PAM_STACKS = ("/etc/pam.d/common-auth", "/etc/pam.d/system-auth", "/etc/pam.d/password-auth")
PAM_PASSWORD_STACKS = (
    "/etc/pam.d/common-password",
    "/etc/pam.d/system-auth",
    "/etc/pam.d/password-auth",
    "/etc/pam.d/passwd",
)
FAILLOCK_CONF = "/etc/security/faillock.conf"
PWQUALITY_CONF = "/etc/security/pwquality.conf"
LOGIN_DEFS = "/etc/login.defs"

# Built-in defaults of the modules (pam_faillock(8), pwquality.conf(5), pam_cracklib(8)):
# what applies when the module is in the stack but nothing sets the value.
FAILLOCK_DEFAULTS = {"deny": 3, "unlock_time": 600, "fail_interval": 900}
PWQUALITY_DEFAULTS = {"minlen": 8, "dictcheck": True, "enforce_for_root": False}
CRACKLIB_DEFAULTS = {"minlen": 9, "dictcheck": True, "enforce_for_root": False}


class PamLine:
    def __init__(self, kind: str, module: str, arguments: dict[str, str], path: str) -> None:
        self.kind = kind
        self.module = module
        self.arguments = arguments
        self.path = path


def parse_pam(text: str, path: str) -> list[PamLine]:
    """``type control module [arguments]`` lines; ``[...]`` controls may contain spaces."""
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        line = re.sub(r"\[[^\]]*\]", "[control]", line)
        fields = line.split()
        if len(fields) < 3:
            continue
        kind = fields[0].lstrip("-")
        module = fields[2].rsplit("/", 1)[-1]
        arguments = {}
        for argument in fields[3:]:
            key, _, value = argument.partition("=")
            arguments[key] = value
        lines.append(PamLine(kind, module, arguments, path))
    return lines


def _stack(section: Section, paths: tuple[str, ...]) -> list[PamLine]:
    lines = []
    for path in paths:
        text = section.read_text(path, limit=1024 * 1024)
        if text is not None:
            lines.extend(parse_pam(text, path))
    return lines


def _conf_values(section: Section, paths: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Values from ``key = value`` files read in order (later ones win), and where each came
    from."""
    values, sources = {}, {}
    for path in paths:
        text = section.read_text(path, limit=1024 * 1024)
        if text is None:
            continue
        for key, value in key_values(text).items():
            values[key] = value
            sources[key] = path
    return values, sources


def _faillock(section: Section, stack: list[PamLine]) -> dict:
    modules = [line for line in stack if line.module == "pam_faillock.so"]
    if not modules:
        return {
            "configured": False,
            "deny": None,
            "unlock_time": None,
            "fail_interval": None,
            "source": None,
            "defaults_applied": [],
        }
    conf, conf_sources = _conf_values(section, [FAILLOCK_CONF])
    result: dict = {"configured": True, "source": None, "defaults_applied": []}
    for key in ("deny", "unlock_time", "fail_interval"):
        value, source = None, None
        for line in modules:  # module arguments win over faillock.conf
            if key in line.arguments:
                value, source = line.arguments[key], line.path
        if value is None and key in conf:
            value, source = conf[key], conf_sources[key]
        number = parse_int(value)
        if key == "unlock_time" and value is not None and value.strip() == "never":
            number = 0  # never unlocked automatically
        if number is None:
            number = FAILLOCK_DEFAULTS[key]
            result["defaults_applied"].append(key)
            source = source or "default"
        result[key] = number
        if key == "deny":
            result["source"] = source
    return result


def _tally2(stack: list[PamLine]) -> dict:
    modules = [line for line in stack if line.module in ("pam_tally2.so", "pam_tally.so")]
    if not modules:
        return {"configured": False, "deny": None, "source": None}
    deny, source = None, None
    for line in modules:
        if "deny" in line.arguments:
            deny, source = parse_int(line.arguments["deny"]), line.path
    return {"configured": True, "deny": deny, "source": source or modules[0].path}


def _pwquality(section: Section, stack: list[PamLine]) -> dict:
    modules = [
        line
        for line in stack
        if line.kind == "password" and line.module in ("pam_pwquality.so", "pam_cracklib.so")
    ]
    if not modules:
        return {
            "configured": False,
            "minlen": None,
            "dictcheck": None,
            "enforce_for_root": None,
            "source": None,
            "defaults_applied": [],
        }
    module = modules[0]
    cracklib = module.module == "pam_cracklib.so"
    paths = [] if cracklib else [PWQUALITY_CONF, *section.glob(PWQUALITY_CONF + ".d/*.conf")]
    conf, conf_sources = _conf_values(section, paths)
    defaults = CRACKLIB_DEFAULTS if cracklib else PWQUALITY_DEFAULTS
    result: dict = {"configured": True, "defaults_applied": []}
    arguments = module.arguments
    minlen = parse_int(arguments.get("minlen"))
    source = module.path if minlen is not None else None
    if minlen is None and "minlen" in conf:
        minlen, source = parse_int(conf["minlen"]), conf_sources["minlen"]
    if minlen is None:
        minlen, source = defaults["minlen"], "default"
        result["defaults_applied"].append("minlen")
    result["minlen"] = minlen
    result["source"] = source
    if cracklib:
        result["dictcheck"] = True  # pam_cracklib always checks the dictionary
    else:
        dictcheck = parse_int(arguments.get("dictcheck", conf.get("dictcheck")))
        if dictcheck is None:
            result["dictcheck"] = defaults["dictcheck"]
            result["defaults_applied"].append("dictcheck")
        else:
            result["dictcheck"] = dictcheck != 0
    enforce = "enforce_for_root" in arguments or "enforce_for_root" in conf
    result["enforce_for_root"] = enforce
    return result


def _login_defs(section: Section) -> dict:
    text = section.read_text(LOGIN_DEFS, limit=1024 * 1024)
    if text is None:
        return {"pass_min_len": None, "encrypt_method": None}
    values = key_values(text, separator=None)
    method = values.get("encrypt_method")
    return {
        "pass_min_len": parse_int(values.get("pass_min_len")),
        "encrypt_method": method.split()[0] if method else None,
    }


def collect_authentication(section: Section) -> dict:
    auth_stack = _stack(section, PAM_STACKS)
    password_stack = _stack(section, PAM_PASSWORD_STACKS)
    return section.finish(
        {
            "faillock": _faillock(section, auth_stack),
            "tally2": _tally2(auth_stack),
            "pwquality": _pwquality(section, password_stack),
            "login_defs": _login_defs(section),
        }
    )
