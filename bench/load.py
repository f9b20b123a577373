"""Load test of the deployed stack (deploy/, started by bench/stack.py): nginx with TLS in front
of gunicorn, a Celery worker and beat, PostgreSQL and Redis, all on loopback.

Concurrent clients for a bounded time (100 clients for 60 s by default), each one of:

- **agents** posting evidence with an agent token, one host each, a fresh collection every
  ``--agent-interval`` seconds (10; their timers spread over the interval); an answer of 202 is followed to its status address until the
  evaluation is done (the time from acceptance to done is reported), 200/201 were evaluated
  in the request;
- **verifiers** reading ``/verify/<number>`` of random certificates, together offering
  ``--verify-rate`` requests a second (400; 0: back to back), driven by
  ``wrk`` (a load generator in C: Python clients would spend a core of the two making requests,
  ``--python-verifiers`` uses them anyway);
- **applicants** reading their pages with a logged-in session, pausing ``--think`` seconds on
  average between pages as people do (0: back to back);
- one **assessor** deciding prepared assessments (pass) through the API, one every
  ``--decision-interval`` seconds, so decisions, certificates and their PDFs happen under load.

Beat sends expiry reminders every 5 s; certificates come due in three waves during the run.
Afterwards the script waits for the background work to settle and checks that every accepted
upload, decision, certificate PDF and reminder is there exactly once, and that
``mamori audit verify`` passes. It prints p50/p99 per kind, requests per second and every
answer that was not 2xx/3xx (and every request that got no answer).

``--chaos`` also, during the run: kills a gunicorn worker (SIGKILL; the master replaces it),
kills the Celery worker with SIGKILL (the supervisor restarts it, as systemd's Restart=always
does), restarts Redis and restarts PostgreSQL, the way the Makefile's ``services`` target starts
them. Those servers are shared with anything else on this machine: run it as root, and only
where nothing else depends on them.

Every request goes to 127.0.0.1; the run stops by itself. The database named in
``DATABASE_URL`` (default ``mamori_bench_load``) is dropped and recreated, so its name must
contain "bench". See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.stack import BIN, PRIVATE_NAMES, PRIVATE_PREFIXES, Stack  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mamori_bench_load"
RESULTS_FILE = ROOT / "bench" / "results" / "load.json"
REMINDER_INTERVAL = 5
EVALUATION_DEADLINE = 60.0
# Long enough for the outbox to hand over again what a restarted broker lost
# (MAMORI_OUTBOX_REDELIVER_SECONDS, 150 s, then the next delivery round).
SETTLE_SECONDS = 300.0
APPLICANT_PAGES = ("/", "/assessments/{assessment}/", "/hosts/", "/certificates/{certificate}/")


# --- what a run records ---------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    status: int | str  # the HTTP status, or the exception's name when there was no answer
    seconds: float
    at: float
    detail: str = ""


@dataclass
class Upload:
    hostname: str
    collected_at: str
    accepted_at: float
    status: int
    done_after: float | None = None
    status_url: str | None = None


@dataclass
class Run:
    started: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    decisions: dict[int, int | str] = field(default_factory=dict)
    due_certificates: set[str] = field(default_factory=set)
    chaos: list[tuple[float, str]] = field(default_factory=list)
    pollers: list[asyncio.Task] = field(default_factory=list)
    elapsed: float = 0.0
    wrk: WrkFigures | None = None  # the verifiers' figures when wrk drove them

    def record(self, kind: str, status, started: float, detail: str = "") -> None:
        self.samples.append(
            Sample(kind, status, time.monotonic() - started, started - self.started, detail)
        )


# --- set-up ---------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (100)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--agents", type=float, default=0.2, help="share of agent clients")
    parser.add_argument("--verifiers", type=float, default=0.4, help="share of /verify clients")
    # An agent reports once a day in production; 20 agents every 10 s are 2 uploads a second,
    # the rate of a fleet of about 170,000 hosts.
    parser.add_argument("--agent-interval", type=float, default=10.0)
    # People read a page before they open the next one; 0 makes them click back to back.
    parser.add_argument("--think", type=float, default=2.0, help="applicants' mean pause (s)")
    parser.add_argument("--decisions", type=int, default=20, help="assessments to decide")
    parser.add_argument("--decision-interval", type=float, default=2.0)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--folder", type=Path, default=ROOT / "var" / "bench-load")
    parser.add_argument("--chaos", action="store_true", help="kill and restart things meanwhile")
    parser.add_argument(
        "--python-verifiers", action="store_true", help="verifiers in Python instead of wrk"
    )
    # Scripts and QR scanners checking certificates: together they ask this many pages a second
    # (each waits its share between requests); 0 sends them back to back, which leaves nothing
    # of the two cores to anyone else.
    parser.add_argument("--verify-rate", type=float, default=400.0, help="verifiers' req/s")
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.clients <= 1000 or not 1 <= arguments.duration <= 600:
        parser.error("--clients must be 1..1000 and --duration 1..600 seconds")
    return arguments


def configure(stack: Stack) -> None:
    """This process works on the stack's database, files and secret key (its sessions must be
    the stack's), with tasks going to the stack's broker."""
    for name in list(os.environ):
        if name.startswith(PRIVATE_PREFIXES) or name in PRIVATE_NAMES:
            del os.environ[name]
    os.environ.update(stack.environment_file())
    os.environ["DJANGO_SETTINGS_MODULE"] = "mamori.settings"
    import django

    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or "bench" not in database["NAME"]:
        sys.exit(
            f"Refusing database {database['NAME']!r}: the load test drops and recreates a "
            "PostgreSQL database whose name contains 'bench'."
        )
    import psycopg
    from psycopg import sql

    params = {
        "dbname": "postgres",
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as admin:
        name = sql.Identifier(database["NAME"])
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))


@dataclass
class Fixture:
    numbers: list[str]
    applicants: list[tuple[str, dict[str, str]]]  # session key, page arguments
    agent_tokens: list[str]
    assessor_token: str
    to_decide: list[int]
    reminder_waves: list[list[int]]


def build(arguments: argparse.Namespace, clients: dict[str, int]) -> Fixture:
    """Migrate, load the catalogues and the vendored advisories, then the data the clients
    use, through the real services."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from tests.certificates import certificate_expiring, days_from_today
    from tests.conftest import World, api_token, make_user

    from mamori.accounts.models import TokenKind
    from mamori.catalogue.services import load_bundled
    from mamori.organisations.models import Category, Organisation, Role

    call_command("migrate", interactive=False, verbosity=0)
    load_bundled()
    call_command(
        "advisories",
        "import",
        str(ROOT / "tests" / "data" / "osv" / "debian12"),
        str(ROOT / "tests" / "data" / "kev" / "known_exploited_vulnerabilities.json"),
        "--quiet",
        stdout=open(os.devnull, "w"),  # noqa: SIM115
    )
    world = World()
    organisations = []
    # The first organisations have an assessment to decide; the others a certificate each
    # (a decision would renew a certificate, and a renewed one is rightly never reminded).
    certified = max(clients["applicants"], 30)
    for index in range(arguments.decisions + certified):
        organisation = Organisation.objects.create(
            name_ja=f"負荷試験銀行{index}（架空）",
            name_en=f"Load Test Bank {index} (fictitious)",
            category=Category.FINANCIAL_INSTITUTION,
        )
        admin = make_user(f"load-admin-{index}", organisation, Role.APPLICANT_ADMIN)
        organisations.append((organisation, admin))

    # Assessments answered and marked, for the assessor to decide during the run.
    to_decide = []
    for organisation, admin in organisations[: arguments.decisions]:
        to_decide.append(world.mark_all(world.submitted(organisation=organisation, admin=admin)).pk)

    # Certificates to verify, and for reminders: not due now, due (30 days left) in waves.
    certificates = [
        certificate_expiring(world, organisation, days_from_today(200))
        for organisation, _admin in organisations[arguments.decisions :]
    ]
    waves = [[c.pk for c in certificates[start::3]] for start in range(3)]

    applicants = []
    holders = organisations[arguments.decisions :]
    for (_organisation, admin), certificate in zip(holders, certificates, strict=True):
        if len(applicants) == clients["applicants"]:
            break
        session = SessionStore()
        session[SESSION_KEY] = str(admin.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
        session.create()
        pages = {"assessment": str(certificate.assessment_id), "certificate": certificate.number}
        applicants.append((session.session_key, pages))
    agent_tokens = [
        api_token(admin, organisation, kind=TokenKind.AGENT)
        for organisation, admin in (organisations * clients["agents"])[: clients["agents"]]
    ]
    return Fixture(
        numbers=[c.number for c in certificates],
        applicants=applicants,
        agent_tokens=agent_tokens,
        assessor_token=api_token(world.assessor, world.body),
        to_decide=to_decide,
        reminder_waves=waves,
    )


class EvidenceMaker:
    """Agent evidence: the Debian 12 host of the test data with 712 packages, serialised
    once; each upload gets its own host name and collection time."""

    def __init__(self) -> None:
        from tests.evaluation.factory import debian12_host

        document = debian12_host()
        document["host"].update(hostname="@HOST@", machine_id=None, fqdn="@HOST@.example.jp")
        document["collected_at"] = "@AT@"
        self.template = json.dumps(document).encode()

    def body(self, hostname: str, collected_at: str) -> bytes:
        raw = self.template.replace(b"@HOST@", hostname.encode()).replace(
            b"@AT@", collected_at.encode()
        )
        return gzip.compress(raw, compresslevel=1)


# --- the clients ----------------------------------------------------------------------------


def client_for(stack: Stack, **options):
    import httpx

    return httpx.AsyncClient(
        base_url=stack.site_url,
        verify=stack.tls_context(),
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
        follow_redirects=False,
        **options,
    )


async def timed(run: Run, kind: str, call) -> object | None:
    started = time.monotonic()
    try:
        answer = await call()
    except Exception as exc:  # no answer at all: recorded, never fatal to the run
        run.record(kind, type(exc).__name__, started, str(exc)[:200])
        return None
    detail = "" if answer.status_code < 400 else answer.text[:200]
    run.record(kind, answer.status_code, started, detail)
    return answer


async def verifier(stack: Stack, run: Run, numbers: list[str], deadline: float) -> None:
    async with client_for(stack) as client:
        while time.monotonic() < deadline:
            await timed(run, "verify", lambda: client.get(f"/verify/{random.choice(numbers)}"))


WRK_SCRIPT = """
-- Written by bench/load.py: random certificate numbers, answers counted by status, failures
-- (4xx, 5xx) with the second they happened.
local numbers = {%(numbers)s}
local started = os.time()
statuses = {}
failures = {}
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    wrk.headers["Host"] = "%(host)s"
end

function request()
    return wrk.format("GET", "/verify/" .. numbers[math.random(#numbers)])
end

-- Each connection waits this long before its next request: together they offer --verify-rate.
function delay()
    return %(delay_ms)d
end

function response(status, headers, body)
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if status >= 400 and #failures < 1000 then
        table.insert(failures, status .. "@" .. (os.time() - started))
    end
end

function done(summary, latency, requests)
    local all, failed = {}, {}
    for _, thread in ipairs(threads) do
        for key, count in pairs(thread:get("statuses")) do
            all[key] = (all[key] or 0) + count
        end
        for _, failure in ipairs(thread:get("failures")) do
            table.insert(failed, '"' .. failure .. '"')
        end
    end
    local parts = {}
    for key, count in pairs(all) do
        table.insert(parts, '"' .. key .. '": ' .. count)
    end
    local e = summary.errors
    io.write(string.format(
        'MAMORI-WRK {"requests": %%d, "micros": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
        '"max_us": %%d, "statuses": {%%s}, "failures": [%%s], "connect": %%d, "read": %%d, ' ..
        '"write": %%d, "timeout": %%d}\\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        latency.max, table.concat(parts, ", "), table.concat(failed, ", "),
        e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class WrkFigures:
    """What wrk measured for the verifiers: it reports totals, not one sample per request."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    failures: list[tuple[int, float]]  # (status, second of the run) of answers >= 400
    no_answer: dict[str, int]  # socket errors by kind: connect, read, write, timeout


async def wrk_verifiers(
    stack: Stack,
    run: Run,
    numbers: list[str],
    connections: int,
    rate: float,
    duration: float,
    folder: Path,
) -> None:
    script = folder / "verify.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "numbers": ", ".join(f'"{number}"' for number in numbers),
            "host": stack.site_url.removeprefix("https://"),
            "delay_ms": round(1000 * connections / rate) if rate > 0 else 0,
        },
        encoding="utf-8",
    )
    # 127.0.0.1 itself: "localhost" may resolve to ::1 first, where nginx does not listen.
    address = f"https://127.0.0.1:{stack.https_port}"
    process = await asyncio.create_subprocess_exec(
        "wrk", "--threads", "1", "--connections", str(connections),
        "--duration", f"{max(1, round(duration))}s", "--timeout", "30s",
        "--script", str(script), address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await process.communicate())[0].decode(errors="replace")
    line = next((x for x in output.splitlines() if x.startswith("MAMORI-WRK ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output[-2000:]}")
    figures = json.loads(line.removeprefix("MAMORI-WRK "))
    run.wrk = WrkFigures(
        requests=figures["requests"],
        seconds=figures["micros"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        statuses=figures["statuses"],
        failures=[
            (int(status), float(second))
            for status, second in (item.split("@") for item in figures["failures"])
        ],
        no_answer={kind: figures[kind] for kind in ("connect", "read", "write", "timeout")},
    )


async def applicant(
    stack: Stack, run: Run, session: str, pages: dict, think: float, deadline: float
) -> None:
    async with client_for(stack, cookies={"sessionid": session}) as client:
        turn = 0
        # Each person starts at a different moment of their first pause, as people do.
        await asyncio.sleep(random.uniform(0, 2 * think))
        while time.monotonic() < deadline:
            path = APPLICANT_PAGES[turn % len(APPLICANT_PAGES)].format(**pages)
            turn += 1
            answer = await timed(run, "applicant page", lambda path=path: client.get(path))
            if answer is not None and answer.status_code == 302:
                run.samples[-1].detail = f"redirected to {answer.headers.get('location')}"
            # A pause of `think` seconds on average (half to one and a half times it).
            await asyncio.sleep(think * random.uniform(0.5, 1.5))


async def agent(
    stack: Stack,
    run: Run,
    index: int,
    token: str,
    evidence: EvidenceMaker,
    interval: float,
    deadline,
) -> None:
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    hostname = f"load-host-{index:03d}"
    async with client_for(stack) as client:
        sequence = 0
        # Agents run on their own timers: their uploads are spread over the interval.
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < deadline:
            sequence += 1
            collected = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{sequence:06d}Z"
            body = evidence.body(hostname, collected)
            answer = await timed(
                run,
                "agent upload",
                lambda body=body: client.post("/api/evidence/", content=body, headers=headers),
            )
            if answer is not None and answer.status_code in (200, 201, 202):
                upload = Upload(hostname, collected, time.monotonic(), answer.status_code)
                run.uploads.append(upload)
                if answer.status_code == 202:
                    upload.status_url = status_address(answer)
                    run.pollers.append(asyncio.create_task(follow(stack, run, upload, headers)))
                else:  # evaluated within the request
                    upload.done_after = 0.0
            await asyncio.sleep(max(0.0, interval - random.random() * 0.2))


def status_address(answer) -> str | None:
    """Where a 202 says the evaluation's progress can be read: Location, or the body's URL."""
    if answer.headers.get("location"):
        return answer.headers["location"]
    with contextlib.suppress(ValueError):
        body = answer.json()
        for key in ("status_url", "url", "status"):
            if isinstance(body.get(key), str) and body[key].startswith(("/", "http")):
                return body[key]
    return None


DONE_STATES = {"done", "evaluated", "complete", "completed", "succeeded", "failed"}


async def follow(stack: Stack, run: Run, upload: Upload, headers: dict) -> None:
    """Poll a 202's status address until the evaluation is done (or 2 minutes pass)."""
    if upload.status_url is None:
        return
    async with client_for(stack) as client:
        give_up = upload.accepted_at + SETTLE_SECONDS
        while time.monotonic() < give_up:
            answer = await timed(
                run, "upload status", lambda: client.get(upload.status_url, headers=headers)
            )
            if answer is not None and answer.status_code == 200:
                with contextlib.suppress(ValueError):
                    body = answer.json()
                    state = str(body.get("status") or body.get("state") or "").lower()
                    if state in DONE_STATES or body.get("controls"):
                        upload.done_after = time.monotonic() - upload.accepted_at
                        return
            await asyncio.sleep(0.5)


async def assessor(stack: Stack, run: Run, token: str, to_decide: list[int], interval, deadline):
    headers = {"Authorization": f"Token {token}"}
    async with client_for(stack) as client:
        for assessment in to_decide:
            if time.monotonic() >= deadline:
                return
            answer = await timed(
                run,
                "decision",
                lambda assessment=assessment: client.post(
                    f"/api/assessments/{assessment}/decision/",
                    json={"outcome": "pass", "summary": "load test"},
                    headers=headers,
                ),
            )
            run.decisions[assessment] = answer.status_code if answer is not None else "no answer"
            await asyncio.sleep(interval)


async def reminder_waves(run: Run, waves: list[list[int]], duration: float) -> None:
    """Certificates come due (30 days left) at 10 %, 45 % and 65 % of the run."""
    from tests.certificates import days_from_today

    from mamori.certificates.models import Certificate

    def bring_due(ids: list[int]) -> list[str]:
        for _attempt in range(60):  # PostgreSQL may be restarting
            try:
                Certificate.objects.filter(pk__in=ids).update(expires_on=days_from_today(30))
                return list(Certificate.objects.filter(pk__in=ids).values_list("number", flat=True))
            except Exception:
                from django.db import connection

                connection.close()
                time.sleep(1)
        return []

    for share, ids in zip((0.10, 0.45, 0.65), waves, strict=True):
        await asyncio.sleep(max(0.0, run.started + share * duration - time.monotonic()))
        run.due_certificates.update(await asyncio.to_thread(bring_due, ids))


# --- chaos ------------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def restart_redis() -> str:
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], check=False
    )
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    time.sleep(1)
    subprocess.run(
        [
            "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
            "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
            "--logfile", "/var/log/redis/ci.log",
        ],
        check=True,
    )  # fmt: skip
    return "Redis restarted (its queues are gone: nothing was saved)"


def restart_postgresql() -> str:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
    )
    return f"PostgreSQL {version} restarted"


