"""Errors that business logic raises and every interface (page, API, CLI) reports clearly."""

from __future__ import annotations


class MamoriError(Exception):
    """A refused request with a translated, user-facing reason and the HTTP status to answer."""

    status = 400
    code = "invalid"

    def __init__(self, message, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotAllowed(MamoriError):
    """The user may see the object but not do this to it."""

    status = 403
    code = "not_allowed"


class WrongState(MamoriError):
    """The object is not in a state that allows this (e.g. editing a submitted assessment)."""

    status = 409
    code = "wrong_state"


class Conflict(MamoriError):
    """Someone else changed the object since the client read it."""

    status = 409
    code = "conflict"


def add_to_form(form, error: MamoriError) -> None:
    """A refusal shown on the form: on its field when the form has that field, else above it."""
    form.add_error(error.field if error.field in form.fields else None, error.message)
