"""The private file store (evidence, supplier evidence, generated PDFs): Django's file system
storage, except that a file appears under its name only once it is completely written.

Django writes a file in place, chunk by chunk; when the disk fills up (or a file-size limit
is hit) the write fails half-way and the partial file stays behind under its real name, an
orphan no row points to. Here a file is written under a temporary name in its folder
(``.partial-…``), then linked to a free name of its own; a failed write removes the temporary
file, so nothing is left behind under either name. A process killed mid-write can still leave
a ``.partial-…`` file, which no row ever names.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid

from django.core.files.storage import FileSystemStorage

PARTIAL_PREFIX = ".partial-"


class PrivateFileStorage(FileSystemStorage):
    def _save(self, name, content):
        folder = posixpath.dirname(name)
        partial = posixpath.join(folder, f"{PARTIAL_PREFIX}{uuid.uuid4().hex}")
        try:
            # Django's own writing (folders, permissions, group, moving a temporary upload),
            # under a name no one else uses.
            partial = super()._save(partial, content)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(self.path(partial))
            raise
        try:
            while True:
                try:
                    # A link, not a rename: it fails rather than replace a file that took the
                    # name meanwhile.
                    os.link(self.path(partial), self.path(name))
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
        finally:
            with contextlib.suppress(OSError):
                os.remove(self.path(partial))
        return os.path.relpath(self.path(name), self.location).replace("\\", "/")