async def chaos(stack: Stack, run: Run, duration: float) -> None:
    supervisor = stack.supervisor

    def kill_web_worker() -> str:
        workers = children_of(supervisor.pid("web"))
        os.kill(workers[0], signal.SIGKILL)
        return f"gunicorn worker {workers[0]} killed (SIGKILL)"

    def kill_celery_worker() -> str:
        pid = supervisor.pid("worker")
        os.kill(pid, signal.SIGKILL)
        return f"Celery worker {pid} killed (SIGKILL)"

    for share, action in (
        (0.20, kill_web_worker),
        (0.35, kill_celery_worker),
        (0.50, restart_redis),
        (0.70, restart_postgresql),
    ):
        await asyncio.sleep(max(0.0, run.started + share * duration - time.monotonic()))
        what = await asyncio.to_thread(action)
        run.chaos.append((time.monotonic() - run.started, what))
        print(f"  chaos at {time.monotonic() - run.started:5.1f} s: {what}", flush=True)


async def load(stack: Stack, fixture: Fixture, arguments, clients: dict[str, int]) -> Run:
    run = Run(started=time.monotonic())
    deadline = run.started + arguments.duration
    evidence = EvidenceMaker()
    if arguments.python_verifiers:
        tasks = [
            asyncio.create_task(verifier(stack, run, fixture.numbers, deadline))
            for _ in range(clients["verifiers"])
        ]
    else:
        tasks = [
            asyncio.create_task(
                wrk_verifiers(
                    stack, run, fixture.numbers, clients["verifiers"], arguments.verify_rate,
                    arguments.duration, arguments.folder,
                )
            )
        ]  # fmt: skip
    tasks += [
        asyncio.create_task(applicant(stack, run, session, pages, arguments.think, deadline))
        for session, pages in fixture.applicants
    ]
    tasks += [
        asyncio.create_task(
            agent(stack, run, index, token, evidence, arguments.agent_interval, deadline)
        )
        for index, token in enumerate(fixture.agent_tokens)
    ]
    tasks.append(
        asyncio.create_task(
            assessor(
                stack, run, fixture.assessor_token, fixture.to_decide,
                arguments.decision_interval, deadline,
            )
        )
    )  # fmt: skip
    tasks.append(
        asyncio.create_task(reminder_waves(run, fixture.reminder_waves, arguments.duration))
    )
    if arguments.chaos:
        tasks.append(asyncio.create_task(chaos(stack, run, arguments.duration)))
    await asyncio.gather(*tasks)
    run.elapsed = time.monotonic() - run.started
    if run.pollers:
        await asyncio.gather(*run.pollers)
    return run


