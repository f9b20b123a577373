"""Authorization as a matrix: role × object × action, over every page and API endpoint.

The tables below are the specification. A row names an object and an action; its ten cells are
the expected answer for each role, in the order of ``ROLES`` (the column header abbreviates them):

    done   it worked: the action's success response, and its effect is in the database
    no     a page refused it: a redirect carrying an error message, and nothing was written
    login  an anonymous page request: a redirect to the login page, nothing written
    2xx-4xx  exactly this status, and nothing was written

The rules the tables follow: outsiders, who cannot see the object, get 404 (never 403) and the
404 does not name the object. Whoever can see it but may not act gets 403 (API and forms) or a
redirect with the reason (action buttons); 409 means "your role may, but not in this state".
Anonymous users go to the login page (pages) or get 401 (API). The assessor's review pages do
not exist for the applicant side (404), though the assessment itself is visible to them.

Membership consent and conflict of interest have rows too: an invitation is answered by the
invited user alone, and invitations that reached an assessor of the body marking the bank, or the
scheme owner, are refused at acceptance; and a separate table for conrad, an assessor of body A
who belongs to the bank, who may take over, mark or decide none of its reviews.

The scene is built once per module inside a transaction that is rolled back at the end; every
test runs in a savepoint of it, so each cell starts from the same state, which is checked by
comparing a fingerprint of everything a request could write.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.test.client import ClientHandler
from django.urls import URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from mamori.accounts.models import ApiToken, TokenKind, User
from mamori.assessments import services
from mamori.assessments.models import (
    Answer,
    Appeal,
    Assessment,
    Attachment,
    Decision,
    Level,
    Mark,
    ReviewAssignment,
    State,
    Verdict,
)
from mamori.assessments.tasks import render_advice_pdf
from mamori.audit.models import AuditEvent
from mamori.catalogue.services import load_bundled
from mamori.certificates.models import Certificate
from mamori.certificates.tasks import render_certificate_pdf
from mamori.organisations import services as organisation_services
from mamori.organisations.models import (
    Membership,
    MembershipInvitation,
    Organisation,
    Role,
    WorkingGroup,
)
from mamori.plus import services as plus
from mamori.plus.models import (
    Device,
    DeviceCheck,
    PlusAudit,
    SampledDevice,
    SampleRound,
    TestAttachment,
)
from mamori.plus.models import TestCase as PlusTestCase
from mamori.verification import services as verification
from mamori.verification.models import (
    CheckResult,
    Evaluation,
    Evidence,
    EvidenceUpload,
    Host,
    HostTarget,
    VerdictChange,
    Vulnerability,
)
from tests.conftest import World, api_token, built_once, client_for, make_user
from tests.verification.factory import debian12_evidence

pytestmark = [pytest.mark.django_db, pytest.mark.matrix]

# The columns of every table, with the World persona playing each role and the organisation
# its API token is scoped to. The outsider's token names the bank although she is no member of
# it: a token whose user lost (or never had) the membership must see nothing.
ROLES = (
    "applicant_admin",  # adm: alice, the bank
    "contributor",  # con: carol, the bank
    "signatory",  # sig: bob, board member of the bank
    "assigned_assessor",  # asg: ada, body A, assigned to the bank's submissions
    "same_body_assessor",  # sba: abe, body A, not assigned
    "other_body_assessor",  # oba: otto, body B, assigned to the other bank's submission
    "scheme_owner",  # own: olive, the secretariat
    "other_org_admin",  # ooa: oscar, administrator of the other bank
    "outsider",  # out: eve, no membership at all
    "anonymous",  # anon
)
PERSONA = {
    "applicant_admin": ("admin", "bank"),
    "contributor": ("contributor", "bank"),
    "signatory": ("signatory", "bank"),
    "assigned_assessor": ("assessor", "body"),
    "same_body_assessor": ("assessor2", "body"),
    "other_body_assessor": ("other_assessor", "other_body"),
    "scheme_owner": ("owner", "secretariat"),
    "other_org_admin": ("other_admin", "other_bank"),
    "outsider": ("outsider", "bank"),
}
OUTCOMES = {"done", "no", "login", "200", "302", "400", "401", "403", "404", "405", "409", "422"}
OUTCOMES |= {"503"}  # /readyz when a component is not ready

# The questions the write actions touch. A4.2 is an ordinary yes/no answer; A5.1 is the one the
# assessor flagged for clarification; A6.4 is the failed assessment's failing (auto-fail) answer;
# A4.4 is the answer the mark actions give a verdict on.
FLAGGED_QID = "A5.1"
# The hostnames of the scene's two hosts: a 404 must never show them.
BANK_HOST = "bank-web-01"
OTHER_HOST = "other-web-01"
FAILING_QID = "A6.4"
MARK_QID = "A4.4"
ANSWER_QID = {"clarification": FLAGGED_QID, "failed": FAILING_QID}


def row(cells: str) -> dict[str, str]:
    values = cells.split()
    if len(values) != len(ROLES) or not set(values) <= OUTCOMES:
        raise ValueError(f"malformed matrix row: {cells!r}")
    return dict(zip(ROLES, values, strict=True))


# fmt: off
# --- Who can see each assessment ------------------------------------------------------------
#                  adm  con  sig  asg  sba  oba  own  ooa  out  anon
VISIBLE = {
    "draft":         "200  200  200  404  404  404  404  404  404  login",
    "submitted":     "200  200  200  200  200  404  404  404  404  login",
    "in_review":     "200  200  200  200  200  404  404  404  404  login",
    "clarification": "200  200  200  200  200  404  404  404  404  login",
    "passed":        "200  200  200  200  200  404  404  404  404  login",
    "failed":        "200  200  200  200  200  404  404  404  404  login",
    "other":         "404  404  404  404  404  200  404  200  404  login",
}
OBJECTS = tuple(VISIBLE)
# Pages and API reads that answer exactly "can you see it".
READ_PAGES = ("detail", "section", "evidence", "precheck", "declaration", "appeal")
READ_API = ("api:retrieve", "api:answers")

# --- Actions on one assessment, per object ----------------------------------------------------
BANK_SUBMISSIONS = ("submitted", "in_review", "clarification", "passed", "failed")
#                  adm  con  sig  asg  sba  oba  own  ooa  out  anon
ACTION_ROWS = {
    "review": {
        "draft":         "404  404  404  404  404  404  404  404  404  login",
        **dict.fromkeys(BANK_SUBMISSIONS,
                         "404  404  404  200  200  404  404  404  404  login"),
        "other":         "404  404  404  404  404  200  404  404  404  login",
    },
    "advice": {
        **dict.fromkeys(("draft", "submitted", "in_review", "clarification", "passed"),
                         "404  404  404  404  404  404  404  404  404  login"),
        "failed":        "200  200  200  200  200  404  404  404  404  login",
        "other":         "404  404  404  404  404  404  404  404  404  login",
    },
    "answer": {  # a plain form post: the reason comes back as a message
        "draft":         "done done no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   no   no   404  404  404  404  login",
        "in_review":     "no   no   no   no   no   404  404  404  404  login",
        "clarification": "done done no   no   no   404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "done done no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "answer:htmx": {  # the autosave: the status says it
        "draft":         "done done 403  404  404  404  404  404  404  login",
        "submitted":     "409  409  403  403  403  404  404  404  404  login",
        "in_review":     "409  409  403  403  403  404  404  404  404  login",
        "clarification": "done done 403  403  403  404  404  404  404  login",
        "passed":        "409  409  403  403  403  404  404  404  404  login",
        "failed":        "done done 403  403  403  404  404  404  404  login",
        "other":         "404  404  404  404  404  403  404  409  404  login",
    },
    "evidence:upload": {
        "draft":         "done done 403  404  404  404  404  404  404  login",
        "submitted":     "409  409  403  403  403  404  404  404  404  login",
        "in_review":     "409  409  403  403  403  404  404  404  404  login",
        "clarification": "done done 403  403  403  404  404  404  404  login",
        "passed":        "409  409  403  403  403  404  404  404  404  login",
        "failed":        "done done 403  403  403  404  404  404  404  login",
        "other":         "404  404  404  404  404  403  404  409  404  login",
    },
    "declaration:sign": {  # again before a resubmission: the corrected answers are new
        "draft":         "403  403  done 404  404  404  404  404  404  login",
        "submitted":     "403  403  409  403  403  404  404  404  404  login",
        "in_review":     "403  403  409  403  403  404  404  404  404  login",
        "clarification": "403  403  409  403  403  404  404  404  404  login",
        "passed":        "403  403  409  403  403  404  404  404  404  login",
        "failed":        "403  403  done 403  403  404  404  404  404  login",
        "other":         "404  404  404  404  404  403  404  403  404  login",
    },
    "submit": {
        "draft":         "done no   no   404  404  404  404  404  404  login",
        **dict.fromkeys(BANK_SUBMISSIONS,
                         "no   no   no   no   no   404  404  404  404  login"),
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "respond": {
        "draft":         "no   no   no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   no   no   404  404  404  404  login",
        "in_review":     "no   no   no   no   no   404  404  404  404  login",
        "clarification": "done no   no   no   no   404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "no   no   no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "resubmit": {
        "draft":         "no   no   no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   no   no   404  404  404  404  login",
        "in_review":     "no   no   no   no   no   404  404  404  404  login",
        "clarification": "no   no   no   no   no   404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "done no   no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "take": {
        "draft":         "no   no   no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   no   done 404  404  404  404  login",
        "in_review":     "no   no   no   no   done 404  404  404  404  login",
        "clarification": "no   no   no   no   done 404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "no   no   no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "start_review": {  # in_review: already started, so "done" changes nothing
        "draft":         "no   no   no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   done no   404  404  404  404  login",
        "in_review":     "no   no   no   done no   404  404  404  404  login",
        "clarification": "no   no   no   no   no   404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "no   no   no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  done 404  no   404  login",
    },
    "clarify": {
        "draft":         "no   no   no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   no   no   404  404  404  404  login",
        "in_review":     "no   no   no   done no   404  404  404  404  login",
        "clarification": "no   no   no   no   no   404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "no   no   no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "decide": {
        "draft":         "no   no   no   404  404  404  404  404  404  login",
        "submitted":     "no   no   no   no   no   404  404  404  404  login",
        "in_review":     "no   no   no   done no   404  404  404  404  login",
        "clarification": "no   no   no   no   no   404  404  404  404  login",
        "passed":        "no   no   no   no   no   404  404  404  404  login",
        "failed":        "no   no   no   no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  no   404  no   404  login",
    },
    "mark": {  # the review pages are the certification body's: 404 for the applicant side
        "draft":         "404  404  404  404  404  404  404  404  404  login",
        "submitted":     "404  404  404  done no   404  404  404  404  login",
        "in_review":     "404  404  404  done no   404  404  404  404  login",
        "clarification": "404  404  404  no   no   404  404  404  404  login",
        "passed":        "404  404  404  no   no   404  404  404  404  login",
        "failed":        "404  404  404  no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  done 404  404  404  login",
    },
    # Mark the remaining answers compliant: as marking, one by one. In review, every answer
    # is marked already: nothing left, nothing written, said with a notice (302).
    "mark_remaining": {
        "draft":         "404  404  404  404  404  404  404  404  404  login",
        "submitted":     "404  404  404  done no   404  404  404  404  login",
        "in_review":     "404  404  404  302  no   404  404  404  404  login",
        "clarification": "404  404  404  no   no   404  404  404  404  login",
        "passed":        "404  404  404  no   no   404  404  404  404  login",
        "failed":        "404  404  404  no   no   404  404  404  404  login",
        "other":         "404  404  404  404  404  done 404  404  404  login",
    },
    "mark:htmx": {  # the same, as the review page's autosave: the status says it
        "draft":         "404  404  404  404  404  404  404  404  404  login",
        "submitted":     "404  404  404  done 403  404  404  404  404  login",
        "in_review":     "404  404  404  done 403  404  404  404  404  login",
        "clarification": "404  404  404  409  403  404  404  404  404  login",
        "passed":        "404  404  404  409  403  404  404  404  404  login",
        "failed":        "404  404  404  409  403  404  404  404  404  login",
        "other":         "404  404  404  404  404  done 404  404  404  login",
    },
    # The appeal against a fail: only the applicant's administrator lodges one, only against the
    # failed assessment's decision (409 in any other state).
    "appeal:lodge": {
        "draft":         "409  403  403  404  404  404  404  404  404  login",
        **dict.fromkeys(("submitted", "in_review", "clarification", "passed"),
                         "409  403  403  403  403  404  404  404  404  login"),
        "failed":        "done 403  403  403  403  404  404  404  404  login",
        "other":         "404  404  404  404  404  403  404  409  404  login",
    },
    # The second assessor's page: like the review pages, the applicant side does not find it.
    # No appeal is pending in this scene (tests/assessments/test_appeals.py has one): 409.
    "appeal:review": {
        "draft":         "404  404  404  404  404  404  404  404  404  login",
        **dict.fromkeys(BANK_SUBMISSIONS,
                         "404  404  404  200  200  404  404  404  404  login"),
        "other":         "404  404  404  404  404  200  404  404  404  login",
    },
    "appeal:decide": {
        "draft":         "404  404  404  404  404  404  404  404  404  login",
        **dict.fromkeys(BANK_SUBMISSIONS,
                         "404  404  404  409  409  404  404  404  404  login"),
        "other":         "404  404  404  404  404  409  404  404  404  login",
    },
    # --- API, with each role's token -----------------------------------------------------
    "api:answer": {
        "draft":         "done done 403  404  404  404  404  404  404  401",
        "submitted":     "409  409  403  403  403  404  404  404  404  401",
        "in_review":     "409  409  403  403  403  404  404  404  404  401",
        "clarification": "done done 403  403  403  404  404  404  404  401",
        "passed":        "409  409  403  403  403  404  404  404  404  401",
        "failed":        "done done 403  403  403  404  404  404  404  401",
        "other":         "404  404  404  404  404  403  404  409  404  401",
    },
    "api:submit": {
        "draft":         "done 403  403  404  404  404  404  404  404  401",
        **dict.fromkeys(BANK_SUBMISSIONS,
                         "409  403  403  403  403  404  404  404  404  401"),
        "other":         "404  404  404  404  404  403  404  409  404  401",
    },
    "api:respond": {
        "draft":         "409  403  403  404  404  404  404  404  404  401",
        "submitted":     "409  403  403  403  403  404  404  404  404  401",
        "in_review":     "409  403  403  403  403  404  404  404  404  401",
        "clarification": "done 403  403  403  403  404  404  404  404  401",
        "passed":        "409  403  403  403  403  404  404  404  404  401",
        "failed":        "409  403  403  403  403  404  404  404  404  401",
        "other":         "404  404  404  404  404  403  404  409  404  401",
    },
    "api:resubmit": {
        "draft":         "409  403  403  404  404  404  404  404  404  401",
        "submitted":     "409  403  403  403  403  404  404  404  404  401",
        "in_review":     "409  403  403  403  403  404  404  404  404  401",
        "clarification": "409  403  403  403  403  404  404  404  404  401",
        "passed":        "409  403  403  403  403  404  404  404  404  401",
        "failed":        "done 403  403  403  403  404  404  404  404  401",
        "other":         "404  404  404  404  404  403  404  409  404  401",
    },
    "api:marks": {
        "draft":         "403  403  403  404  404  404  404  404  404  401",
        "submitted":     "403  403  403  done 403  404  404  404  404  401",
        "in_review":     "403  403  403  done 403  404  404  404  404  401",
        "clarification": "403  403  403  409  403  404  404  404  404  401",
        "passed":        "403  403  403  409  403  404  404  404  404  401",
        "failed":        "403  403  403  409  403  404  404  404  404  401",
        "other":         "404  404  404  404  404  done 404  403  404  401",
    },
    "api:clarification": {
        "draft":         "403  403  403  404  404  404  404  404  404  401",
        "submitted":     "403  403  403  409  403  404  404  404  404  401",
        "in_review":     "403  403  403  done 403  404  404  404  404  401",
        "clarification": "403  403  403  409  403  404  404  404  404  401",
        "passed":        "403  403  403  409  403  404  404  404  404  401",
        "failed":        "403  403  403  409  403  404  404  404  404  401",
        "other":         "404  404  404  404  404  409  404  403  404  401",
    },
    "api:decision": {  # a decided round is "already decided" for any assessor of the body
        "draft":         "403  403  403  404  404  404  404  404  404  401",
        "submitted":     "403  403  403  409  403  404  404  404  404  401",
        "in_review":     "403  403  403  done 403  404  404  404  404  401",
        "clarification": "403  403  403  409  403  404  404  404  404  401",
        "passed":        "403  403  403  409  409  404  404  404  404  401",
        "failed":        "403  403  403  409  409  404  404  404  404  401",
        "other":         "404  404  404  404  404  409  404  403  404  401",
    },
    "api:appeal": {
        "draft":         "409  403  403  404  404  404  404  404  404  401",
        **dict.fromkeys(("submitted", "in_review", "clarification", "passed"),
                         "409  403  403  403  403  404  404  404  404  401"),
        "failed":        "done 403  403  403  403  404  404  404  404  401",
        "other":         "404  404  404  404  404  403  404  409  404  401",
    },
    "api:appeal-decision": {
        "draft":         "403  403  403  404  404  404  404  404  404  401",
        **dict.fromkeys(BANK_SUBMISSIONS,
                         "403  403  403  409  409  404  404  404  404  401"),
        "other":         "404  404  404  404  404  409  404  403  404  401",
    },
}

# --- Evidence files and certificates ------------------------------------------------------------
#                  adm  con  sig  asg  sba  oba  own  ooa  out  anon
OBJECT_ROWS = {
    # the evidence file attached to the submitted assessment
    "evidence:download":         "200  200  200  200  200  404  404  404  404  login",
    # the same file id under another assessment's URL: the draft (same bank) and the other bank's
    "evidence:download-via-draft": "404  404  404  404  404  404  404  404  404  login",
    "evidence:download-via-other": "404  404  404  404  404  404  404  404  404  login",
    # removing the draft's evidence file: those who add files, until the assessor receives it
    "evidence:delete":           "done done no   404  404  404  404  404  404  login",
    # the submitted assessment's file: the assessor has it, so it stays
    "evidence:delete-submitted": "no   no   no   no   no   404  404  404  404  login",
    # the draft's file id under the other bank's assessment
    "evidence:delete-via-other": "404  404  404  404  404  404  404  404  404  login",
    # the certificate of the passed assessment
    "certificate:detail":        "200  200  200  200  200  404  200  404  404  login",
    "certificate:pdf":           "200  200  200  200  200  404  200  404  404  login",
    "certificate:revoke":        "no   no   no   done done 404  done 404  404  login",
    "api:certificate":           "200  200  200  200  200  404  200  404  404  401",
    "public:verify":             "200  200  200  200  200  200  200  200  200  200",
    "public:verify-slash":       "200  200  200  200  200  200  200  200  200  200",
    "public:api-certificate":    "200  200  200  200  200  200  200  200  200  200",
    # the continuous-assurance figures of that certificate: who sees the certificate sees them
    "api:certificate-assurance": "200  200  200  200  200  404  200  404  404  401",
    # --- Hosts and their evidence. The bank's host: its members, and the assessors of body A,
    # to which the bank submitted; the other bank's host: its admin and body B's assessor. The
    # scheme owner sees aggregates on certificates, never hosts (404).
    "host:detail":               "200  200  200  200  200  404  404  404  404  login",
    "host:diff":                 "200  200  200  200  200  404  404  404  404  login",
    "host:evidence-json":        "200  200  200  200  200  404  404  404  404  login",
    # the bank's evidence id under the other bank's host
    "host:evidence-via-other":   "404  404  404  404  404  404  404  404  404  login",
    # POST: take the bank's host out of scope; the bank's editors decide, the others who see
    # the host are told why not
    "host:scope":                "done done no   no   no   404  404  404  404  login",
    "host-other:detail":         "404  404  404  404  404  200  404  200  404  login",
    "api:host":                  "200  200  200  200  200  404  404  404  404  401",
    "api:host-evidence":         "200  200  200  200  200  404  404  404  404  401",
    "api:host-other":            "404  404  404  404  404  200  404  200  404  401",
    # --- The Cyber Essentials Plus audit of the bank's certificate (round 1 drawn, TC1
    # recorded, ada assigned): the bank's members and body A's assessors see it; the bank's
    # editors and the assigned assessor list devices and addresses; only ada tests and decides.
    "plus:detail":               "200  200  200  200  200  404  404  404  404  login",
    "plus:test-case":            "200  200  200  200  200  404  404  404  404  login",
    "plus:download":             "200  200  200  200  200  404  404  404  404  login",
    "plus:take":                 "no   no   no   no   done 404  404  404  404  login",
    "plus:addresses":            "done done no   done no   404  404  404  404  login",
    "plus:add-device":           "done done no   done no   404  404  404  404  login",
    "plus:remove-device":        "done done no   done no   404  404  404  404  login",
    "plus:kinds":                "no   no   no   done no   404  404  404  404  login",
    # round 1 is being tested: no new sample; its test cases are unfinished: no decision
    "plus:draw":                 "no   no   no   no   no   404  404  404  404  login",
    "plus:fill":                 "no   no   no   done no   404  404  404  404  login",
    "plus:device-check":         "no   no   no   done no   404  404  404  404  login",
    "plus:test-case:record":     "403  403  403  done 403  404  404  404  404  login",
    "plus:decide":               "no   no   no   no   no   404  404  404  404  login",
    "api:plus-audit":            "200  200  200  200  200  404  404  404  404  401",
    "api:plus-audit-devices":    "200  200  200  200  200  404  404  404  404  401",
    "api:plus-audit-rounds":     "200  200  200  200  200  404  404  404  404  401",
}

# --- Pages and endpoints without an assessment in the URL ---------------------------------------
#                  adm  con  sig  asg  sba  oba  own  ooa  out  anon
GLOBAL_ROWS = {
    "home":                      "200  200  200  200  200  200  200  200  200  login",
    "assessments:list":          "200  200  200  200  200  200  200  200  200  login",
    "assessments:start-form":    "200  404  404  404  404  404  404  200  404  login",
    # POST: start an assessment for the bank (oscar's form does not offer the bank: 422)
    "assessments:start":         "done 404  404  404  404  404  404  422  404  login",
    "assessments:queue":         "404  404  404  200  200  200  404  404  404  login",
    "certificates:list":         "200  200  200  200  200  200  200  200  200  login",
    "organisations:list":        "200  200  200  200  200  200  200  200  200  login",
    "organisations:bank":        "200  200  200  200  200  404  200  404  404  login",
    "organisations:other-bank":  "404  404  404  404  404  200  200  200  404  login",
    "organisations:body":        "404  404  404  200  200  404  200  404  404  login",
    # A roster: the people of its member (the bank) and convenor (body A), and the scheme owner
    "organisations:working-group": "200  200  200  200  200  404  200  404  404  login",
    "accounts:tokens":           "200  200  200  200  200  200  200  200  200  login",
    # POST: a token for the bank; only its members may have one
    "accounts:token-create":     "done done done 422  422  422  422  422  422  login",
    # POST: revoke alice's token; it is nobody else's to revoke
    "accounts:token-revoke":     "done 404  404  404  404  404  404  404  404  login",
    # POST: revoke carol's token: hers, and the bank's administrator's (alice's) to revoke
    "accounts:token-revoke-member": "done done 404  404  404  404  404  404  404  login",
    # POST: rotate alice's token: a new key only ever goes to the token's owner
    "accounts:token-rotate":     "done 404  404  404  404  404  404  404  404  login",
    # Every token of the bank, with those near expiry: its applicant administrators only
    "accounts:organisation-tokens": "200  404  404  404  404  404  404  404  404  login",
    "accounts:password":         "200  200  200  200  200  200  200  200  200  login",
    "accounts:login-form":       "302  302  302  302  302  302  302  302  302  200",
    "accounts:mfa-setup":        "200  200  200  302  302  302  302  200  200  login",
    "accounts:mfa-verify":       "302  302  302  200  200  200  200  302  302  login",
    "accounts:logout":           "302  302  302  302  302  302  302  302  302  302",
    "i18n:setlang":              "302  302  302  302  302  302  302  302  302  302",
    "public:register":           "200  200  200  200  200  200  200  200  200  200",
    "public:verify-lookup":      "302  302  302  302  302  302  302  302  302  302",
    "public:healthz":            "200  200  200  200  200  200  200  200  200  200",
    # Readiness, the same for everyone: no worker runs in this scene, so it is not ready (503)
    "public:readyz":             "503  503  503  503  503  503  503  503  503  503",
    "public:api-schema":         "200  200  200  200  200  200  200  200  200  200",
    "api:organisations":         "200  200  200  200  200  200  200  200  200  401",
    "api:organisation-bank":     "200  200  200  200  200  404  200  404  404  401",
    "api:organisation-other":    "404  404  404  404  404  200  200  200  404  401",
    "api:assessments":           "200  200  200  200  200  200  200  200  200  401",
    # POST: start an assessment for the bank through the API (400: not the token's organisation)
    "api:assessments-create":    "done 403  403  400  400  400  400  400  400  401",
    "api:certificates":          "200  200  200  200  200  200  200  200  200  401",
    "hosts:list":                "200  200  200  200  200  200  200  200  200  login",
    # The agent file, for those who set up an organisation's hosts (administrators, contributors)
    "hosts:agent":               "200  200  404  404  404  404  404  200  404  login",
    # How a certification body assigns its reviews: its assessors and the scheme owner see and
    # change it (POST: body A's rule); another body's assessor does not find body A (404)
    "assessments:assignment":    "404  404  404  200  200  200  200  404  404  login",
    "assessments:assignment-set": "404  404  404  done done 404  done 404  404  login",
    "api:hosts":                 "200  200  200  200  200  200  200  200  200  401",
    # POST: evidence of a new host for the token's organisation, whatever the member's role;
    # the outsider's token names the bank, where she is no member (403)
    "api:evidence-upload":       "done done done done done done done done 403  401",
    # An upload's status: the bank's members (and the agent token that sent it), nobody else
    "api:evidence-upload-status": "200  200  200  404  404  404  404  404  404  401",
    # --- Cyber Essentials Plus: the list for everyone signed in; the request form for those who
    # could ever start one (applicant administrators, assessors). The bank's certificate already
    # has its audit, so no form offers it: 422.
    "plus:list":                 "200  200  200  200  200  200  200  200  200  login",
    "plus:request-form":         "200  404  404  200  200  200  404  200  404  login",
    "plus:request":              "422  404  404  422  422  422  404  422  404  login",
    "api:plus-audits":           "200  200  200  200  200  200  200  200  200  401",
    # --- People: an organisation's own members read its list; its applicant admin and the
    # scheme owners manage it. Those who see the organisation but not its people (an assessor
    # reviewing the bank) find no member list: 404.
    "organisations:members-bank":        "200  200  200  404  404  404  200  404  404  login",
    "organisations:members-other-bank":  "404  404  404  404  404  404  200  200  404  login",
    "organisations:members-body":        "404  404  404  200  200  404  200  404  404  login",
    # POST on the list itself: members are added at .../members/add/
    "organisations:members-post":        "405  405  405  405  405  405  405  405  405  login",
    # POST: eve invited to the bank as a contributor (she joins only by accepting)
    "organisations:add-member":          "done 403  403  404  404  404  done 404  404  login",
    # POST: eve as scheme owner in the bank: the bank's admin is not offered the role (422); the
    # scheme owner is refused it as a conflict of interest (403), nothing written
    "organisations:add-scheme-owner":    "422  403  403  404  404  404  403  404  404  login",
    # POST: eve invited as assessor of body A; its assessors read the list but grant nothing
    "organisations:add-assessor":        "404  404  404  403  403  404  done 404  404  login",
    # --- Membership consent: the invited user's own page and answer. The scene's invitation of
    # eve (board signatory of the bank) is hers alone to accept or decline (others: 404); its
    # inviters may withdraw it.
    "organisations:invitations":         "200  200  200  200  200  200  200  200  200  login",
    "organisations:accept-invitation":   "404  404  404  404  404  404  404  404  done login",
    "organisations:decline-invitation":  "404  404  404  404  404  404  404  404  done login",
    "organisations:cancel-invitation":   "done 403  403  404  404  404  done 404  404  login",
    # --- Conflict of interest at acceptance: invitations that reached ada (an assessor of body
    # A, which marks the bank) and olive (scheme owner) are refused with the reason
    "organisations:accept-as-assessor":  "404  404  404  no   404  404  404  404  404  login",
    "organisations:accept-as-owner":     "404  404  404  404  404  404  no   404  404  login",
    # POST: a new account for the bank, its one-time password on the page that answers
    "organisations:create-user":         "done 403  403  404  404  404  done 404  404  login",
    # POST: carol's contributor role taken away
    "organisations:remove-member":       "done 403  403  404  404  404  done 404  404  login",
    # POST: olive removes her own, last scheme-owner role: refused with the reason
    "organisations:remove-own-owner":    "404  404  404  404  404  404  no   404  404  login",
    "organisations:create-form":         "404  404  404  404  404  404  200  404  404  login",
    # POST: a new organisation; only scheme owners find the page
    "organisations:create":              "404  404  404  404  404  404  done 404  404  login",
    # --- The Django admin, one block behind one guard (core/admin_site.py): nobody here is
    # staff, so it does not exist for them (404); tests/organisations/test_members.py has
    # staff with and without the second factor. Its login form is a redirect to ours.
    "admin:index":                       "404  404  404  404  404  404  404  404  404  login",
    "admin:membership-changelist":       "404  404  404  404  404  404  404  404  404  login",
    "admin:certificate-add":             "404  404  404  404  404  404  404  404  404  login",
    "admin:membership-add":              "404  404  404  404  404  404  404  404  404  login",
    "admin:login":                       "302  302  302  302  302  302  302  302  302  login",
}

# A GET on a URL that only acts on POST never acts: 405 (after the login check).
POST_ONLY = ("answer", "submit", "respond", "resubmit", "take", "start_review", "clarify",
             "decide", "mark", "mark_remaining", "certificate:revoke", "accounts:token-revoke",
             "accounts:token-revoke-member", "accounts:token-rotate",
             "organisations:add-member", "organisations:remove-member", "host:scope",
             "organisations:accept-invitation", "organisations:decline-invitation",
             "organisations:cancel-invitation")
POST_ONLY = (*POST_ONLY, "plus:take", "plus:addresses", "plus:add-device",
             "plus:remove-device", "plus:kinds", "plus:draw", "plus:fill",
             "plus:device-check", "plus:decide", "evidence:delete")
GET_ON_POST_ONLY = "405  405  405  405  405  405  405  405  405  login"

# --- What each role finds in the lists -----------------------------------------------------------
BANK_ALL = "draft submitted in_review clarification passed failed"
BANK_SENT = "submitted in_review clarification passed failed"
ALL_ORGS = "bank other_bank body other_body secretariat"
#                       assessments page  API assessments  organisations (page+API)  certificates
LISTS = {
    "applicant_admin":     (BANK_ALL,  BANK_ALL,  "bank",                  "certificate"),
    "contributor":         (BANK_ALL,  BANK_ALL,  "bank",                  "certificate"),
    "signatory":           (BANK_ALL,  BANK_ALL,  "bank",                  "certificate"),
    "assigned_assessor":   ("",        BANK_SENT, "bank body",             "certificate"),
    "same_body_assessor":  ("",        BANK_SENT, "bank body",             "certificate"),
    "other_body_assessor": ("",        "other",   "other_bank other_body", ""),
    "scheme_owner":        ("",        "",        ALL_ORGS,                "certificate"),
    "other_org_admin":     ("other",   "other",   "other_bank",            ""),
    "outsider":            ("",        "",        "",                      ""),
}
# fmt: on


# --- The scene ------------------------------------------------------------------------------------


class Personas:
    """What a scene with ``world``, ``sessions`` and ``tokens`` gives each role: its user and a
    client signed in as it (by session cookie, or by API token)."""

    def user(self, role: str):
        return None if role == "anonymous" else getattr(self.world, PERSONA[role][0])

    def client(self, role: str, *, api: bool) -> Client:
        client = new_client()
        if role == "anonymous":
            return client
        if api:
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {self.tokens[role]}"
        else:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client


@dataclass
class Scene(Personas):
    world: World
    objects: dict[str, Assessment]
    organisations: dict[str, Any]
    attachment: Attachment
    certificate: Certificate
    sessions: dict[str, str]
    tokens: dict[str, str]
    alice_token: ApiToken
    # per object: the question a write action answers, the new value and the version it edits
    answer_targets: dict[str, tuple[str, str, int]]
    fingerprint: tuple = ()
    extra: dict[str, Any] = field(default_factory=dict)


# One request handler for every client in this module: a new handler loads the middleware
# again, and WhiteNoise then rescans the static files, which would triple the module's run time.
HANDLER = ClientHandler(enforce_csrf_checks=False)


def new_client(**defaults) -> Client:
    """A client with no cookies, sharing the module's handler."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en", **defaults)
    client.handler = HANDLER
    return client


