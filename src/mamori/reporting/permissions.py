"""Who may do what in board reporting. Views, the API and services ask here; seeing a pack is
``BoardPack.objects.visible_to`` (everyone else gets 404).

- An organisation's board members and administrators read its packs and make one for any
  period; its administrators name the cyber-risk owner (a board member); only that owner signs.
- Its members (contributors too) see where they stand among their peers.
- The scheme owner and observers (supervisors) see the sector dashboard, never one
  organisation's pack or figures.
"""

from __future__ import annotations

from mamori.organisations.access import Access
from mamori.organisations.models import APPLICANT_ROLES, Role

PACK_READERS = frozenset({Role.APPLICANT_ADMIN, Role.BOARD_SIGNATORY})
SECTOR_READERS = frozenset({Role.SCHEME_OWNER, Role.OBSERVER})


def pack_organisation_ids(access: Access) -> frozenset[int]:
    return access.organisations_with(PACK_READERS)


def can_read_packs(access: Access, organisation_id: int) -> bool:
    return organisation_id in pack_organisation_ids(access)


def can_name_owner(access: Access, organisation_id: int) -> bool:
    return access.has_role(organisation_id, Role.APPLICANT_ADMIN)


def can_see_peers(access: Access, organisation_id: int) -> bool:
    return access.has_role(organisation_id, *APPLICANT_ROLES)


def reporting_organisation_ids(access: Access) -> frozenset[int]:
    """The organisations whose reporting pages the viewer opens."""
    return access.organisations_with(APPLICANT_ROLES)


def can_read_sector(access: Access) -> bool:
    return bool(access.organisations_with(SECTOR_READERS))
