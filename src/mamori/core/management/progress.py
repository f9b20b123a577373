"""Progress of a long command on a terminal: the step it is in and a byte count (tqdm).
Nothing is shown when the output is not a terminal (cron, a pipe, a test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

from mamori.core.backup import Progress


@contextmanager
def terminal_progress(stream: TextIO, *, enabled: bool = True) -> Iterator[Progress]:
    try:
        is_terminal = stream.isatty()
    except (AttributeError, ValueError):
        is_terminal = False
    if not (enabled and is_terminal):
        yield Progress()
        return
    bar = tqdm(total=0, unit="B", unit_scale=True, file=stream, leave=False, **_size(stream))

    def step(text: str) -> None:
        bar.set_description(text)
        bar.reset(total=0)

    def total(size: int) -> None:
        bar.reset(total=size)

    try:
        yield Progress(step=step, bytes_total=total, bytes_done=bar.update)
    finally:
        bar.close()


def _size(stream: TextIO) -> dict[str, int]:
    """80x24 where the terminal reports no size: a fresh pseudo-terminal says 0x0, and tqdm
    then draws nothing at all."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return {"ncols": 80, "nrows": 24}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}