# Everything else a request here could write, summed up per table: any write adds a row, bumps a
# version or moves a time stamp. One query for all of them keeps 2,600 cells fast on PostgreSQL.
SUMMARIES = {
    Answer: ("COUNT(*)", "MAX(id)", "SUM(version)", "MAX(updated_at)"),
    Mark: ("COUNT(*)", "MAX(id)", "MAX(updated_at)"),
    ReviewAssignment: ("COUNT(*)", "MAX(updated_at)"),
    Decision: ("COUNT(*)", "MAX(id)"),
    Appeal: ("COUNT(*)", "MAX(id)", "MAX(decided_at)"),
    Attachment: ("COUNT(*)", "MAX(id)"),
    Certificate: ("COUNT(*)", "MAX(id)", "MAX(revoked_at)"),
    ApiToken: ("COUNT(*)", "MAX(id)", "MAX(revoked_at)"),
    AuditEvent: ("COUNT(*)", "MAX(seq)"),
    Membership: ("COUNT(*)", "MAX(id)"),
    MembershipInvitation: ("COUNT(*)", "MAX(id)", "MAX(updated_at)"),
    User: ("COUNT(*)", "MAX(id)", "MAX(password)"),
    Organisation: ("COUNT(*)", "MAX(id)", "MAX(updated_at)"),
    Host: ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "SUM(CASE WHEN in_scope THEN 1 ELSE 0 END)"),
    Evidence: ("COUNT(*)", "MAX(id)"),
    EvidenceUpload: ("COUNT(*)", "MAX(id)"),
    Evaluation: ("COUNT(*)", "MAX(id)"),
    CheckResult: ("COUNT(*)",),
    HostTarget: ("COUNT(*)", "MAX(id)"),
    Vulnerability: ("COUNT(*)", "MAX(id)"),
    VerdictChange: ("COUNT(*)", "MAX(id)"),
    PlusAudit: ("COUNT(*)", "MAX(id)", "MAX(updated_at)"),
    Device: ("COUNT(*)", "MAX(id)", "COUNT(kind_confirmed_by_id)", "SUM(LENGTH(kind))"),
    SampleRound: ("COUNT(*)", "SUM(draws)", "MAX(testing_started_at)", "MAX(decided_at)"),
    SampledDevice: ("COUNT(*)", "MAX(id)"),
    PlusTestCase: ("COUNT(*)", "MAX(recorded_at)"),
    DeviceCheck: ("COUNT(*)", "MAX(recorded_at)"),
    TestAttachment: ("COUNT(*)", "MAX(id)"),
}


