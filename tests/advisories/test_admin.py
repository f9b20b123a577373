"""Staff see the advisory store in the admin, read-only: an edit there would bypass the import
(no generation bump, no re-match) and be undone by the next one."""

from __future__ import annotations

import pytest

from mamori.advisories.models import Advisory, EolCycle, ImportRun, KevEntry
from tests.advisories.conftest import run_import
from tests.conftest import client_for, make_user
from tests.datafiles import DISTRO_INFO, KEV_FILE, UBUNTU

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    user = make_user("stan", mfa=True)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return client_for(user)


def test_every_page_opens_and_nothing_can_be_changed(staff_client):
    assert run_import(UBUNTU, KEV_FILE, DISTRO_INFO).code == 0
    objects = {
        "advisory": Advisory.objects.get(osv_id="USN-6885-1"),
        "keventry": KevEntry.objects.first(),
        "eolcycle": EolCycle.objects.first(),
        "importrun": ImportRun.objects.get(),
    }
    for name, item in objects.items():
        listing = staff_client.get(f"/admin/advisories/{name}/")
        assert listing.status_code == 200, name
        page = staff_client.get(f"/admin/advisories/{name}/{item.pk}/change/")
        assert page.status_code == 200, name
        assert 'name="_save"' not in page.content.decode(), name
        assert staff_client.get(f"/admin/advisories/{name}/add/").status_code == 403, name
        assert staff_client.post(f"/admin/advisories/{name}/{item.pk}/delete/").status_code == 403
    # The advisory's page lists its affected packages.
    page = staff_client.get(f"/admin/advisories/advisory/{objects['advisory'].pk}/change/")
    assert page.content.decode().count("Ubuntu:2") >= 3
    search = staff_client.get("/admin/advisories/advisory/", {"q": "openssh"})
    assert "USN-6859-1" in search.content.decode()
