"""Sending evidence to the Mamori server: ``POST /api/evidence/``, gzip-compressed, over HTTPS with
certificate verification.

The server stores the evidence and answers ``202 Accepted`` with a status URL (``Location``, and
``status_url`` in the body); a worker evaluates it. ``wait_for_evaluation`` polls that URL (on
the same server only, so the token goes nowhere else) until the evaluation is done or failed,
for at most ``--wait`` seconds. Servers before that answered ``201`` (or ``200`` for a
duplicate) with the verdicts at once; those answers are final as they are.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

ENDPOINT_PATH = "/api/evidence/"
LOOPBACK_HOSTS = frozenset(("127.0.0.1", "localhost", "::1"))
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_WAIT = 120.0  # seconds to wait for the evaluation of an accepted upload
POLL_INTERVAL = 2.0  # unless the server's Retry-After says otherwise (kept within the bounds)
POLL_BOUNDS = (0.5, 10.0)
# socket.timeout only became an alias of TimeoutError in Python 3.10.
_TIMEOUTS = (TimeoutError, socket.timeout)
_TOKEN = re.compile(r"^[\x21-\x7e]{1,512}$")


class UsageError(Exception):
    """A bad argument: exit status 2."""


class UploadError(Exception):
    """The upload failed: exit status 1. The message is one line and never contains the
    token. ``transient``: a network error or a server error (5xx), worth trying again."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def endpoint(url: str) -> str:
    """The evidence endpoint for ``url``: a server's base URL gets ``/api/evidence/`` appended;
    a URL with a path is used as it is."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UsageError(f"--url is not a valid URL: {error}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError("--url must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UsageError("--url must not contain credentials; use --token")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise UsageError(
            "--url: plain http:// is refused except for 127.0.0.1, localhost and ::1; use https://"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path if parts.path not in ("", "/") else ENDPOINT_PATH
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def check_token(token: str) -> str:
    token = token.strip()
    if not _TOKEN.match(token):
        raise UsageError("the token is empty or contains spaces or control characters")
    return token


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would resend the token somewhere else (maybe over plain HTTP): refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _server_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        body = b""
    detail = None
    try:
        payload = json.loads(body.decode("utf-8"))
        if isinstance(payload, dict) and "detail" in payload:
            detail = payload["detail"]
            if not isinstance(detail, str):
                detail = json.dumps(detail, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        pass
    if detail is None:
        detail = error.reason if isinstance(error.reason, str) else ""
    return _one_line(detail or "no reason given")


def _network_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "TLS certificate verification failed: " + _one_line(
            reason.verify_message or str(reason)
        )
    if isinstance(reason, ssl.SSLError):
        return "TLS error: " + _one_line(reason.reason or str(reason))
    if isinstance(reason, _TIMEOUTS):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host name could not be resolved"
    if isinstance(reason, OSError) and reason.strerror:
        return _one_line(reason.strerror.lower())
    return _one_line(str(reason))


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(
            f"--ca-bundle {ca_bundle}: not a readable PEM CA bundle ({error})"
        ) from None


def _opener(target: str, ca_bundle: str | None):
    handlers: list = [urllib.request.HTTPSHandler(context=ssl_context(ca_bundle)), _NoRedirects()]
    if urllib.parse.urlsplit(target).hostname in LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback via a proxy
    return urllib.request.build_opener(*handlers)


def _exchange(opener, request, timeout: float) -> tuple:
    """Send; returns (status, headers, body) or raises UploadError with one line."""
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            location = error.headers.get("Location", "")
            raise UploadError(
                f"the server redirected (HTTP {error.code}) to {_one_line(location)}; "
                "give that URL with --url"
            ) from None
        raise UploadError(
            f"HTTP {error.code}: {_server_detail(error)}", transient=error.code >= 500
        ) from None
    except urllib.error.URLError as error:
        raise UploadError(_network_reason(error.reason, timeout), transient=True) from None
    except (OSError, http.client.HTTPException) as error:  # timeouts included
        raise UploadError(_network_reason(error, timeout), transient=True) from None


def _json_answer(status: int, body: bytes) -> dict:
    try:
        answer = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UploadError(f"HTTP {status}: the server's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise UploadError(f"HTTP {status}: unexpected answer from the server")
    answer.setdefault("_status", status)
    return answer


def _headers(token: str) -> dict:
    return {
        "Accept": "application/json",
        "Authorization": f"Token {token}",
        "User-Agent": "mamori-agent",
    }


def upload(
    url: str, token: str, evidence_json: bytes, *, ca_bundle: str | None, timeout: float
) -> dict:
    """POST the evidence; returns the server's JSON answer (with ``_status``, the HTTP status,
    ``_location``, the Location header if any, and ``_retry_after``, when to ask again).
    Raises UploadError."""
    target = endpoint(url)
    request = urllib.request.Request(  # noqa: S310 - endpoint() allows https and loopback http
        target,
        data=gzip.compress(evidence_json, mtime=0),
        method="POST",
        headers={
            **_headers(token),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    status, headers, body = _exchange(_opener(target, ca_bundle), request, timeout)
    answer = _json_answer(status, body)
    answer.setdefault("_location", headers.get("Location") or "")
    answer.setdefault("_retry_after", _retry_after(headers, POLL_INTERVAL))
    return answer


def status_url(url: str, answer: dict) -> str:
    """The URL to poll for an accepted upload, on the server uploaded to. A status URL that
    points elsewhere is refused: the token is only ever sent to the server given with --url."""
    target = endpoint(url)
    given = answer.get("status_url") or answer.get("_location") or ""
    if not isinstance(given, str) or not given:
        raise UploadError(f"HTTP {answer.get('_status')}: the server gave no status URL")
    resolved = urllib.parse.urljoin(target, given.strip())
    ours, theirs = urllib.parse.urlsplit(target), urllib.parse.urlsplit(resolved)
    try:
        same = (ours.scheme, ours.hostname, ours.port) == (
            theirs.scheme,
            theirs.hostname,
            theirs.port,
        )
    except ValueError:
        same = False
    if not same:
        raise UploadError(
            f"the server's status URL {_one_line(resolved, 200)} is not on {ours.netloc}; "
            "not sending the token there"
        )
    return resolved


def _retry_after(headers, default: float) -> float:
    try:
        seconds = float(headers.get("Retry-After", default))
    except (TypeError, ValueError):
        seconds = default
    low, high = POLL_BOUNDS
    return min(max(seconds, low), high)


def wait_for_evaluation(
    url: str,
    token: str,
    answer: dict,
    *,
    ca_bundle: str | None,
    timeout: float,
    wait: float,
    sleep=time.sleep,
    clock=time.monotonic,
) -> dict:
    """Poll the status of an accepted upload until it is ``done`` or ``failed``, for at most
    ``wait`` seconds; returns the last status (still ``pending`` when the wait ran out). An
    answer that is already final (``201``/``200`` from older servers, or a server that
    evaluated at once) is returned as it is. Raises UploadError for a failed evaluation."""
    if answer.get("_status") != 202 or answer.get("status") not in (None, "pending"):
        return _final(answer)
    poll = status_url(url, answer)
    opener = _opener(poll, ca_bundle)
    deadline = clock() + max(wait, 0.0)
    interval = answer.get("_retry_after") or POLL_INTERVAL
    current = answer
    while clock() < deadline:
        sleep(min(interval, max(deadline - clock(), 0.0)))
        request = urllib.request.Request(poll, method="GET", headers=_headers(token))  # noqa: S310
        try:
            status, headers, body = _exchange(opener, request, timeout)
        except UploadError as error:
            if error.transient:  # a server restarting, a passing network error: try again
                continue
            raise
        current = {**_json_answer(status, body), "_status": status, "_accepted": 202}
        current.setdefault("duplicate", answer.get("duplicate"))
        if current.get("status") != "pending":
            return _final(current)
        interval = _retry_after(headers, POLL_INTERVAL)
    current = {**current, "status": "pending", "_waited": wait}
    current.setdefault("status_url", poll)
    return current


def _final(answer: dict) -> dict:
    if answer.get("status") == "failed":
        code = answer.get("code") or "failed"
        detail = _one_line(answer.get("detail") or "no reason given")
        raise UploadError(f"the server refused the evidence ({code}): {detail}")
    return answer


def describe(answer: dict) -> str:
    """One line for the operator."""
    status = answer.get("_accepted") or answer.get("_status")
    duplicate = bool(answer.get("duplicate"))
    state = answer.get("status")
    if state == "pending":
        waited = answer.get("_waited")
        line = (
            f"upload {answer.get('upload')} accepted (HTTP {status}); "
            + (f"still being evaluated after {waited:g} s" if waited else "being evaluated")
            + f"; status: {answer.get('status_url')}"
        )
        return _one_line(line, 1000)
    if state == "done":
        what = "already received (duplicate)" if duplicate else "stored and evaluated"
    else:  # a server that answers 201/200 with the verdicts
        what = "already received (duplicate)" if duplicate else "stored"
    line = (
        f"evidence {answer.get('evidence')} for host {answer.get('host')}: {what} (HTTP {status})"
    )
    controls = answer.get("controls")
    if isinstance(controls, dict) and controls:
        line += "; " + ", ".join(f"{key}={value}" for key, value in sorted(controls.items()))
    return _one_line(line, 1000)