def fingerprint() -> tuple:
    """Everything a request in this module could write. Every cell starts from the same state,
    so a refused request must leave exactly the scene's fingerprint."""
    assessments = tuple(
        Assessment.objects.order_by("pk").values_list(
            "pk",
            "state",
            "round",
            "assessor_id",
            "declared_at",
            "declared_name",
            "answers_digest",
            "feedback_due",
            "updated_at",
        )
    )
    columns = ", ".join(
        # Constant expressions and the models' own table names: nothing from a request.
        f"(SELECT {expression} FROM {connection.ops.quote_name(model._meta.db_table)})"  # noqa: S608
        for model, expressions in SUMMARIES.items()
        for expression in expressions
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        return assessments, cursor.fetchone()


def _submitted_with_evidence(world: World) -> tuple[Assessment, Attachment]:
    """Like ``World.submitted`` but with an evidence file, which can only be added before."""
    assessment = world.start()
    world.answer_all(assessment)
    attachment = services.add_attachment(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        SimpleUploadedFile("firewall-rules.txt", b"allow tcp/443 from any\n"),
        "A4.2",
    )
    world.sign(assessment)
    services.submit(world.admin, world.access(world.admin), assessment.pk)
    assessment.refresh_from_db()
    if assessment.assessor_id != world.assessor.pk:
        services.take_over(world.assessor, world.access(world.assessor), assessment.pk)
        assessment.refresh_from_db()
    return assessment, attachment


def _other_bank_submission(world: World) -> Assessment:
    """The other bank's assessment, submitted to body B, where otto is the only assessor."""
    oscar = world.other_admin
    assessment = services.start_assessment(
        oscar, world.access(oscar), world.other_bank, world.other_body, Level.CE
    )
    world.answer_all(assessment, user=oscar)
    signatory = make_user("olga", world.other_bank, Role.BOARD_SIGNATORY)
    services.sign_declaration(signatory, world.access(signatory), assessment.pk, "Olga", "CEO")
    services.submit(oscar, world.access(oscar), assessment.pk)
    assessment.refresh_from_db()
    assert assessment.assessor_id == world.other_assessor.pk
    return assessment


def _answer_target(assessment: Assessment, qid: str) -> tuple[str, str, int]:
    answer = Answer.objects.get(assessment=assessment, question__qid=qid)
    return qid, ("no" if answer.value == "yes" else "yes"), answer.version


def _upload_evidence(user, organisation, evidence: dict) -> verification.UploadOutcome:
    body = json.dumps(evidence).encode()
    return verification.accept_upload(
        verification.AgentUpload(organisation=organisation, body=body, user=user)
    )


def _hosts(world: World) -> dict[str, Any]:
    """The bank's host with two collections (for the diff), and the other bank's host."""
    now = timezone.now().replace(microsecond=0)
    older = debian12_evidence(
        hostname=BANK_HOST, machine_id="1" * 32, collected_at=now - dt.timedelta(days=1)
    )
    first = _upload_evidence(world.admin, world.bank, older)
    newer = debian12_evidence(hostname=BANK_HOST, machine_id="1" * 32, collected_at=now)
    newer["firewall"]["default_inbound"] = "accept"
    second = _upload_evidence(world.admin, world.bank, newer)
    other = _upload_evidence(
        world.other_admin,
        world.other_bank,
        debian12_evidence(hostname=OTHER_HOST, machine_id="2" * 32),
    )
    return {
        "hosts": {"bank": second.host, "other": other.host},
        "host_evidence": (first.evidence.pk, second.evidence.pk),
        "bank_upload": EvidenceUpload.objects.get(evidence=first.evidence).pk,
    }


def build_scene() -> Scene:
    load_bundled()
    world = World()
    draft = world.start()
    world.answer_all(draft)
    draft_attachment = services.add_attachment(
        world.admin,
        world.access(world.admin),
        draft.pk,
        SimpleUploadedFile("draft-policy.txt", b"patch within 14 days\n"),
        "A6.4",
    )
    world.sign(draft)
    submitted, attachment = _submitted_with_evidence(world)
    in_review = world.mark_all(
        world.submitted(),
        {"A4.2": Verdict.NON_COMPLIANT, FLAGGED_QID: Verdict.NEEDS_INFORMATION},
    )
    clarification = world.mark_all(world.submitted(), {FLAGGED_QID: Verdict.NEEDS_INFORMATION})
    services.request_clarification(world.assessor, world.access(world.assessor), clarification.pk)
    clarification.refresh_from_db()
    passed = world.passed()
    failed = world.failed(FAILING_QID)
    other = _other_bank_submission(world)
    objects = {
        "draft": draft,
        "submitted": submitted,
        "in_review": in_review,
        "clarification": clarification,
        "passed": passed,
        "failed": failed,
        "other": other,
    }
    expected_states = {
        "draft": State.DRAFT,
        "submitted": State.SUBMITTED,
        "in_review": State.IN_REVIEW,
        "clarification": State.CLARIFICATION,
        "passed": State.PASSED,
        "failed": State.FAILED,
        "other": State.SUBMITTED,
    }
    assert {name: a.state for name, a in objects.items()} == expected_states
    # Ada reviews every bank submission; otto the other bank's.
    assert {name: a.assessor_id for name, a in objects.items() if name != "draft"} == {
        **dict.fromkeys(BANK_SUBMISSIONS, world.assessor.pk),
        "other": world.other_assessor.pk,
    }
    certificate = Certificate.objects.get(assessment=passed)
    # The documents are rendered after commit, which never comes in this module: render them now
    # so the download views hand out real files.
    render_certificate_pdf(certificate.pk)
    render_advice_pdf(Decision.objects.get(assessment=failed, round=1).pk)
    certificate.refresh_from_db()

    sessions, tokens = {}, {}
    for role, (persona, organisation) in PERSONA.items():
        user = getattr(world, persona)
        sessions[role] = client_for(user).cookies[settings.SESSION_COOKIE_NAME].value
        tokens[role] = api_token(user, getattr(world, organisation))
    alice_token = ApiToken.objects.filter(user=world.admin).get()
    organisations = {
        "bank": world.bank,
        "other_bank": world.other_bank,
        "body": world.body,
        "other_body": world.other_body,
        "secretariat": world.secretariat,
    }
    scene = Scene(
        world=world,
        objects=objects,
        organisations=organisations,
        attachment=attachment,
        certificate=certificate,
        sessions=sessions,
        tokens=tokens,
        alice_token=alice_token,
        answer_targets={
            name: _answer_target(assessment, ANSWER_QID.get(name, "A4.2"))
            for name, assessment in objects.items()
        },
    )
    scene.extra["draft_attachment"] = draft_attachment
    scene.extra["agent_token"] = api_token(world.admin, world.bank, TokenKind.AGENT)
    # A working group the bank belongs to, convened by body A.
    group = WorkingGroup.objects.create(
        name_ja="テスト作業部会", name_en="Test working group", convenor=world.body
    )
    group.members.add(world.bank)
    scene.extra["working_group"] = group
    scene.extra.update(_hosts(world))
    scene.extra["plus"] = _plus_audit(world, certificate, scene.extra["hosts"]["bank"])
    # Mia administers both banks; each of her tokens must see only its own bank.
    mia = make_user("mia", world.bank, Role.APPLICANT_ADMIN)
    Membership.objects.create(user=mia, organisation=world.other_bank, role=Role.APPLICANT_ADMIN)
    scene.extra["mia_tokens"] = {
        "bank": api_token(mia, world.bank),
        "other_bank": api_token(mia, world.other_bank),
    }
    scene.extra["mia_session"] = client_for(mia).cookies[settings.SESSION_COOKIE_NAME].value
    scene.extra.update(_invitations_and_conflicts(world))
    scene.fingerprint = fingerprint()
    return scene


def _invitations_and_conflicts(world: World) -> dict[str, Any]:
    """Membership consent and conflict of interest: eve's invitation to the bank, two that
    reached people who may never join it (as if sent before the bank chose body A), and conrad,
    an assessor of body A who belongs to the bank (he joined it before it chose body A), made
    after every submission so he changes no assignment above."""
    eve = organisation_services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.BOARD_SIGNATORY
    )
    reached = {
        persona: MembershipInvitation.objects.create(
            organisation=world.bank,
            username=getattr(world, persona).username,
            user=getattr(world, persona),
            role=Role.APPLICANT_CONTRIBUTOR,
            invited_by=world.admin,
            expires_at=eve.expires_at,
        )
        for persona in ("assessor", "owner")
    }
    conrad = make_user("conrad", world.body, Role.ASSESSOR, mfa=True)
    Membership.objects.create(user=conrad, organisation=world.bank, role=Role.APPLICANT_CONTRIBUTOR)
    world.conrad = conrad
    return {
        "invitation": eve,
        "reached": reached,
        "conrad_session": client_for(conrad).cookies[settings.SESSION_COOKIE_NAME].value,
        "conrad_token": api_token(conrad, world.body),
    }


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker, tmp_path_factory):
    """The scene, built once, inside a transaction rolled back when the module ends."""
    files = tmp_path_factory.mktemp("authz-files")
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": files, "base_url": None},
        },
    }
    with (
        override_settings(STORAGES=storages, PRIVATE_FILES_ROOT=files),
        built_once(django_db_blocker, build_scene) as scene,
    ):
        yield scene


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The public API's rate limit lives in the cache; no cell may be throttled by another's.
    cache.clear()