# --- afterwards: nothing lost, nothing twice --------------------------------------------------


def settle_and_check(stack: Stack, run: Run) -> list[str]:
    """Wait (up to two minutes) for the background work, then list every problem found."""
    from django.db import connection
    from django.db.models import Count
    from tests.certificates import read_mail_dir

    from mamori.assessments.models import Decision
    from mamori.certificates.models import Certificate, Reminder
    from mamori.verification.models import Evaluation, Evidence, Trigger

    connection.close()
    deadline = time.monotonic() + SETTLE_SECONDS
    problems: list[str] = []

    def pending() -> list[str]:
        waiting = []
        unrendered = Certificate.objects.filter(pdf="").count()
        if unrendered:
            waiting.append(f"{unrendered} certificate PDFs not rendered")
        reminded = set(
            Reminder.objects.filter(certificate__number__in=run.due_certificates).values_list(
                "certificate__number", flat=True
            )
        )
        if len(reminded) < len(run.due_certificates):
            waiting.append(f"{len(run.due_certificates) - len(reminded)} reminders not sent")
        unevaluated = Evidence.objects.annotate(runs=Count("evaluations")).filter(runs=0).count()
        if unevaluated:
            waiting.append(f"{unevaluated} uploads not evaluated")
        return waiting

    while True:
        try:
            waiting = pending()
        except Exception as exc:
            waiting = [f"database: {exc}"]
            connection.close()
        if not waiting or time.monotonic() > deadline:
            problems += [f"after {SETTLE_SECONDS:.0f} s: {item}" for item in waiting]
            break
        time.sleep(1)

    # Uploads: every acknowledged one stored once and evaluated once on upload.
    stored = Counter(
        (hostname, collected.isoformat())
        for hostname, collected in Evidence.objects.values_list("host__hostname", "collected_at")
    )
    for upload in run.uploads:
        key = (upload.hostname, datetime.fromisoformat(upload.collected_at).isoformat())
        if stored[key] == 0:
            problems.append(f"upload lost: {upload.hostname} {upload.collected_at}")
        elif stored[key] > 1:
            problems.append(f"upload stored {stored[key]} times: {upload.hostname}")
    twice = (
        Evaluation.objects.filter(trigger=Trigger.UPLOAD)
        .values("evidence")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    if twice:
        problems.append(f"{twice} uploads evaluated more than once")

    # Decisions: one per accepted decision, one certificate per passed assessment.
    for assessment, status in run.decisions.items():
        decisions = Decision.objects.filter(assessment_id=assessment).count()
        certificates = Certificate.objects.filter(assessment_id=assessment).count()
        if status == 201 and (decisions != 1 or certificates != 1):
            problems.append(
                f"assessment {assessment}: decision accepted, {decisions} decisions and "
                f"{certificates} certificates stored"
            )
        elif decisions > 1 or certificates > 1 or decisions != certificates:
            problems.append(
                f"assessment {assessment} ({status}): {decisions} decisions, {certificates} certificates"
            )

    # PDFs: one file per certificate, no second copy of any.
    on_disk = Counter(
        re.sub(r"_[A-Za-z0-9]{7}\.pdf$", ".pdf", path.name)
        for path in (stack.files_dir / "certificates").glob("*.pdf")
    )
    for number, pdf in Certificate.objects.values_list("number", "pdf"):
        if not pdf or not (stack.files_dir / pdf).is_file():
            problems.append(f"certificate {number}: PDF missing")
        if on_disk[f"{number}.pdf"] > 1:
            problems.append(f"certificate {number}: {on_disk[f'{number}.pdf']} PDF files")

    # Reminders: one record and one message per recipient for every certificate that came due.
    sent = Counter(
        (message["To"], number)
        for message in read_mail_dir(stack.mail_dir)
        for number in run.due_certificates
        if number in str(message["Subject"])
    )
    for (recipient, number), count in sent.items():
        if count > 1:
            problems.append(f"reminder for {number} sent {count} times to {recipient}")
    for number in run.due_certificates:
        if not any(key[1] == number for key in sent):
            problems.append(f"reminder for {number}: no message")

    verified = subprocess.run(
        [str(BIN / "mamori"), "audit", "verify"],
        env=stack.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if verified.returncode != 0:
        problems.append(f"mamori audit verify: {verified.stderr.strip()}")
    else:
        print(f"  {verified.stdout.strip()}")
    return problems


# --- report ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def report(run: Run, problems: list[str], arguments, clients: dict[str, int]) -> dict:
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in run.samples:
        by_kind[sample.kind].append(sample)
    figures = {}
    for kind, samples in sorted(by_kind.items()):
        times = [sample.seconds * 1000 for sample in samples]
        figures[kind] = {
            "requests": len(samples),
            "per_second": round(len(samples) / run.elapsed, 1),
            "p50_ms": round(percentile(times, 0.50), 1),
            "p99_ms": round(percentile(times, 0.99), 1),
            "max_ms": round(max(times), 1),
        }
    failed = [s for s in run.samples if not (isinstance(s.status, int) and s.status < 400)]
    if run.wrk is not None:
        wrk = run.wrk
        figures["verify (wrk)"] = {
            "requests": wrk.requests,
            "per_second": round(wrk.requests / wrk.seconds, 1),
            "p50_ms": round(wrk.p50_ms, 1),
            "p99_ms": round(wrk.p99_ms, 1),
            "max_ms": round(wrk.max_ms, 1),
            "statuses": wrk.statuses,
        }
        failed += [
            Sample("verify (wrk)", status, 0.0, second, "") for status, second in wrk.failures
        ]
        failed += [
            Sample("verify (wrk)", f"socket {kind} error", 0.0, 0.0, f"{count} times")
            for kind, count in wrk.no_answer.items()
            if count
        ]
    total = sum(kind["requests"] for kind in figures.values())
    print(
        f"\n{arguments.clients} clients ({clients['agents']} agents, {clients['verifiers']} "
        f"verifiers, {clients['applicants']} applicants, 1 assessor) for {run.elapsed:.0f} s"
        f"{' with chaos' if arguments.chaos else ''}: "
        f"{total / run.elapsed:.0f} requests/s\n"
    )
    print(f"  {'kind':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in sorted(figures):
        f = figures[kind]
        print(
            f"  {kind:<16}{f['requests']:>9}{f['per_second']:>8}{f['p50_ms']:>9}"
            f"{f['p99_ms']:>9}{f['max_ms']:>9}"
        )
    done = [u.done_after for u in run.uploads if u.done_after is not None]
    late = [u for u in run.uploads if u.done_after is None or u.done_after > EVALUATION_DEADLINE]
    statuses = Counter(u.status for u in run.uploads)
    print(
        f"\n  uploads accepted: {len(run.uploads)} ({dict(statuses)}); evaluation done after "
        f"acceptance: p50 {percentile(done, 0.5):.1f} s, p99 {percentile(done, 0.99):.1f} s; "
        f"not done within {EVALUATION_DEADLINE:.0f} s: {len(late)}"
    )
    print(f"\n  answers that were not 2xx/3xx: {len(failed)}")
    for (kind, status), count in sorted(Counter((s.kind, str(s.status)) for s in failed).items()):
        example = next(s for s in failed if s.kind == kind and str(s.status) == status)
        print(
            f"    {count:>5} x {kind} {status} (first at {example.at:.1f} s: {example.detail[:120]!r})"
        )
    for at, what in run.chaos:
        print(f"  chaos at {at:.1f} s: {what}")
    print(f"\n  checks afterwards: {'all passed' if not problems else f'{len(problems)} problems'}")
    for problem in problems[:50]:
        print(f"    {problem}")
    return {
        "clients": arguments.clients,
        "duration_s": round(run.elapsed, 1),
        "chaos": arguments.chaos,
        "requests_per_second": round(total / run.elapsed, 1),
        "kinds": figures,
        "uploads": {
            "accepted": len(run.uploads),
            "statuses": {str(k): v for k, v in statuses.items()},
            "done_p50_s": round(percentile(done, 0.5), 2) if done else None,
            "done_p99_s": round(percentile(done, 0.99), 2) if done else None,
            "not_done_within_60_s": len(late),
        },
        "failed": [
            {"kind": s.kind, "status": str(s.status), "at_s": round(s.at, 2), "detail": s.detail}
            for s in failed
        ],
        "chaos_events": [{"at_s": round(at, 1), "what": what} for at, what in run.chaos],
        "problems": problems,
    }


def split_clients(arguments) -> dict[str, int]:
    total = arguments.clients - 1  # one is the assessor
    agents = round(total * arguments.agents)
    verifiers = round(total * arguments.verifiers)
    return {
        "agents": agents,
        "verifiers": verifiers,
        "applicants": max(0, total - agents - verifiers),
    }


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    clients = split_clients(arguments)
    if arguments.folder.exists():
        import shutil

        shutil.rmtree(arguments.folder)
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    stack = Stack(
        arguments.folder,
        database_url,
        f"redis://127.0.0.1:6379/{arguments.redis_db}",
        web_workers=arguments.web_workers,
        worker_concurrency=arguments.worker_concurrency,
        settings={
            "MAMORI_REMINDER_INTERVAL_SECONDS": str(REMINDER_INTERVAL),
            # Every client comes from 127.0.0.1: the per-client public limit would measure itself.
            "MAMORI_PUBLIC_API_RATE": "1000000/minute",
            "MAMORI_LOG_LEVEL": "WARNING",
        },
    )
    print(f"preparing the stack in {arguments.folder} ...", flush=True)
    stack.prepare()
    configure(stack)
    import redis

    broker = redis.Redis.from_url(stack.redis_url)
    broker.flushdb()
    print("building the data ...", flush=True)
    started = time.monotonic()
    fixture = build(arguments, clients)
    print(f"  built in {time.monotonic() - started:.0f} s; starting the stack ...", flush=True)
    stack.start(restart=arguments.chaos, timeout=90)
    try:
        print(f"load: {arguments.clients} clients for {arguments.duration:.0f} s ...", flush=True)
        run = asyncio.run(load(stack, fixture, arguments, clients))
        print("waiting for the background work to settle ...", flush=True)
        problems = settle_and_check(stack, run)
    finally:
        stack.stop()
        broker.flushdb()
    results = report(run, problems, arguments, clients)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"\nresults in {RESULTS_FILE.relative_to(ROOT)}; the stack's log in {stack.log_path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
