"""What verification does with evidence, in parts:

- ``ingest``: accepting an agent's upload (limits, decoding, schema, duplicates by digest,
  evaluating, storing) — ``accept_upload(AgentUpload(...))``;
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
    UnsupportedEncoding,
    UploadOutcome,
    accept_upload,
    digest_of,
    host_facts,
    parse_evidence,
    read_body,
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
    "RematchOutcome",
    "UnsupportedEncoding",
    "UploadOutcome",
    "accept_upload",
    "catalogue_settings_for",
    "continuous_assurance",
    "digest_of",
    "evaluate_evidence",
    "host_facts",
    "hosts_with_keys",
    "parse_evidence",
    "read_body",
    "rematch_advisories",
    "rematch_all",
    "rematch_hosts",
    "set_in_scope",
    "target_digest",
    "targets_with_keys",
    "with_newest_evaluations",
]