# --- Actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    method: str
    url: Callable[[Scene, Any], str]
    data: Callable[[Scene, Any], Any] | None = None
    api: bool = False
    htmx: bool = False
    ok: int = 302  # the status of a request that worked
    message: bool = True  # whether a redirect that worked carries a success message
    effect: Callable[[Scene, Any, Any], None] | None = None  # asserts what it did


def _fresh(assessment: Assessment) -> Assessment:
    return Assessment.objects.get(pk=assessment.pk)


def _answer_data(scene: Scene, assessment: Assessment) -> dict:
    name = next(n for n, a in scene.objects.items() if a.pk == assessment.pk)
    _qid, value, version = scene.answer_targets[name]
    return {"value": value, "version": version}


def _answer_url(scene: Scene, assessment: Assessment) -> str:
    name = next(n for n, a in scene.objects.items() if a.pk == assessment.pk)
    return reverse("assessments:answer", args=[assessment.pk, scene.answer_targets[name][0]])


def _api_answer_url(scene: Scene, assessment: Assessment) -> str:
    name = next(n for n, a in scene.objects.items() if a.pk == assessment.pk)
    return f"/api/assessments/{assessment.pk}/answers/{scene.answer_targets[name][0]}"


def _answer_saved(scene: Scene, assessment: Assessment, user) -> None:
    name = next(n for n, a in scene.objects.items() if a.pk == assessment.pk)
    qid, value, version = scene.answer_targets[name]
    answer = Answer.objects.get(assessment=assessment, question__qid=qid)
    assert (answer.value, answer.version, answer.updated_by) == (value, version + 1, user)


def _evidence_added(scene: Scene, assessment: Assessment, user) -> None:
    added = Attachment.objects.filter(assessment=assessment, original_name="matrix.txt").get()
    assert added.uploaded_by == user


def _declared(scene: Scene, assessment: Assessment, user) -> None:
    fresh = _fresh(assessment)
    assert (fresh.declared_by, fresh.declared_name) == (user, "Bob Board II")


def _state_is(state: str, **fields) -> Callable[[Scene, Assessment, Any], None]:
    def check(scene: Scene, assessment: Assessment, user) -> None:
        fresh = _fresh(assessment)
        assert fresh.state == state
        for name, value in fields.items():
            assert getattr(fresh, name) == value, name

    return check


def _taken(scene: Scene, assessment: Assessment, user) -> None:
    assert _fresh(assessment).assessor == user


def _decided(scene: Scene, assessment: Assessment, user) -> None:
    decision = Decision.objects.get(assessment=assessment, round=1)
    assert (decision.outcome, decision.summary, decision.assessor) == ("fail", "matrix", user)
    assert _fresh(assessment).state == State.FAILED


def _appealed(scene: Scene, assessment: Assessment, user) -> None:
    appeal = Appeal.objects.get(assessment=assessment)
    assert (appeal.status, appeal.grounds, appeal.lodged_by) == ("pending", "matrix", user)
    fresh = _fresh(assessment)
    assert (fresh.state, fresh.feedback_due) == (State.FAILED, None)  # answers frozen
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor, event.object_id) == ("appeal.lodged", user, str(appeal.pk))


def _marked(scene: Scene, assessment: Assessment, user) -> None:
    mark = Mark.objects.get(
        answer__assessment=assessment, answer__question__qid=MARK_QID, round=assessment.round
    )
    assert (mark.verdict, mark.comment, mark.assessor) == (
        Verdict.NON_COMPLIANT,
        "matrix: no evidence",
        user,
    )


