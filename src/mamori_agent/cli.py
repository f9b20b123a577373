"""``mamori-agent collect`` and ``mamori-agent upload``.

Exit status: 0 done, 1 the work failed (network, server, writing), 2 bad usage. Every failure is
one line on stderr; the token never appears in any output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile

from . import SCHEMA, __version__
from .collect import collect
from .upload import (
    DEFAULT_WAIT,
    UploadError,
    UsageError,
    check_token,
    describe,
    endpoint,
    upload,
    wait_for_evaluation,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
MAX_EVIDENCE_FILE_BYTES = 64 * 1024 * 1024
TOKEN_ENVIRONMENT = "MAMORI_AGENT_TOKEN"  # noqa: S105 - a variable name, not a secret


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        _fail(f"{message} (see {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)


def _fail(message: str) -> None:
    sys.stderr.write("mamori-agent: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mamori-agent",
        description="Collect evidence of this host's security configuration for Mamori.",
    )
    parser.add_argument("--version", action="version", version=f"mamori-agent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    collect = commands.add_parser(
        "collect",
        help="collect evidence (JSON) from this host or a mounted root filesystem",
        description="Collect evidence and print it (or write it to --output).",
    )
    collect.add_argument(
        "--root",
        metavar="DIR",
        help="read a mounted root filesystem or unpacked image instead of the live host; "
        "nothing under DIR is executed",
    )
    collect.add_argument(
        "--output", "-o", metavar="FILE", help="write to FILE (atomically, mode 0600)"
    )

    send = commands.add_parser(
        "upload",
        help="send evidence to the Mamori server",
        description="POST evidence to the server over HTTPS (collects it first unless --file "
        "is given). The token may come from --token, --token-file or the environment "
        f"variable {TOKEN_ENVIRONMENT}, so that it does not show in the process list.",
    )
    send.add_argument(
        "--url",
        required=True,
        help="the server (https://mamori.example.jp) or its evidence endpoint",
    )
    send.add_argument("--token", help="the organisation's agent token")
    send.add_argument("--token-file", metavar="FILE", help="read the token from FILE")
    send.add_argument("--file", metavar="EVIDENCE", help="upload this evidence file")
    send.add_argument("--root", metavar="DIR", help="collect from DIR (see collect --root)")
    send.add_argument("--ca-bundle", metavar="PEM", help="trust the CA certificates in PEM")
    send.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="network timeout (default 60)"
    )
    send.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        metavar="S",
        help="how long to wait for the server to evaluate the evidence it accepted, polling its "
        f"status (default {DEFAULT_WAIT:g}; 0: do not wait)",
    )
    return parser


def _check_root(root: str | None) -> None:
    if root is None:
        return
    if not os.path.exists(root):
        raise UsageError(f"--root {root}: no such directory")
    if not os.path.isdir(root):
        raise UsageError(f"--root {root}: not a directory")


def _check_output(output: str) -> None:
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UsageError(f"--output {output}: directory {directory} does not exist")
    if os.path.isdir(output):
        raise UsageError(f"--output {output}: is a directory")


def write_atomically(path: str, data: bytes) -> None:
    """Readers see the old file or the complete new one, never a half-written one."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".mamori-evidence-", dir=directory)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _collect_json(root: str | None) -> bytes:
    evidence = collect(root)
    return (json.dumps(evidence, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _read_token(args: argparse.Namespace) -> str:
    if args.token:
        return check_token(args.token)
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                return check_token(handle.readline())
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "unreadable"
            raise UsageError(f"--token-file {args.token_file}: {reason.lower()}") from None
    if os.environ.get(TOKEN_ENVIRONMENT):
        return check_token(os.environ[TOKEN_ENVIRONMENT])
    raise UsageError(f"no token: give --token, --token-file or set {TOKEN_ENVIRONMENT}")


def _read_evidence_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_EVIDENCE_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"--file {path}: {(error.strerror or 'unreadable').lower()}") from None
    if len(data) > MAX_EVIDENCE_FILE_BYTES:
        raise UsageError(f"--file {path}: larger than {MAX_EVIDENCE_FILE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"--file {path}: not JSON") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise UsageError(f"--file {path}: not a {SCHEMA} evidence document")
    return data


def _run_collect(args: argparse.Namespace) -> int:
    _check_root(args.root)
    if args.output:
        _check_output(args.output)
    data = _collect_json(args.root)
    if args.output:
        try:
            write_atomically(args.output, data)
        except OSError as error:
            _fail(f"cannot write {args.output}: {(error.strerror or str(error)).lower()}")
            return EXIT_FAILURE
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return EXIT_OK


def _run_upload(args: argparse.Namespace) -> int:
    endpoint(args.url)  # refuse a bad URL before collecting anything
    token = _read_token(args)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if not 0 <= args.wait <= 24 * 3600:
        raise UsageError("--wait must be between 0 and 86400 seconds")
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    if args.file:
        if args.root:
            raise UsageError("give either --file or --root, not both")
        data = _read_evidence_file(args.file)
    else:
        _check_root(args.root)
        data = _collect_json(args.root)
    try:
        answer = upload(args.url, token, data, ca_bundle=args.ca_bundle, timeout=args.timeout)
        answer = wait_for_evaluation(
            args.url,
            token,
            answer,
            ca_bundle=args.ca_bundle,
            timeout=args.timeout,
            wait=args.wait,
        )
    except UploadError as error:
        _fail(f"upload failed: {error}")
        return EXIT_FAILURE
    sys.stdout.write("mamori-agent: " + describe(answer) + "\n")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "collect":
            return _run_collect(args)
        return _run_upload(args)
    except UsageError as error:
        _fail(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as error:  # never a traceback for the operator
        _fail(f"internal error: {error.__class__.__name__}: {error}")
        return EXIT_FAILURE
