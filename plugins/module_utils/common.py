# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared, dependency-free helpers. Private to the apikeys.rotation collection."""

from __future__ import annotations

import hashlib
import typing as t

FINGERPRINT_PREFIX = "sha256:"


def fingerprint(value: t.Optional[str]) -> t.Optional[str]:
    """Return the public fingerprint of a secret: ``sha256:`` + 12 hex chars.

    The only form in which this collection ever shows a secret value.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return FINGERPRINT_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class RotationError(Exception):
    """The one exception type modules catch and turn into ``fail_json``.

    ``message`` must never contain a secret value; ``details`` is merged into
    the failure result and must hold only ids, fingerprints and statuses.
    """

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message