def _marked_remaining(scene: Scene, assessment: Assessment, user) -> None:
    event = AuditEvent.objects.get(
        action="answers.remaining_marked_compliant", object_id=str(assessment.pk)
    )
    marked = Mark.objects.filter(
        answer__assessment=assessment,
        round=assessment.round,
        answer__question__qid__in=event.details["questions"],
    )
    assert event.details["questions"]
    assert marked.count() == len(event.details["questions"])
    assert {(mark.verdict, mark.assessor) for mark in marked} == {(Verdict.COMPLIANT, user)}


def _mark_url(scene: Scene, assessment: Assessment) -> str:
    return reverse("assessments:mark", args=[assessment.pk, MARK_QID])


def _mark_data(scene: Scene, assessment: Assessment) -> dict:
    return {"verdict": Verdict.NON_COMPLIANT, "comment": "matrix: no evidence"}


def _upload(scene: Scene, assessment: Assessment) -> dict:
    return {"file": SimpleUploadedFile("matrix.txt", b"evidence\n"), "question": ""}


def _page(name: str) -> Callable[[Scene, Assessment], str]:
    return lambda scene, assessment: reverse(f"assessments:{name}", args=[assessment.pk])


def _api(suffix: str) -> Callable[[Scene, Assessment], str]:
    return lambda scene, assessment: f"/api/assessments/{assessment.pk}/{suffix}"


ASSESSMENT_ACTIONS: dict[str, Action] = {
    "detail": Action("get", _page("detail")),
    "section": Action("get", lambda s, a: reverse("assessments:section", args=[a.pk, "A2"])),
    "evidence": Action("get", _page("evidence")),
    "precheck": Action("get", _page("precheck")),
    "declaration": Action("get", _page("declaration")),
    "review": Action("get", _page("review")),
    "advice": Action("get", lambda s, a: reverse("assessments:advice", args=[a.pk, 1])),
    "advice:pdf": Action("get", lambda s, a: reverse("assessments:advice_pdf", args=[a.pk, 1])),
    "answer": Action("post", _answer_url, _answer_data, effect=_answer_saved),
    "answer:htmx": Action(
        "post", _answer_url, _answer_data, htmx=True, ok=200, effect=_answer_saved
    ),
    "evidence:upload": Action("post", _page("evidence"), _upload, effect=_evidence_added),
    "declaration:sign": Action(
        "post",
        _page("declaration"),
        lambda s, a: {"name": "Bob Board II", "title": "Director", "confirm": "on"},
        effect=_declared,
    ),
    "appeal": Action("get", _page("appeal")),
    "appeal:lodge": Action(
        "post", _page("appeal"), lambda s, a: {"grounds": "matrix"}, effect=_appealed
    ),
    "appeal:review": Action("get", _page("appeal_decide")),
    "appeal:decide": Action(
        "post", _page("appeal_decide"), lambda s, a: {"outcome": "uphold", "reason": "matrix"}
    ),
    "submit": Action("post", _page("submit"), effect=_state_is(State.SUBMITTED)),
    "respond": Action("post", _page("respond"), effect=_state_is(State.IN_REVIEW)),
    "resubmit": Action("post", _page("resubmit"), effect=_state_is(State.RESUBMITTED, round=2)),
    "take": Action("post", _page("take"), effect=_taken),
    "start_review": Action("post", _page("start_review"), effect=_state_is(State.IN_REVIEW)),
    "clarify": Action("post", _page("clarify"), effect=_state_is(State.CLARIFICATION)),
    "decide": Action(
        "post",
        _page("decide"),
        lambda s, a: {"outcome": "fail", "summary": "matrix"},
        effect=_decided,
    ),
    # A mark that worked just goes back to the review page: the verdict shows there.
    "mark": Action("post", _mark_url, _mark_data, message=False, effect=_marked),
    "mark:htmx": Action("post", _mark_url, _mark_data, htmx=True, ok=200, effect=_marked),
    "mark_remaining": Action("post", _page("mark_remaining"), effect=_marked_remaining),
    "api:retrieve": Action("get", lambda s, a: f"/api/assessments/{a.pk}", api=True),
    "api:answers": Action("get", _api("answers"), api=True),
    "api:answer": Action(
        "put", _api_answer_url, _answer_data, api=True, ok=200, effect=_answer_saved
    ),
    "api:submit": Action(
        "post", _api("submit"), api=True, ok=200, effect=_state_is(State.SUBMITTED)
    ),
    "api:respond": Action(
        "post", _api("respond"), api=True, ok=200, effect=_state_is(State.IN_REVIEW)
    ),
    "api:resubmit": Action(
        "post", _api("resubmit"), api=True, ok=200, effect=_state_is(State.RESUBMITTED, round=2)
    ),
    "api:marks": Action(
        "post",
        _api("marks"),
        lambda s, a: {"question": MARK_QID, **_mark_data(s, a)},
        api=True,
        ok=200,
        effect=_marked,
    ),
    "api:clarification": Action(
        "post", _api("clarification"), api=True, ok=200, effect=_state_is(State.CLARIFICATION)
    ),
    "api:decision": Action(
        "post",
        _api("decision"),
        lambda s, a: {"outcome": "fail", "summary": "matrix"},
        api=True,
        ok=201,
        effect=_decided,
    ),
    "api:appeal": Action(
        "post",
        _api("appeal"),
        lambda s, a: {"grounds": "matrix"},
        api=True,
        ok=201,
        effect=_appealed,
    ),
    "api:appeal-decision": Action(
        "post",
        _api("appeal-decision"),
        lambda s, a: {"outcome": "uphold", "reason": "matrix"},
        api=True,
        ok=200,
    ),
}


def _revoked(scene: Scene, target, user) -> None:
    certificate = Certificate.objects.get(pk=scene.certificate.pk)
    assert certificate.revoked_at is not None
    assert certificate.revoked_by == user


def _download(via: str | None) -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        assessment = scene.objects[via] if via else scene.attachment.assessment
        return reverse("assessments:download_evidence", args=[assessment.pk, scene.attachment.pk])

    return url


def _host(name: str, suffix: str = "") -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        return reverse("verification:detail", args=[scene.extra["hosts"][name].pk]) + suffix

    return url


def _evidence_json(host: str) -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        return reverse(
            "verification:evidence_download",
            args=[scene.extra["hosts"][host].pk, scene.extra["host_evidence"][0]],
        )

    return url


def _out_of_scope(scene: Scene, target, user) -> None:
    host = Host.objects.get(pk=scene.extra["hosts"]["bank"].pk)
    assert not host.in_scope
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor, event.object_id) == (
        "host.scope_changed",
        user,
        str(host.pk),
    )


def _api_host(name: str, suffix: str = "") -> Callable[[Scene, Any], str]:
    return lambda scene, target: f"/api/hosts/{scene.extra['hosts'][name].pk}{suffix}"


# --- The Plus audit -------------------------------------------------------------------------------

PLUS_DEVICE = "Reception PC"  # listed by ada, sampled; a 404 must never show it
SPARE_DEVICE = "Spare laptop"  # listed by alice after the draw, so it can still be removed


def _plus_audit(world: World, certificate: Certificate, host: Host) -> dict[str, Any]:
    """The bank's Plus audit, through the real services: alice requests it (ada, who passed
    the basic assessment, is assigned), ada confirms the kinds, draws round 1 and records TC1
    with a file; alice then lists one more device."""
    ada, access = world.assessor, world.access(world.assessor)
    alice = world.access(world.admin)
    audit = plus.request_audit(world.admin, alice, certificate.pk)
    assert audit.assessor == ada
    plus.set_public_addresses(world.admin, alice, audit.pk, "133.242.0.10")
    plus.add_device(ada, access, audit.pk, PLUS_DEVICE, "Windows 11 Pro 23H2", "end_user")
    plus.confirm_kinds(ada, access, audit.pk, {f"host-{host.pk}": "end_user"})
    sample_round = plus.draw_sample(ada, access, audit.pk)
    assert sample_round.sampled.count() == 2
    plus.record_test_case(
        ada,
        access,
        audit.pk,
        "TC1",
        "pass",
        "external scan: no findings",
        SimpleUploadedFile("external-scan.txt", b"no findings\n"),
    )
    spare = plus.add_device(
        world.admin, alice, audit.pk, SPARE_DEVICE, "Windows 10 Pro 22H2", "end_user"
    )
    return {
        "audit": audit,
        "round": sample_round,
        "sampled": SampledDevice.objects.get(round=sample_round, device__name=PLUS_DEVICE),
        "spare": spare,
        "attachment": TestAttachment.objects.get(test_case__round=sample_round),
    }


def _plus_url(name: str, *extra: Callable[[dict], Any]) -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        found = scene.extra["plus"]
        return reverse(f"plus:{name}", args=[found["audit"].pk, *(get(found) for get in extra)])

    return url


def _plus_event(action: str, user) -> None:
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor) == (action, user)


def _plus_taken(scene: Scene, target, user) -> None:
    assert PlusAudit.objects.get(pk=scene.extra["plus"]["audit"].pk).assessor == user
    _plus_event("plus.assigned", user)


def _plus_addresses(scene: Scene, target, user) -> None:
    audit = PlusAudit.objects.get(pk=scene.extra["plus"]["audit"].pk)
    assert audit.public_addresses == "133.242.0.99"
    _plus_event("plus.addresses_changed", user)


def _plus_device_added(scene: Scene, target, user) -> None:
    device = Device.objects.get(audit=scene.extra["plus"]["audit"], name="Matrix PC")
    assert (device.added_by, device.manual) == (user, True)
    _plus_event("plus.device_added", user)


def _plus_device_removed(scene: Scene, target, user) -> None:
    assert not Device.objects.filter(pk=scene.extra["plus"]["spare"].pk).exists()
    _plus_event("plus.device_removed", user)


def _plus_kinds(scene: Scene, target, user) -> None:
    device = Device.objects.get(pk=scene.extra["plus"]["spare"].pk)
    assert (device.kind, device.kind_confirmed_by) == ("server", user)
    _plus_event("plus.kinds_confirmed", user)


def _plus_filled(scene: Scene, target, user) -> None:
    checks = DeviceCheck.objects.filter(sampled__round=scene.extra["plus"]["round"])
    assert sorted(checks.values_list("code", "source")) == [
        ("TC2", "evidence"),
        ("TC3", "evidence"),
        ("TC7", "evidence"),
    ]
    _plus_event("plus.evidence_filled", user)


def _plus_checked(scene: Scene, target, user) -> None:
    check = DeviceCheck.objects.get(sampled=scene.extra["plus"]["sampled"], code="TC3")
    assert (check.status, check.source, check.recorded_by) == ("pass", "assessor", user)
    _plus_event("plus.check_recorded", user)


def _plus_recorded(scene: Scene, target, user) -> None:
    case = PlusTestCase.objects.get(round=scene.extra["plus"]["round"], code="TC4")
    assert (case.result, case.notes, case.recorded_by) == ("pass", "matrix", user)
    _plus_event("plus.test_recorded", user)


def _api_plus(suffix: str = "") -> Callable[[Scene, Any], str]:
    return lambda scene, target: f"/api/plus-audits/{scene.extra['plus']['audit'].pk}{suffix}"


