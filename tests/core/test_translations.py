"""Japanese is the default language: every interface string must have a real translation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import translation

import mamori

PO = Path(mamori.__file__).parent / "locale" / "ja" / "LC_MESSAGES" / "django.po"


def test_every_message_is_translated_and_none_is_fuzzy():
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is missing; `make install` installs it"
    result = subprocess.run(
        [msgfmt, "--check", "--statistics", "-o", "/dev/null", str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "fuzzy" not in result.stderr, result.stderr
    assert "untranslated" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("english", "japanese"),
    [
        ("Sign in", "ログイン"),
        ("Public register", "公開登録簿"),
        ("Certification body", "認定機関"),
    ],
)
def test_the_compiled_catalogue_is_in_use(english, japanese):
    with translation.override("ja"):
        assert translation.gettext(english) == japanese
