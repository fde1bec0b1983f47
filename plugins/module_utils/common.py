# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared, dependency-free helpers. Private to the apikeys.rotation collection."""

from __future__ import annotations

import hashlib
import re
import typing as t

FINGERPRINT_PREFIX = "sha256:"
# a fingerprint as an option gives it: the short form this collection shows, up to the full SHA-256
FINGERPRINT_RE = re.compile(r"^sha256:[0-9a-f]{12,64}$")


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


def fingerprints_match(expected: t.Optional[str], reported: t.Any) -> bool:
    """Equal fingerprints; a full 64-hex SHA-256 also matches its 12-hex short form."""
    if not isinstance(expected, str) or not isinstance(reported, str):
        return False
    left, right = expected.strip().lower(), reported.strip().lower()
    if not FINGERPRINT_RE.match(left) or not FINGERPRINT_RE.match(right):
        return False
    shorter, longer = sorted((left, right), key=len)
    return longer.startswith(shorter)


def checked_fingerprint(given: t.Optional[str], option: str, required: bool = False) -> str:
    """A fingerprint option, lower-cased; empty when not given (and not ``required``).

    A malformed one fails before anything is read or written: the check it guards must never be silently off.
    """
    value = (given or "").strip().lower()
    if (value or required) and not FINGERPRINT_RE.match(value):
        raise RotationError("%s must be sha256: followed by 12 (or 64) hex digits, got %s. Nothing was changed."
                            % (option, _shown_fingerprint(given or "")))
    return value


def _shown_fingerprint(given: str) -> str:
    """A refused fingerprint option as a message may show it: only what has a fingerprint's shape.

    Anything else may be a key pasted into the wrong option, so only its length is told.
    """
    if given.strip().lower().startswith(FINGERPRINT_PREFIX) and len(given.strip()) <= len(FINGERPRINT_PREFIX) + 64:
        return repr(given)
    return "a value of %d characters that does not look like a fingerprint (not shown)" % len(given)


_URL_RE = re.compile(r"^(?P<scheme>https?)://(?:(?P<userinfo>[^@/?#\s]*)@)?(?P<host>\[[^\]/]+\]|[^:/?#\s]+)(?::\d+)?(?:[/?#].*)?$",
                     re.I)


def shown_url(url: t.Any) -> str:
    """A URL as messages and records show it: any ``user:password@`` removed."""
    text = str(url if url is not None else "")
    return re.sub(r"^(\w+://)[^@/?#\s]*@", r"\1", text.strip())


def url_userinfo(url: t.Any) -> t.Optional[str]:
    """The ``user:password`` of a URL, to mask in a module's results (its invocation included); None without."""
    match = re.match(r"^\w+://([^@/?#\s]*)@", str(url if url is not None else "").strip())
    return match.group(1) if match and match.group(1) else None


def url_host_kind(host: str) -> str:
    """``loopback``, ``link-local`` (cloud metadata addresses live there) or ``other``."""
    import ipaddress  # only the tasks that check a URL pay for it

    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return "link-local" if name in METADATA_HOSTS else "other"
    mapped = getattr(address, "ipv4_mapped", None) or address
    if mapped.is_loopback:
        return "loopback"
    if mapped.is_link_local:
        return "link-local"
    return "other"


#: cloud metadata services by name (their addresses are link-local)
METADATA_HOSTS = ("metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal")


def check_url(url: t.Any, option: str, allow_insecure_http: bool = False) -> str:
    """A base URL or health URL that may be sent a credential: ``https://``, or ``http://`` on loopback only
    (unless ``allow_insecure_http``), never a link-local or cloud metadata address. Messages never show userinfo."""
    text = str(url if url is not None else "").strip()
    match = _URL_RE.match(text)
    if not match:
        raise RotationError("%s must be an https:// URL, got %r" % (option, shown_url(text)))
    kind = url_host_kind(match.group("host"))
    if kind == "link-local":
        raise RotationError("%s points at a link-local address (%s), where cloud metadata services answer: refused, "
                            "so that no credential is sent there" % (option, shown_url(text)))
    if match.group("scheme").lower() == "http" and kind != "loopback" and not allow_insecure_http:
        raise RotationError("%s must be https:// (got %s): plain http:// is accepted only on this host's loopback "
                            "address, or with allow_insecure_http=true" % (option, shown_url(text)))
    return text


def vault_ref_spec(version: bool = True) -> t.Dict[str, t.Any]:
    """The options of a reference to one field of a KV v2 secret (``api_key_from``, ``stage_in``)."""
    options: t.Dict[str, t.Any] = dict(
        mount=dict(type="str", default="secret"),
        path=dict(type="str", required=True),
        field=dict(type="str", default="api_key", no_log=False),
    )
    if version:
        options["version"] = dict(type="int")
    # a reference (where a key is kept), not a key: nothing to hide
    return dict(type="dict", options=options, no_log=False)