PLUS_ACTIONS: dict[str, Action] = {
    "plus:detail": Action("get", _plus_url("detail")),
    "plus:test-case": Action("get", _plus_url("test_case", lambda found: "TC1")),
    "plus:download": Action("get", _plus_url("download", lambda found: found["attachment"].pk)),
    "plus:take": Action("post", _plus_url("take"), effect=_plus_taken),
    "plus:addresses": Action(
        "post",
        _plus_url("addresses"),
        lambda s, t: {"public_addresses": "133.242.0.99"},
        effect=_plus_addresses,
    ),
    "plus:add-device": Action(
        "post",
        _plus_url("add_device"),
        lambda s, t: {"name": "Matrix PC", "os_build": "Windows 11 Pro 24H2", "kind": "end_user"},
        effect=_plus_device_added,
    ),
    "plus:remove-device": Action(
        "post",
        _plus_url("remove_device", lambda found: found["spare"].pk),
        effect=_plus_device_removed,
    ),
    "plus:kinds": Action(
        "post",
        _plus_url("kinds"),
        lambda s, t: {f"kind-device-{s.extra['plus']['spare'].pk}": "server"},
        effect=_plus_kinds,
    ),
    "plus:draw": Action("post", _plus_url("draw")),
    "plus:fill": Action("post", _plus_url("fill"), effect=_plus_filled),
    "plus:device-check": Action(
        "post",
        _plus_url("device_check", lambda found: found["sampled"].pk),
        lambda s, t: {"code": "TC3", "status": "pass", "notes": "checked on the console"},
        effect=_plus_checked,
    ),
    "plus:test-case:record": Action(
        "post",
        _plus_url("test_case", lambda found: "TC4"),
        lambda s, t: {"result": "pass", "notes": "matrix"},
        effect=_plus_recorded,
    ),
    "plus:decide": Action(
        "post", _plus_url("decide"), lambda s, t: {"outcome": "pass", "summary": "matrix"}
    ),
    "api:plus-audit": Action("get", _api_plus(), api=True),
    "api:plus-audit-devices": Action("get", _api_plus("/devices"), api=True),
    "api:plus-audit-rounds": Action("get", _api_plus("/rounds"), api=True),
}


def _delete_evidence(which: str, via: str | None = None) -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        attachment = scene.extra["draft_attachment"] if which == "draft" else scene.attachment
        assessment = scene.objects[via] if via else attachment.assessment
        return reverse("assessments:delete_evidence", args=[assessment.pk, attachment.pk])

    return url


def _evidence_deleted(scene: Scene, target, user) -> None:
    attachment = scene.extra["draft_attachment"]
    assert not Attachment.objects.filter(pk=attachment.pk).exists()
    event = AuditEvent.objects.filter(action="evidence.deleted").get()
    assert (event.actor_id, event.details["attachment"]) == (user.pk, attachment.pk)


OBJECT_ACTIONS: dict[str, Action] = {
    "evidence:download": Action("get", _download(None)),
    "evidence:delete": Action("post", _delete_evidence("draft"), effect=_evidence_deleted),
    "evidence:delete-submitted": Action("post", _delete_evidence("submitted")),
    "evidence:delete-via-other": Action("post", _delete_evidence("draft", via="other")),
    "evidence:download-via-draft": Action("get", _download("draft")),
    "evidence:download-via-other": Action("get", _download("other")),
    "certificate:detail": Action(
        "get", lambda s, t: reverse("certificates:detail", args=[s.certificate.number])
    ),
    "certificate:pdf": Action(
        "get", lambda s, t: reverse("certificates:pdf", args=[s.certificate.number])
    ),
    "certificate:revoke": Action(
        "post",
        lambda s, t: reverse("certificates:revoke", args=[s.certificate.number]),
        lambda s, t: {"reason": "matrix: revoked"},
        effect=_revoked,
    ),
    "api:certificate": Action(
        "get", lambda s, t: f"/api/certificates/{s.certificate.number}", api=True
    ),
    "public:verify": Action(
        "get", lambda s, t: reverse("certificates:verify", args=[s.certificate.number])
    ),
    "public:verify-slash": Action("get", lambda s, t: f"/verify/{s.certificate.number}/"),
    "public:api-certificate": Action(
        "get", lambda s, t: f"/api/public/certificates/{s.certificate.number}", api=True
    ),
    "api:certificate-assurance": Action(
        "get", lambda s, t: f"/api/certificates/{s.certificate.number}/assurance", api=True
    ),
    "host:detail": Action("get", _host("bank")),
    "host:diff": Action(
        "get",
        lambda s, t: (
            reverse("verification:diff", args=[s.extra["hosts"]["bank"].pk])
            + "?from={}&to={}".format(*s.extra["host_evidence"])
        ),
    ),
    "host:evidence-json": Action("get", _evidence_json("bank")),
    "host:evidence-via-other": Action("get", _evidence_json("other")),
    "host:scope": Action(
        "post",
        lambda s, t: reverse("verification:scope", args=[s.extra["hosts"]["bank"].pk]),
        lambda s, t: {"in_scope": "0"},
        effect=_out_of_scope,
    ),
    "host-other:detail": Action("get", _host("other")),
    "api:host": Action("get", _api_host("bank"), api=True),
    "api:host-evidence": Action("get", _api_host("bank", "/evidence"), api=True),
    "api:host-other": Action("get", _api_host("other"), api=True),
    **PLUS_ACTIONS,
}


def _started(scene: Scene, target, user) -> None:
    assert Assessment.objects.filter(organisation=scene.world.bank).count() == 7
    newest = Assessment.objects.filter(organisation=scene.world.bank).latest("pk")
    assert (newest.state, newest.started_by) == (State.DRAFT, user)


def _assignment_set(scene: Scene, target, user) -> None:
    setting = ReviewAssignment.objects.get(certification_body=scene.world.body)
    assert (setting.rule, setting.updated_by) == ("queue", user)


def _token_created(scene: Scene, target, user) -> None:
    token = ApiToken.objects.get(user=user, name="matrix")
    assert token.organisation == scene.world.bank


def _token_revoked(scene: Scene, target, user) -> None:
    assert ApiToken.objects.get(pk=scene.alice_token.pk).revoked_at is not None


def _carol_token(scene: Scene) -> ApiToken:
    return ApiToken.objects.get(user=scene.world.contributor)


def _member_token_revoked(scene: Scene, target, user) -> None:
    assert _carol_token(scene).revoked_at is not None


def _token_rotated(scene: Scene, target, user) -> None:
    successor = ApiToken.objects.get(pk=scene.alice_token.pk).replaced_by
    assert successor is not None
    assert successor.user == scene.world.admin


def _org(name: str, api: bool = False) -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        pk = scene.organisations[name].pk
        return f"/api/organisations/{pk}" if api else reverse("organisations:detail", args=[pk])

    return url


def _const(url: str) -> Callable[[Scene, Any], str]:
    return lambda scene, target: url


def _members(name: str, suffix: str = "") -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        return reverse("organisations:members", args=[scene.organisations[name].pk]) + suffix

    return url


def _role_of(scene: Scene, persona: str, organisation: str, role: str) -> Membership:
    return Membership.objects.get(
        user=getattr(scene.world, persona),
        organisation=scene.organisations[organisation],
        role=role,
    )


def _removal(persona: str, organisation: str, role: str) -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        membership = _role_of(scene, persona, organisation, role)
        return reverse(
            "organisations:remove_member", args=[membership.organisation_id, membership.pk]
        )

    return url


def _invited(organisation: str, role: str) -> Callable[[Scene, Any, Any], None]:
    """eve is invited, and is no member until she accepts."""

    def check(scene: Scene, target, user) -> None:
        invitation = MembershipInvitation.objects.get(
            organisation=scene.organisations[organisation], username="eve", role=role
        )
        assert invitation.user == scene.world.outsider
        assert not Membership.objects.filter(
            user=scene.world.outsider, organisation=scene.organisations[organisation]
        ).exists()
        event = AuditEvent.objects.latest("seq")
        assert (event.action, event.actor, event.object_id) == (
            "membership.invited",
            user,
            str(invitation.pk),
        )

    return check


def _invitation(name: str = "", action: str = "") -> Callable[[Scene, Any], str]:
    def url(scene: Scene, target) -> str:
        invitation = scene.extra["reached"][name] if name else scene.extra["invitation"]
        if action == "cancel":
            return reverse(
                "organisations:cancel_invitation",
                args=[invitation.organisation_id, invitation.pk],
            )
        return reverse(f"organisations:{action}_invitation", args=[invitation.pk])

    return url


def _answered(state: str) -> Callable[[Scene, Any, Any], None]:
    def check(scene: Scene, target, user) -> None:
        invitation = MembershipInvitation.objects.get(pk=scene.extra["invitation"].pk)
        assert invitation.state == state
        joined = Membership.objects.filter(
            user=scene.world.outsider, organisation=scene.world.bank, role=Role.BOARD_SIGNATORY
        ).exists()
        assert joined is (state == "accepted")
        event = AuditEvent.objects.latest("seq")
        assert (event.action, event.actor) == (
            {
                "accepted": "membership.invitation_accepted",
                "declined": "membership.invitation_declined",
                "cancelled": "membership.invitation_cancelled",
            }[state],
            user,
        )

    return check


def _removed(persona: str, organisation: str, role: str) -> Callable[[Scene, Any, Any], None]:
    def check(scene: Scene, target, user) -> None:
        assert not Membership.objects.filter(
            user=getattr(scene.world, persona),
            organisation=scene.organisations[organisation],
            role=role,
        ).exists()
        event = AuditEvent.objects.latest("seq")
        assert (event.action, event.actor) == ("membership.removed", user)

    return check


def _user_created(scene: Scene, target, user) -> None:
    created = User.objects.get(username="matrix-new")
    assert created.has_usable_password()
    assert Membership.objects.filter(
        user=created, organisation=scene.world.bank, role=Role.BOARD_SIGNATORY
    ).exists()
    assert AuditEvent.objects.get(action="user.created", object_id=str(created.pk)).actor == user


def _organisation_created(scene: Scene, target, user) -> None:
    created = Organisation.objects.get(name_en="Matrix Ltd")
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor, event.object_id) == (
        "organisation.created",
        user,
        str(created.pk),
    )


def _evidence_uploaded(scene: Scene, target, user) -> None:
    # Received and stored (202); the evaluation is queued for after the commit: run it.
    receipt = EvidenceUpload.objects.select_related("uploaded_by").latest("pk")
    assert (receipt.hostname, receipt.state, receipt.uploaded_by.user) == (
        "matrix-new",
        "pending",
        user,
    )
    assert verification.evaluate_upload(receipt.pk).state == "done"
    evidence = Evidence.objects.select_related("host", "uploaded_by").latest("pk")
    assert evidence.host.hostname == "matrix-new"
    assert evidence.uploaded_by.user == user
    assert Membership.objects.filter(user=user, organisation=evidence.host.organisation).exists()
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor) == ("evidence.uploaded", user)


