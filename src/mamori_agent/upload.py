"""Sending evidence to the Mamori server: ``POST /api/evidence/``, gzip-compressed, over HTTPS with
certificate verification."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

ENDPOINT_PATH = "/api/evidence/"
LOOPBACK_HOSTS = frozenset(("127.0.0.1", "localhost", "::1"))
MAX_RESPONSE_BYTES = 1024 * 1024
# socket.timeout only became an alias of TimeoutError in Python 3.10.
_TIMEOUTS = (TimeoutError, socket.timeout)
_TOKEN = re.compile(r"^[\x21-\x7e]{1,512}$")


class UsageError(Exception):
    """A bad argument: exit status 2."""


class UploadError(Exception):
    """The upload failed: exit status 1. The message is one line and never contains the
    token."""


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


def upload(
    url: str, token: str, evidence_json: bytes, *, ca_bundle: str | None, timeout: float
) -> dict:
    """POST the evidence; returns the server's JSON answer. Raises UploadError."""
    target = endpoint(url)
    handlers: list = [urllib.request.HTTPSHandler(context=ssl_context(ca_bundle)), _NoRedirects()]
    if urllib.parse.urlsplit(target).hostname in LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback via a proxy
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(  # noqa: S310 - endpoint() allows https and loopback http
        target,
        data=gzip.compress(evidence_json, mtime=0),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json",
            "Authorization": f"Token {token}",
            "User-Agent": "mamori-agent",
        },
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            body = response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            location = error.headers.get("Location", "")
            raise UploadError(
                f"the server redirected (HTTP {error.code}) to {_one_line(location)}; "
                "give that URL with --url"
            ) from None
        raise UploadError(f"HTTP {error.code}: {_server_detail(error)}") from None
    except urllib.error.URLError as error:
        raise UploadError(_network_reason(error.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as error:  # timeouts included
        raise UploadError(_network_reason(error, timeout)) from None
    try:
        answer = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UploadError(f"HTTP {status}: the server's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise UploadError(f"HTTP {status}: unexpected answer from the server")
    answer.setdefault("_status", status)
    return answer


def describe(answer: dict) -> str:
    """One line for the operator."""
    status = answer.get("_status")
    duplicate = bool(answer.get("duplicate"))
    line = (
        f"evidence {answer.get('evidence')} for host {answer.get('host')}: "
        f"{'already received (duplicate)' if duplicate else 'stored'} (HTTP {status})"
    )
    controls = answer.get("controls")
    if isinstance(controls, dict) and controls:
        line += "; " + ", ".join(f"{key}={value}" for key, value in sorted(controls.items()))
    return _one_line(line, 1000)
