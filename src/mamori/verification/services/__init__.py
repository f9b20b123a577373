"""What verification does with evidence, in parts:

- ``ingest``: accepting an agent's upload: the request receives and stores it
  (``receive_upload``: limits, decoding, duplicates by digest), a worker checks, evaluates and
  stores it (``evaluate_upload``); ``accept_upload(AgentUpload(...))`` does both at once;
- ``evaluations``: evaluating evidence against the catalogue's thresholds and storing the
  evaluation (shared by the upload and the re-match);
- ``targets``: the distinct package versions a host's latest evidence makes matching look up;
- ``rematch``: re-matching the fleet after the advisories changed;
- ``assurance``: the continuous-assurance figures beside a certificate;
- ``hosts``: reading collections with their newest evaluation, and a host's scope.

The names callers use are importable from here (``services.accept_upload``).
"""

from mamori.verification.services.assurance import Assurance, continuous_assurance
from mamori.verification.services.evaluations import (
    CatalogueSettings,
    Evaluated,
    EvaluationFailed,
    catalogue_settings_for,
    evaluate_evidence,
)
from mamori.verification.services.hosts import set_in_scope, with_newest_evaluations
from mamori.verification.services.ingest import (
    AgentUpload,
    EvidenceRejected,
    EvidenceTooLarge,
    HostFacts,
    Receipt,
    UnsupportedEncoding,
    UploadOutcome,
    accept_upload,
    check_document,
    digest_of,
    evaluate_upload,
    host_facts,
    load_document,
    parse_evidence,
    read_body,
    receive_upload,
)
from mamori.verification.services.rematch import (
    RematchOutcome,
    rematch_advisories,
    rematch_all,
    rematch_hosts,
)
from mamori.verification.services.targets import hosts_with_keys, target_digest, targets_with_keys

__all__ = [
    "AgentUpload",
    "Assurance",
    "CatalogueSettings",
    "Evaluated",
    "EvaluationFailed",
    "EvidenceRejected",
    "EvidenceTooLarge",
    "HostFacts",
    "Receipt",
    "RematchOutcome",
    "UnsupportedEncoding",
    "UploadOutcome",
    "accept_upload",
    "catalogue_settings_for",
    "check_document",
    "continuous_assurance",
    "digest_of",
    "evaluate_evidence",
    "evaluate_upload",
    "host_facts",
    "hosts_with_keys",
    "load_document",
    "parse_evidence",
    "read_body",
    "receive_upload",
    "rematch_advisories",
    "rematch_all",
    "rematch_hosts",
    "set_in_scope",
    "target_digest",
    "targets_with_keys",
    "with_newest_evaluations",
]