GLOBAL_ACTIONS: dict[str, Action] = {
    "home": Action("get", _const("/")),
    "assessments:list": Action("get", _const("/assessments/")),
    "assessments:start-form": Action("get", _const("/assessments/new/")),
    "assessments:start": Action(
        "post",
        _const("/assessments/new/"),
        lambda s, t: {
            "organisation": s.world.bank.pk,
            "certification_body": s.world.body.pk,
            "level": "CE",
        },
        effect=_started,
    ),
    "assessments:queue": Action("get", _const("/review/")),
    "certificates:list": Action("get", _const("/certificates/")),
    "organisations:list": Action("get", _const("/organisations/")),
    "organisations:bank": Action("get", _org("bank")),
    "organisations:other-bank": Action("get", _org("other_bank")),
    "organisations:body": Action("get", _org("body")),
    "organisations:working-group": Action(
        "get",
        lambda s, t: reverse("organisations:working_group", args=[s.extra["working_group"].pk]),
    ),
    "accounts:tokens": Action("get", _const("/accounts/tokens/")),
    "accounts:token-create": Action(
        "post",
        _const("/accounts/tokens/"),
        lambda s, t: {"name": "matrix", "organisation": s.world.bank.pk, "kind": "user"},
        ok=200,
        effect=_token_created,
    ),
    "accounts:token-revoke": Action(
        "post",
        lambda s, t: reverse("accounts:revoke_token", args=[s.alice_token.pk]),
        effect=_token_revoked,
    ),
    "accounts:token-revoke-member": Action(
        "post",
        lambda s, t: reverse("accounts:revoke_token", args=[_carol_token(s).pk]),
        effect=_member_token_revoked,
    ),
    "accounts:token-rotate": Action(
        "post",
        lambda s, t: reverse("accounts:rotate_token", args=[s.alice_token.pk]),
        ok=200,
        effect=_token_rotated,
    ),
    "accounts:organisation-tokens": Action(
        "get", lambda s, t: reverse("accounts:organisation_tokens", args=[s.world.bank.pk])
    ),
    "accounts:password": Action("get", _const("/accounts/password/")),
    "accounts:login-form": Action("get", _const("/accounts/login/")),
    "accounts:mfa-setup": Action("get", _const("/accounts/mfa/setup/")),
    "accounts:mfa-verify": Action("get", _const("/accounts/mfa/verify/")),
    "accounts:logout": Action("post", _const("/accounts/logout/")),
    "i18n:setlang": Action(
        "post", _const("/i18n/setlang/"), lambda s, t: {"language": "en", "next": "/"}
    ),
    "public:register": Action("get", _const("/register/")),
    "public:verify-lookup": Action("get", _const("/verify/")),
    "public:healthz": Action("get", _const("/healthz")),
    "public:readyz": Action("get", _const("/readyz")),
    "public:api-schema": Action("get", _const("/api/schema/"), api=True),
    "api:organisations": Action("get", _const("/api/organisations/"), api=True),
    "api:organisation-bank": Action("get", _org("bank", api=True), api=True),
    "api:organisation-other": Action("get", _org("other_bank", api=True), api=True),
    "api:assessments": Action("get", _const("/api/assessments/"), api=True),
    "api:assessments-create": Action(
        "post",
        _const("/api/assessments/"),
        lambda s, t: {"organisation": s.world.bank.pk, "certification_body": s.world.body.pk},
        api=True,
        ok=201,
        effect=_started,
    ),
    "api:certificates": Action("get", _const("/api/certificates/"), api=True),
    "hosts:list": Action("get", _const("/hosts/")),
    "hosts:agent": Action("get", _const("/hosts/agent/mamori-agent.pyz")),
    "assessments:assignment": Action("get", _const("/review/assignment/")),
    "assessments:assignment-set": Action(
        "post",
        _const("/review/assignment/"),
        lambda s, t: {"certification_body": s.world.body.pk, "rule": "queue"},
        effect=_assignment_set,
    ),
    "api:hosts": Action("get", _const("/api/hosts/"), api=True),
    "api:evidence-upload": Action(
        "post",
        _const("/api/evidence/"),
        lambda s, t: debian12_evidence(hostname="matrix-new", machine_id="3" * 32),
        api=True,
        ok=202,
        effect=_evidence_uploaded,
    ),
    "api:evidence-upload-status": Action(
        "get",
        lambda s, t: f"/api/evidence/uploads/{s.extra['bank_upload']}/",
        api=True,
    ),
    "organisations:members-bank": Action("get", _members("bank")),
    "organisations:members-other-bank": Action("get", _members("other_bank")),
    "organisations:members-body": Action("get", _members("body")),
    "organisations:members-post": Action(
        "post", _members("bank"), lambda s, t: {"username": "eve", "role": Role.BOARD_SIGNATORY}
    ),
    "organisations:add-member": Action(
        "post",
        _members("bank", "add/"),
        lambda s, t: {"mode": "existing", "username": "eve", "role": Role.APPLICANT_CONTRIBUTOR},
        effect=_invited("bank", Role.APPLICANT_CONTRIBUTOR),
    ),
    "organisations:add-scheme-owner": Action(
        "post",
        _members("bank", "add/"),
        lambda s, t: {"mode": "existing", "username": "eve", "role": Role.SCHEME_OWNER},
    ),
    "organisations:add-assessor": Action(
        "post",
        _members("body", "add/"),
        lambda s, t: {"mode": "existing", "username": "eve", "role": Role.ASSESSOR},
        effect=_invited("body", Role.ASSESSOR),
    ),
    "organisations:invitations": Action("get", _const("/invitations/")),
    "organisations:accept-invitation": Action(
        "post", _invitation(action="accept"), effect=_answered("accepted")
    ),
    "organisations:decline-invitation": Action(
        "post", _invitation(action="decline"), effect=_answered("declined")
    ),
    "organisations:cancel-invitation": Action(
        "post", _invitation(action="cancel"), effect=_answered("cancelled")
    ),
    "organisations:accept-as-assessor": Action("post", _invitation("assessor", "accept")),
    "organisations:accept-as-owner": Action("post", _invitation("owner", "accept")),
    "organisations:create-user": Action(
        "post",
        _members("bank", "add/"),
        lambda s, t: {
            "mode": "new",
            "username": "matrix-new",
            "display_name": "Matrix New",
            "email": "matrix-new@example.jp",
            "language": "ja",
            "role": Role.BOARD_SIGNATORY,
        },
        ok=200,
        effect=_user_created,
    ),
    "organisations:remove-member": Action(
        "post",
        _removal("contributor", "bank", Role.APPLICANT_CONTRIBUTOR),
        effect=_removed("contributor", "bank", Role.APPLICANT_CONTRIBUTOR),
    ),
    "organisations:remove-own-owner": Action(
        "post", _removal("owner", "secretariat", Role.SCHEME_OWNER)
    ),
    "organisations:create-form": Action("get", _const("/organisations/new/")),
    "organisations:create": Action(
        "post",
        _const("/organisations/new/"),
        lambda s, t: {
            "name_ja": "マトリクス株式会社",
            "name_en": "Matrix Ltd",
            "category": "it_vendor",
            "corporate_number": "",
            "country": "JP",
        },
        effect=_organisation_created,
    ),
    "plus:list": Action("get", _const("/plus/")),
    "plus:request-form": Action("get", _const("/plus/request/")),
    "plus:request": Action(
        "post", _const("/plus/request/"), lambda s, t: {"certificate": str(s.certificate.pk)}
    ),
    "api:plus-audits": Action("get", _const("/api/plus-audits/"), api=True),
    "admin:index": Action("get", _const("/admin/")),
    "admin:membership-changelist": Action("get", _const("/admin/organisations/membership/")),
    "admin:certificate-add": Action("get", _const("/admin/certificates/certificate/add/")),
    "admin:membership-add": Action(
        "post",
        _const("/admin/organisations/membership/add/"),
        lambda s, t: {
            "user": s.world.outsider.pk,
            "organisation": s.world.bank.pk,
            "role": Role.SCHEME_OWNER,
        },
    ),
    "admin:login": Action("get", _const("/admin/login/")),
}


# --- Running one cell --------------------------------------------------------------------------


def send(client: Client, action: Action, scene: Scene, target) -> Any:
    url = action.url(scene, target)
    data = action.data(scene, target) if action.data else None
    if action.method == "get":
        return client.get(url)
    if action.api:
        send_json = getattr(client, action.method)
        return send_json(url, json.dumps(data or {}), content_type="application/json")
    headers = {"HTTP_HX_REQUEST": "true"} if action.htmx else {}
    return client.post(url, data or {}, **headers)


def levels(response) -> set[int]:
    return {message.level for message in get_messages(response.wsgi_request)}


def check_cell(scene: Scene, role: str, action: Action, target, expected: str, secret: str):
    response = send(scene.client(role, api=action.api), action, scene, target)
    status = response.status_code
    what = f"{role} got {status}, expected {expected}"
    if expected == "done":
        assert status == action.ok, what
        if not action.api and status == 302:
            assert message_levels.ERROR not in levels(response), what
            assert message_levels.SUCCESS in levels(response) or not action.message, what
        assert action.effect is not None
        action.effect(scene, target, scene.user(role))
        return
    if expected == "no":
        assert status == 302, what
        assert message_levels.ERROR in levels(response), f"{what}: no error message"
    elif expected == "login":
        assert status == 302, what
        assert response.url.startswith("/accounts/login/?next="), response.url
    else:
        assert status == int(expected), what
        if status == 404 and secret and secret not in response.request["PATH_INFO"]:
            # The 404 must not tell an outsider what is behind the URL (beyond the URL itself).
            assert secret not in response.content.decode(), "the 404 names the object"
        if action.api and status in (400, 401, 403, 404, 409):
            assert response.json()["detail"], "an API refusal always says why"
    assert fingerprint() == scene.fingerprint, f"{what}, but something was written"


def _cells(table: dict[str, str]) -> list:
    return [
        pytest.param(name, role, outcome, id=f"{name}-{role}")
        for name, cells in table.items()
        for role, outcome in row(cells).items()
    ]


ASSESSMENT_TABLE = {
    **{(obj, action): VISIBLE[obj] for action in READ_PAGES for obj in OBJECTS},
    **{
        (obj, action): VISIBLE[obj].replace("login", "401")
        for action in READ_API
        for obj in OBJECTS
    },
    **{(obj, "advice:pdf"): cells for obj, cells in ACTION_ROWS["advice"].items()},
    **{(obj, action): cells for action, rows in ACTION_ROWS.items() for obj, cells in rows.items()},
}
assert {action for _obj, action in ASSESSMENT_TABLE} == set(ASSESSMENT_ACTIONS)
assert all((obj, action) in ASSESSMENT_TABLE for obj in OBJECTS for action in ASSESSMENT_ACTIONS)


@pytest.mark.parametrize(
    ("obj", "action", "role", "expected"),
    [
        pytest.param(obj, action, role, outcome, id=f"{obj}-{action}-{role}")
        for (obj, action), cells in ASSESSMENT_TABLE.items()
        for role, outcome in row(cells).items()
    ],
)
def test_assessment_matrix(scene, obj, action, role, expected):
    assessment = scene.objects[obj]
    check_cell(scene, role, ASSESSMENT_ACTIONS[action], assessment, expected, assessment.reference)


@pytest.mark.parametrize(("action", "role", "expected"), _cells(OBJECT_ROWS))
def test_evidence_and_certificate_matrix(scene, action, role, expected):
    secret = scene.certificate.number if action.startswith("certificate") else ""
    if action.startswith("evidence"):
        secret = scene.attachment.original_name
    if action in ("evidence:delete", "evidence:delete-via-other"):
        secret = scene.extra["draft_attachment"].original_name
    if action.startswith(("host", "api:host")):
        secret = OTHER_HOST if "other" in action else BANK_HOST
    if action.startswith(("plus", "api:plus")):
        secret = PLUS_DEVICE
    check_cell(scene, role, OBJECT_ACTIONS[action], None, expected, secret)


@pytest.mark.parametrize(("action", "role", "expected"), _cells(GLOBAL_ROWS))
def test_global_matrix(scene, action, role, expected):
    secret = {
        "organisations:other-bank": "Other Bank",
        "organisations:body": "Body A",
        "organisations:working-group": "Test working group",
        "organisations:members-bank": "Test Bank",
        "organisations:members-other-bank": "Other Bank",
        "organisations:members-body": "Body A",
        "organisations:add-member": "Test Bank",
        "organisations:add-assessor": "Body A",
        "organisations:remove-member": "Test Bank",
        "organisations:remove-own-owner": "Secretariat",
        "organisations:accept-invitation": "Test Bank",
        "organisations:decline-invitation": "Test Bank",
        "organisations:cancel-invitation": "Test Bank",
        "organisations:accept-as-assessor": "Test Bank",
        "organisations:accept-as-owner": "Test Bank",
        "api:organisation-other": "Other Bank",
    }.get(action, "")
    check_cell(scene, role, GLOBAL_ACTIONS[action], None, expected, secret)


# --- Conflict of interest: conrad, an assessor of body A who belongs to the bank -----------------
# Body A marks the bank's submissions, so conrad may never take one over, mark, clarify or decide
# it, nor decide an appeal on it: each is refused with the reason ("coi": a refusal naming the
# conflict of interest, nothing written), on the pages, their autosave and the API with a token
# of body A (whose access does not even show his bank membership). Same-body assessors without
# the conflict (abe: the "sba" column above) take these over ("take": done).
COI_ACTIONS = (
    "take",
    "start_review",
    "mark",
    "mark:htmx",
    "mark_remaining",
    "clarify",
    "decide",
    "appeal:decide",
    "api:marks",
    "api:clarification",
    "api:decision",
    "api:appeal-decision",
)
CONFLICT_ROWS = {
    **{(obj, action): "coi" for obj in BANK_SUBMISSIONS for action in COI_ACTIONS},
    # A decided round says so first, whoever asks: the state is the state, nothing written
    **{(obj, "decide"): "no" for obj in ("passed", "failed")},
    **{(obj, "api:decision"): "409" for obj in ("passed", "failed")},
}
COI_REASON = "You are a member of this organisation, so you cannot review its assessments"


