"""How the feed readers report problems (pure logic, no Django imports).

A feed is refused whole (``FeedError``, ``SourceError``) when nothing in it can be used: an
unknown report type, no header, no address column, a file that cannot be fetched. A row that
cannot be used is yielded as a ``RowError`` in place of the row, and reading carries on with the
next one, so one bad line never costs the rest of a report.

Every message is an English template with named parameters (``%(line)s``), marked with
``gettext_noop`` so that ``makemessages`` collects it; the Japanese translations are in the
project's ``django.po``. This package stays free of Django: ``str()`` and ``message`` give the
English text, and the Django layer shows a message in the reader's language with
``problem.render(gettext)``. A value quoted from a feed is shortened and has its control
characters escaped (``shown``), so a hostile row cannot put a terminal escape, a new line or a
megabyte into a log line or a page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Translate = Callable[[str], str]

# Longest value (in characters) a message quotes; the rest is cut and marked with "…".
SHOWN_CHARACTERS = 60


def gettext_noop(message: str) -> str:
    """Marks ``message`` for translation without translating it here (Django's name for this,
    so ``makemessages`` finds the strings; the Django layer translates them when it shows
    them)."""
    return message


def _untranslated(message: str) -> str:
    return message


def escaped(value: str, limit: int | None = SHOWN_CHARACTERS) -> str:
    """``value`` shortened to ``limit`` characters ("…" marks a cut; None keeps it whole, as
    for a path or URL the reader gave), anything unprintable (control characters, NUL,
    bidirectional overrides) escaped."""
    cut = limit is not None and len(value) > limit
    text = value[:limit] if cut else value
    escaped_text = "".join(
        character if character.isprintable() else character.encode("unicode_escape").decode()
        for character in text
    )
    return escaped_text + ("…" if cut else "")


def shown(value: str) -> str:
    """``value`` as a message quotes it: ``escaped`` and in single quotes."""
    return f"'{escaped(value)}'"


class FeedError(Exception):
    """A feed that cannot be read at all. ``str()`` is one English sentence naming the
    problem, after the file or URL it is about when the reader knows it ("scan_rdp.csv: the
    header has no 'ip' column, …"); ``render(gettext)`` is the same in the active language."""

    def __init__(self, template: str, **params: object):
        self.template = template
        self.params = params
        self.source = ""
        super().__init__(template % params)

    def about(self, source: str) -> FeedError:
        """This error, naming ``source`` unless it already names one."""
        if not self.source:
            self.source = source
        return self

    def render(self, translate: Translate = _untranslated) -> str:
        text = translate(self.template) % self.params
        return f"{self.source}: {text}" if self.source else text

    def __str__(self) -> str:
        return self.render()


class SourceError(FeedError):
    """A feed's location that cannot be read: missing, too big, an HTTP error or no answer.
    Its message names the location itself."""

    def about(self, source: str) -> FeedError:
        return self


LINE_PREFIX = gettext_noop("line %(line)s: %(reason)s")


@dataclass(frozen=True, eq=True)
class RowError:
    """A row that was skipped: the physical line it starts on (1 is the file's first line)
    and why. ``message`` is "line 7: the timestamp 'x' is not a date and time"; a caller that
    knows the file name writes ``f"{name}:{error.line}: {error.reason}"``."""

    line: int
    template: str
    params: Mapping[str, object]

    @property
    def reason(self) -> str:
        return self.template % self.params

    @property
    def message(self) -> str:
        return self.render()

    def render(self, translate: Translate = _untranslated) -> str:
        reason = translate(self.template) % self.params
        return translate(LINE_PREFIX) % {"line": self.line, "reason": reason}

    def __str__(self) -> str:
        return self.message