@pytest.mark.parametrize(
    ("obj", "action", "expected"),
    [
        pytest.param(obj, action, outcome, id=f"{obj}-{action}-member_assessor")
        for (obj, action), outcome in CONFLICT_ROWS.items()
    ],
)
def test_conflict_of_interest_matrix(scene, obj, action, expected):
    spec = ASSESSMENT_ACTIONS[action]
    client = new_client()
    if spec.api:
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {scene.extra['conrad_token']}"
    else:
        client.cookies[settings.SESSION_COOKIE_NAME] = scene.extra["conrad_session"]
    response = send(client, spec, scene, scene.objects[obj])
    status = response.status_code
    if expected == "coi":
        if status == 302:
            reasons = [str(m) for m in get_messages(response.wsgi_request)]
            assert any(COI_REASON in reason for reason in reasons), reasons
        else:
            assert status == 403, status
            body = response.json()["detail"] if spec.api else response.content.decode()
            assert COI_REASON in body
    elif expected == "no":
        assert status == 302, status
        assert message_levels.ERROR in levels(response)
    else:
        assert status == int(expected), status
    assert fingerprint() == scene.fingerprint, f"{action} on {obj} wrote something"


@pytest.mark.parametrize(
    ("action", "role", "expected"),
    [
        pytest.param(action, role, outcome, id=f"GET-{action}-{role}")
        for action in POST_ONLY
        for role, outcome in row(GET_ON_POST_ONLY).items()
    ],
)
def test_get_never_acts(scene, action, role, expected):
    post = ASSESSMENT_ACTIONS.get(action) or OBJECT_ACTIONS.get(action) or GLOBAL_ACTIONS[action]
    as_get = Action("get", post.url)
    check_cell(scene, role, as_get, scene.objects["submitted"], expected, "")


# --- Lists show exactly what the role may see ---------------------------------------------------


def _names(text: str) -> set[str]:
    return set(text.split())


@pytest.mark.parametrize("role", list(LISTS))
def test_lists_show_exactly_what_the_role_may_see(scene, role):
    page_names, api_names, org_names, certificate_names = (_names(t) for t in LISTS[role])
    page = scene.client(role, api=False)
    api = scene.client(role, api=True)
    number = scene.certificate.number

    listed = page.get("/assessments/").content.decode()
    for name, assessment in scene.objects.items():
        link = reverse("assessments:detail", args=[assessment.pk])
        assert (link in listed) == (name in page_names), f"{name} on the assessments page"

    ids = {item["id"] for item in api.get("/api/assessments/?limit=100").json()["results"]}
    assert ids == {scene.objects[name].pk for name in api_names}

    organisations = page.get("/organisations/").content.decode()
    for name, organisation in scene.organisations.items():
        link = reverse("organisations:detail", args=[organisation.pk])
        assert (link in organisations) == (name in org_names), f"{name} on the organisations page"
    ids = {item["id"] for item in api.get("/api/organisations/?limit=100").json()["results"]}
    assert ids == {scene.organisations[name].pk for name in org_names}

    certificates = page.get("/certificates/").content.decode()
    assert (number in certificates) == bool(certificate_names)
    numbers = {item["number"] for item in api.get("/api/certificates/").json()["results"]}
    assert numbers == ({number} if certificate_names else set())


# --- Token scope and token kind -----------------------------------------------------------------


def _mia(scene: Scene, organisation: str | None) -> Client:
    client = new_client()
    if organisation is None:
        client.cookies[settings.SESSION_COOKIE_NAME] = scene.extra["mia_session"]
    else:
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {scene.extra['mia_tokens'][organisation]}"
    return client


@pytest.mark.parametrize(("token_for", "hidden"), [("bank", "other"), ("other_bank", "submitted")])
def test_a_token_sees_only_its_own_organisation(scene, token_for, hidden):
    """Mia administers both banks. With a token for one bank, the other bank's assessment,
    answers, certificate and organisation do not exist (404) and cannot be acted on."""
    api = _mia(scene, token_for)
    visible = "submitted" if hidden == "other" else "other"
    hidden_pk = scene.objects[hidden].pk
    other_org = scene.world.other_bank if token_for == "bank" else scene.world.bank
    own_org = scene.world.bank if token_for == "bank" else scene.world.other_bank

    assert api.get(f"/api/assessments/{scene.objects[visible].pk}").status_code == 200
    for response in (
        api.get(f"/api/assessments/{hidden_pk}"),
        api.get(f"/api/assessments/{hidden_pk}/answers"),
        api.put(
            f"/api/assessments/{hidden_pk}/answers/A4.2",
            json.dumps({"value": "no", "version": 1}),
            content_type="application/json",
        ),
        api.post(f"/api/assessments/{hidden_pk}/submit"),
        api.get(f"/api/organisations/{other_org.pk}"),
    ):
        assert response.status_code == 404, response.content
    ids = {item["id"] for item in api.get("/api/assessments/?limit=100").json()["results"]}
    assert hidden_pk not in ids
    assert scene.objects[visible].pk in ids
    assert {o["id"] for o in api.get("/api/organisations/").json()["results"]} == {own_org.pk}
    numbers = {c["number"] for c in api.get("/api/certificates/").json()["results"]}
    assert numbers == ({scene.certificate.number} if token_for == "bank" else set())
    # Starting an assessment for the organisation the token is not for is refused too.
    created = api.post(
        "/api/assessments/",
        json.dumps({"organisation": other_org.pk, "certification_body": scene.world.body.pk}),
        content_type="application/json",
    )
    assert created.status_code == 400
    assert fingerprint() == scene.fingerprint


def test_the_same_user_in_the_browser_sees_both_banks(scene):
    """The 404s above come from the token's scope, not from Mia's memberships."""
    page = _mia(scene, None)
    for name in ("submitted", "other"):
        url = reverse("assessments:detail", args=[scene.objects[name].pk])
        assert page.get(url).status_code == 200


AGENT_REQUESTS = {
    "organisations": ("get", "/api/organisations/"),
    "organisation": ("get", "/api/organisations/{bank}"),
    "assessments": ("get", "/api/assessments/"),
    "assessments-create": ("post", "/api/assessments/"),
    "assessment": ("get", "/api/assessments/{draft}"),
    "answers": ("get", "/api/assessments/{draft}/answers"),
    "answer": ("put", "/api/assessments/{draft}/answers/A4.2"),
    "submit": ("post", "/api/assessments/{draft}/submit"),
    "respond": ("post", "/api/assessments/{clarification}/respond"),
    "resubmit": ("post", "/api/assessments/{failed}/resubmit"),
    "marks": ("post", "/api/assessments/{submitted}/marks"),
    "clarification": ("post", "/api/assessments/{in_review}/clarification"),
    "decision": ("post", "/api/assessments/{in_review}/decision"),
    "appeal": ("post", "/api/assessments/{failed}/appeal"),
    "appeal-decision": ("post", "/api/assessments/{failed}/appeal-decision"),
    "certificates": ("get", "/api/certificates/"),
    "certificate": ("get", "/api/certificates/{number}"),
    "certificate-assurance": ("get", "/api/certificates/{number}/assurance"),
    "hosts": ("get", "/api/hosts/"),
    "host": ("get", "/api/hosts/{host}"),
    "host-evidence": ("get", "/api/hosts/{host}/evidence"),
    "plus-audits": ("get", "/api/plus-audits/"),
}


@pytest.mark.parametrize("endpoint", list(AGENT_REQUESTS))
def test_agent_tokens_are_refused_everywhere_but_evidence_upload(scene, endpoint):
    method, template = AGENT_REQUESTS[endpoint]
    url = template.format(
        bank=scene.world.bank.pk,
        number=scene.certificate.number,
        host=scene.extra["hosts"]["bank"].pk,
        **{name: assessment.pk for name, assessment in scene.objects.items()},
    )
    # Bodies that would work with alice's user token: only the token's kind refuses them.
    body = {
        "answer": {"value": "no", "version": scene.answer_targets["draft"][2]},
        "assessments-create": {
            "organisation": scene.world.bank.pk,
            "certification_body": scene.world.body.pk,
        },
    }.get(endpoint, {})
    client = new_client(HTTP_AUTHORIZATION=f"Token {scene.extra['agent_token']}")
    if method == "get":
        response = client.get(url)
    else:
        send_json = getattr(client, method)
        response = send_json(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 403
    assert response.json()["detail"] == "Agent tokens may only upload evidence."
    assert fingerprint() == scene.fingerprint


def test_an_agent_token_uploads_evidence(scene):
    """...which is the one thing it may do: for its own organisation."""
    client = new_client(HTTP_AUTHORIZATION=f"Token {scene.extra['agent_token']}")
    evidence = debian12_evidence(hostname="agent-upload", machine_id="4" * 32)
    response = client.post("/api/evidence/", json.dumps(evidence), content_type="application/json")
    assert response.status_code == 202, response.content
    verification.evaluate_upload(response.json()["upload"])  # what the queued task does
    status = client.get(response["Location"])
    assert status.status_code == 200, status.content
    host = Host.objects.get(pk=status.json()["host"])
    assert (host.hostname, host.organisation) == ("agent-upload", scene.world.bank)
    assert Evidence.objects.get(pk=status.json()["evidence"]).uploaded_by.kind == TokenKind.AGENT
    # The same token reads its own uploads' status, and only those.
    other = client.get(f"/api/evidence/uploads/{scene.extra['bank_upload']}/")
    assert other.status_code == 404


# Which hosts each role finds on the hosts page and in the API (the scene's two hosts).
HOST_LISTS = {
    "applicant_admin": {"bank"},
    "contributor": {"bank"},
    "signatory": {"bank"},
    "assigned_assessor": {"bank"},
    "same_body_assessor": {"bank"},
    "other_body_assessor": {"other"},
    "scheme_owner": set(),
    "other_org_admin": {"other"},
    "outsider": set(),
}


@pytest.mark.parametrize("role", list(HOST_LISTS))
def test_host_lists_show_exactly_what_the_role_may_see(scene, role):
    expected = HOST_LISTS[role]
    hosts = scene.extra["hosts"]
    page = scene.client(role, api=False).get("/hosts/").content.decode()
    for name, host in hosts.items():
        link = reverse("verification:detail", args=[host.pk])
        assert (link in page) == (name in expected), f"{name} on the hosts page"
    listed = scene.client(role, api=True).get("/api/hosts/?limit=100").json()["results"]
    assert {item["id"] for item in listed} == {hosts[name].pk for name in expected}


# --- The matrix covers every URL ------------------------------------------------------------------


def _routes(patterns, prefix: str = "") -> set[str]:
    routes = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern).removeprefix("^")
        if isinstance(pattern, URLResolver):
            routes |= _routes(pattern.url_patterns, route)
        else:
            routes.add(route)
    return routes


# The Django admin's many URLs all pass one guard, ``MamoriAdminSite.admin_view``: the matrix
# takes them as one block, covered by the ``admin:`` rows above.
ADMIN_BLOCK = "admin/"


def _block(route: str) -> str:
    return ADMIN_BLOCK if route.startswith(ADMIN_BLOCK) else route


def test_every_url_is_in_the_matrix(scene):
    """A new page or endpoint fails here until the matrix says who may use it. (The API's
    format-suffix variants, e.g. ``/api/assessments/1.json``, reach the same views.)"""
    every = {
        _block(route)
        for route in _routes(get_resolver().url_patterns)
        if "(?P<format>" not in route
    }
    submitted = scene.objects["submitted"]
    covered = {
        _block(resolve(action.url(scene, submitted).split("?")[0]).route)
        for action in (
            *ASSESSMENT_ACTIONS.values(),
            *OBJECT_ACTIONS.values(),
            *GLOBAL_ACTIONS.values(),
        )
    }
    # The supply-chain pages have their own matrix, which checks that it covers them all
    # (tests/supplychain/test_access_matrix.py::test_every_supply_url_is_in_the_matrix); so do
    # the early-warning pages and API, in the same columns
    # (test_earlywarning_matrix.py::test_every_earlywarning_url_is_in_the_matrix), and the
    # board-reporting pages, in the roles of their issue
    # (test_reporting_matrix.py::test_every_reporting_url_is_in_the_matrix).
    every = {
        route
        for route in every
        if not route.startswith(
            ("supply/", "earlywarning/", "api/earlywarning/", "reporting/", "api/reporting/")
        )
    }
    assert every - covered == set()
