# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault / OpenBao KV v2 access: connection options, auth methods, retries, errors. Private to the apikeys.rotation collection.

Everything a Vault module needs lives here, so the modules stay thin:

* ``vault_argument_spec()`` -- the connection options, defined once (documented once
  in the ``apikeys.rotation.vault`` doc fragment);
* ``AUTH_METHODS`` -- ``token``, ``approle`` and ``jwt`` as small classes with
  ``validate()`` and ``authenticate(connection)``;
* ``VaultConnection`` -- an hvac client with bounded retries (412 and 5xx) that turns
  every failure into one ``VaultError`` whose message says what failed and what to do;
* ``KV2Secret`` -- read / read metadata / write with check-and-set / update
  ``custom_metadata`` for one secret;
* ``write_secret()`` and ``describe_secret()`` -- the read-compare-write logic of the
  two modules, and the pure helpers they use (fingerprint maps, diffs, metadata merge).

No secret value ever goes into a message, a result or a diff: only key names and
fingerprints.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.apikeys.rotation.plugins.module_utils.common import (
    RotationError,
    checked_fingerprint,
    fingerprint,
    fingerprints_match,
)

HVAC_IMPORT_ERROR: t.Optional[str] = None
try:
    import hvac
    from hvac import exceptions as hvac_exceptions
    from hvac import utils as hvac_utils
    import requests
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    HVAC_IMPORT_ERROR = traceback.format_exc()

# Statuses worth another attempt: 412 is Vault's "not yet consistent" answer (performance
# standbys / replicas), 429 a rate limit, 5xx a server or proxy in trouble. A sealed server
# (503 "Vault is sealed") is not retried: it will not unseal itself in a second.
RETRY_STATUSES = frozenset((412, 429, 500, 502, 503, 504))
BACKOFF_BASE = 0.25
BACKOFF_MAX = 2.0

# Vault's limits on custom_metadata (KV v2).
CUSTOM_METADATA_MAX_KEYS = 64
CUSTOM_METADATA_MAX_KEY_LENGTH = 128
CUSTOM_METADATA_MAX_VALUE_LENGTH = 512

_STATUS_BY_EXCEPTION = (
    ("InvalidRequest", 400),
    ("Unauthorized", 401),
    ("Forbidden", 403),
    ("InvalidPath", 404),
    ("PreconditionFailed", 412),
    ("RateLimitExceeded", 429),
    ("InternalServerError", 500),
    ("VaultNotInitialized", 501),
    ("BadGateway", 502),
    ("VaultDown", 503),
)

_VAULT_ARGUMENT_SPEC: t.Dict[str, t.Dict[str, t.Any]] = dict(
    url=dict(type="str", fallback=(env_fallback, ["VAULT_ADDR"])),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_TOKEN"])),
    namespace=dict(type="str", fallback=(env_fallback, ["VAULT_NAMESPACE"])),
    ca_cert=dict(type="path", fallback=(env_fallback, ["VAULT_CACERT"])),
    validate_certs=dict(type="bool", default=True),
    auth_method=dict(type="str", default="token", choices=["token", "approle", "jwt"],
                     fallback=(env_fallback, ["VAULT_AUTH_METHOD"])),
    auth_mount_point=dict(type="str", fallback=(env_fallback, ["VAULT_AUTH_MOUNT_POINT"])),
    role_id=dict(type="str", no_log=False, fallback=(env_fallback, ["VAULT_ROLE_ID"])),
    secret_id=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_SECRET_ID"])),
    jwt=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_JWT"])),
    role=dict(type="str", fallback=(env_fallback, ["VAULT_JWT_ROLE"])),
    timeout=dict(type="float", default=30),
    retries=dict(type="int", default=3),
    mount=dict(type="str", default="secret"),
    path=dict(type="str", required=True),
)


# The file holding the token of a run's one login (written by vault_login, named by the rotate role
# through the task environment). When set, every Vault module uses that token and logs in no more.
SESSION_TOKEN_FILE_ENV = "APIKEYS_VAULT_TOKEN_FILE"


def vault_argument_spec(secret: bool = True) -> t.Dict[str, t.Dict[str, t.Any]]:
    """A fresh copy of the connection options every Vault module merges into its own.

    ``secret=False`` leaves out ``mount`` and ``path`` (a module that reads no secret).
    """
    return {name: dict(spec) for name, spec in _VAULT_ARGUMENT_SPEC.items()
            if secret or name not in ("mount", "path")}


class VaultError(RotationError):
    """The one error of this file. ``details`` carries the category, status and Vault path."""

    def __init__(self, message: str, category: str, status: t.Optional[int] = None,
                 api_path: t.Optional[str] = None, **details: t.Any) -> None:
        details["vault_error"] = category
        if status is not None:
            details["vault_status"] = status
        if api_path is not None:
            details["vault_path"] = api_path
        super().__init__(message, **details)
        self.category = category
        self.status = status


class Op(t.NamedTuple):
    """What a request does, for error messages: ``action`` reads after "could not"."""

    action: str
    api_path: str
    capability: str = "read"
    kind: str = "kv"  # kv | login | sys


# --------------------------------------------------------------------------------------
# Pure helpers (unit tested without a server)
# --------------------------------------------------------------------------------------

def normalize_mount(mount: str) -> str:
    cleaned = (mount or "").strip().strip("/")
    if not cleaned:
        raise VaultError("mount must name a KV v2 secrets engine mount, for example secret; it is empty.", "invalid_input")
    return cleaned


def normalize_path(path: str) -> str:
    cleaned = (path or "").strip().strip("/")
    if not cleaned:
        raise VaultError("path must name a secret below the mount, for example apps/web/openai; it is empty.", "invalid_input")
    if any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise VaultError("path %r has an empty, '.' or '..' segment; give the plain secret path below the mount." % cleaned,
                         "invalid_input")
    return cleaned


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 0.25, 0.5, 1, 2, 2, ..."""
    return min(BACKOFF_BASE * (2 ** attempt), BACKOFF_MAX)


def error_texts(errors: t.Any) -> t.List[str]:
    """Vault's ``errors`` list as clean one-line strings ("1 error occurred: * x" becomes "x")."""
    if errors is None:
        return []
    if isinstance(errors, str):
        errors = [errors]
    texts = []
    for item in errors:
        text = str(item)
        if "error occurred:" in text or "errors occurred:" in text:
            parts = [p.strip() for p in text.split("\n") if p.strip().startswith("*")]
            texts.extend(p.lstrip("*").strip() for p in parts)
        else:
            texts.append(" ".join(text.split()))
    return [text for text in texts if text]


def is_retryable(status: t.Optional[int], errors: t.Sequence[str]) -> bool:
    if status not in RETRY_STATUSES:
        return False
    return not is_sealed(status, errors)


def is_sealed(status: t.Optional[int], errors: t.Sequence[str]) -> bool:
    return status == 503 and any("sealed" in e.lower() for e in errors)


def status_of(exc: BaseException) -> t.Optional[int]:
    """The HTTP status an hvac exception stands for (None when its class does not tell)."""
    for name, status in _STATUS_BY_EXCEPTION:
        cls = getattr(hvac_exceptions, name, None) if HVAC_IMPORT_ERROR is None else None
        if cls is not None and type(exc) is cls:  # pylint: disable=unidiomatic-typecheck
            return status
    return None


# What a Go TLS listener answers to a plain HTTP request.
PLAIN_HTTP_TO_TLS = "Client sent an HTTP request to an HTTPS server"


def _reason_of_connection_error(exc: BaseException) -> str:
    text = str(exc)
    lowered = text.lower()
    for needle, reason in (("connection refused", "connection refused"),
                           ("name or service not known", "host name not found"),
                           ("nodename nor servname", "host name not found"),
                           ("temporary failure in name resolution", "host name not found"),
                           ("no route to host", "no route to host"),
                           ("network is unreachable", "network is unreachable"),
                           ("connection reset", "connection reset"),
                           ("remote end closed", "connection closed by the server")):
        if needle in lowered:
            return reason
    return type(exc).__name__


def plain_http_to_tls_error(url: str) -> VaultError:
    return VaultError(
        "The Vault server at %s speaks TLS, but url (or VAULT_ADDR) says http://: use https://%s and give "
        "the CA that signed its certificate with ca_cert (or VAULT_CACERT)."
        % (url, url.split("://", 1)[-1]), "tls", 400)


def speaks_tls(url: str, timeout: float = 5.0) -> bool:
    """Whether the server named by an ``http://`` url completes a TLS handshake.

    A TLS server that is sent plain HTTP answers 400 and closes the connection with the request still unread,
    which resets it: depending on timing the client sees the 400 or only the reset. The handshake decides.
    The certificate is not checked: nothing is sent over this connection.
    """
    import socket  # pylint: disable=import-outside-toplevel
    import ssl  # pylint: disable=import-outside-toplevel
    from urllib.parse import urlsplit  # pylint: disable=import-outside-toplevel

    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=parts.hostname):
                return True
    except (OSError, ValueError):
        return False


def map_error(exc: BaseException, op: Op, url: str, status: t.Optional[int] = None,
              attempts: int = 1, timeout: t.Optional[float] = None) -> VaultError:
    """Turn any failure of one Vault request into a VaultError that says what to do.

    Every message of this collection about Vault is written here, once.
    """
    if isinstance(exc, VaultError):
        return exc
    tried = " (after %d attempts)" % attempts if attempts > 1 else ""
    if HVAC_IMPORT_ERROR is None and isinstance(exc, requests.exceptions.RequestException):
        if isinstance(exc, requests.exceptions.SSLError):
            return VaultError(
                "TLS verification of the Vault server at %s failed while trying to %s. Give the CA that signed its "
                "certificate with ca_cert (or VAULT_CACERT); validate_certs=false is for throw-away test servers only."
                % (url, op.action), "tls", api_path=op.api_path)
        if isinstance(exc, requests.exceptions.Timeout):
            return VaultError(
                "The Vault server at %s did not answer within %s seconds while trying to %s%s. Check that it is up and "
                "reachable from this host, or raise timeout." % (url, _fmt_number(timeout), op.action, tried),
                "timeout", api_path=op.api_path)
        # A TLS listener sent plain HTTP answers 400 and drops the connection: depending on timing the client
        # sees a reset (ConnectionError) or an answer cut off while it was read (ChunkedEncodingError).
        if isinstance(exc, requests.exceptions.ChunkedEncodingError) and speaks_tls(url, min(timeout or 5.0, 5.0)):
            return plain_http_to_tls_error(url)
        if isinstance(exc, requests.exceptions.ConnectionError):
            if _reason_of_connection_error(exc) != "connection refused" and speaks_tls(url, min(timeout or 5.0, 5.0)):
                return plain_http_to_tls_error(url)
            return VaultError(
                "Cannot reach the Vault server at %s (%s) while trying to %s%s. Check url (or VAULT_ADDR) and that the "
                "server is running and reachable from this host." % (url, _reason_of_connection_error(exc), op.action, tried),
                "unreachable", api_path=op.api_path)
        return VaultError("The request to the Vault server at %s failed while trying to %s: %s."
                          % (url, op.action, type(exc).__name__), "unreachable", api_path=op.api_path)

    if HVAC_IMPORT_ERROR is None and isinstance(exc, hvac_exceptions.VaultError):
        if status is None:
            status = status_of(exc)
        errors = error_texts(getattr(exc, "errors", None))
        said = ("; Vault said: %s" % "; ".join(errors)) if errors else ""
        if is_sealed(status, errors):
            return VaultError(
                "The Vault server at %s is sealed, so it could not %s. Unseal it (bao/vault operator unseal) and run "
                "again." % (url, op.action), "sealed", status, op.api_path)
        if status == 501:
            return VaultError("The Vault server at %s is not initialised, so it could not %s. Initialise and unseal "
                              "it first." % (url, op.action), "not_initialized", status, op.api_path)
        if op.kind == "login":
            return _login_error(op, status, errors, url)
        if status == 403:
            if any("invalid token" in e.lower() for e in errors):
                return VaultError("Vault refused the token while trying to %s: the token is invalid or expired. Give a "
                                  "valid token (token, VAULT_TOKEN or VAULT_TOKEN_FILE) or use another auth_method."
                                  % op.action, "permission_denied", status, op.api_path)
            return VaultError(
                "Permission denied: could not %s. The token's policies must grant the %s capability on the path "
                "'%s' (or the token is invalid or expired)." % (op.action, _capability_text(op.capability), op.api_path),
                "permission_denied", status, op.api_path, capability=op.capability)
        if status == 404 and any("no handler for route" in e for e in errors):
            mount = op.api_path.split("/", 1)[0]
            return VaultError(
                "No secrets engine is mounted at '%s/' on %s, so it could not %s. Check the mount option (the KV v2 "
                "mount, default 'secret')." % (mount, url, op.action), "mount_missing", status, op.api_path)
        if status == 429:
            return VaultError("Vault rate-limited the request to %s%s. Run again later or lower the number of forks."
                              % (op.action, tried), "rate_limited", status, op.api_path)
        if status is not None and status >= 500:
            return VaultError("The Vault server at %s failed to %s with HTTP %d%s%s. Check the server's health and "
                              "logs." % (url, op.action, status, tried, said), "server_error", status, op.api_path)
        if status == 412:
            return VaultError("Vault answered 412 (not yet consistent) to the request to %s%s. Retry later, or raise "
                              "retries." % (op.action, tried), "not_consistent", status, op.api_path)
        if status in (400, 405):
            return VaultError("Vault rejected the request to %s%s." % (op.action, said), "invalid_request", status,
                              op.api_path)
        return VaultError("Vault answered HTTP %s to the request to %s%s." % (status or "error", op.action, said),
                          "vault_error", status, op.api_path)
    return VaultError("Unexpected failure while trying to %s: %s." % (op.action, type(exc).__name__), "internal",
                      api_path=op.api_path)


def _login_error(op: Op, status: t.Optional[int], errors: t.Sequence[str], url: str) -> VaultError:
    said = ("; Vault said: %s" % "; ".join(errors)) if errors else ""
    mount = op.api_path[len("auth/"):].rsplit("/login", 1)[0] if op.api_path.startswith("auth/") else op.api_path
    if status == 403 or status == 404:
        hint = ("Check that this auth method is enabled at 'auth/%s/' on %s (auth_mount_point) and that the "
                "credentials are valid." % (mount, url))
    elif op.capability == "approle":
        hint = ("Check role_id (VAULT_ROLE_ID) and secret_id (VAULT_SECRET_ID or VAULT_SECRET_ID_FILE), and that "
                "the secret_id has not expired or run out of uses.")
    else:
        hint = ("Check the JWT (VAULT_JWT or VAULT_JWT_FILE), that it has not expired, and that its claims match the "
                "role's bound claims and audience.")
    return VaultError("Login failed: could not %s%s. %s" % (op.action, said, hint), "auth_failed", status,
                      op.api_path)


def _capability_text(capability: str) -> str:
    parts = [p for p in capability.split("/") if p]
    quoted = ["'%s'" % p for p in parts]
    if len(quoted) <= 1:
        return "".join(quoted)
    return " or ".join(quoted)


def _fmt_number(value: t.Optional[float]) -> str:
    if value is None:
        return "?"
    return ("%d" % value) if float(value).is_integer() else ("%s" % value)


def cas_conflict_error(mount: str, path: str, expected: int, current: t.Optional[int]) -> VaultError:
    """The check-and-set conflict message: which version was expected, which one Vault holds."""
    current_text = "version %d" % current if current else "no version (the secret does not exist)"
    expected_text = "version %d" % expected if expected else "no version (a new secret, cas=0)"
    return VaultError(
        "Check-and-set conflict on %s/%s: expected %s, but Vault holds %s, so nothing was written. The secret changed "
        "since it was read (or cas is wrong): read it again (vault_secret_info) and decide, or give cas=%d to write "
        "over what is there." % (mount, path, expected_text, current_text, current or 0),
        "cas_conflict", None, "%s/data/%s" % (mount, path), cas_conflict=True, expected_version=expected,
        current_version=current or 0)


def validate_data(data: t.Optional[t.Mapping[str, t.Any]]) -> None:
    """``data`` must map key names to strings; the error names the key, never the value."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise VaultError("data must be a dictionary of key names to string values.", "invalid_input")
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise VaultError("data has an empty or non-string key name; key names must be non-empty strings.", "invalid_input")
        if not isinstance(value, str):
            raise VaultError("data.%s must be a string, got %s; quote it or convert it with '| string'."
                             % (key, _type_name(value)), "invalid_input", key=key)


def validate_custom_metadata(changes: t.Optional[t.Mapping[str, t.Any]]) -> None:
    """Vault accepts only strings in custom_metadata; null (None) means "remove this key"."""
    if changes is None:
        return
    if not isinstance(changes, dict):
        raise VaultError("custom_metadata must be a dictionary of key names to strings (or null to remove a key).",
                         "invalid_input")
    for key, value in changes.items():
        if not isinstance(key, str) or not key:
            raise VaultError("custom_metadata has an empty or non-string key name.", "invalid_input")
        if len(key) > CUSTOM_METADATA_MAX_KEY_LENGTH:
            raise VaultError("custom_metadata key %r is longer than Vault's limit of %d characters."
                             % (key[:40] + "...", CUSTOM_METADATA_MAX_KEY_LENGTH), "invalid_input", key=key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise VaultError("custom_metadata.%s must be a string (or null to remove it), got %s: Vault stores only "
                             "strings there; quote it or convert it with '| string'." % (key, _type_name(value)),
                             "invalid_input", key=key)
        if len(value) > CUSTOM_METADATA_MAX_VALUE_LENGTH:
            raise VaultError("custom_metadata.%s is %d characters long, over Vault's limit of %d."
                             % (key, len(value), CUSTOM_METADATA_MAX_VALUE_LENGTH), "invalid_input", key=key)


def merge_custom_metadata(current: t.Optional[t.Mapping[str, str]],
                          changes: t.Optional[t.Mapping[str, t.Optional[str]]]) -> t.Dict[str, str]:
    """``current`` updated with ``changes``; a key whose new value is None is removed."""
    merged = dict(current or {})
    for key, value in (changes or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > CUSTOM_METADATA_MAX_KEYS:
        raise VaultError("custom_metadata would hold %d keys, over Vault's limit of %d; remove some with null values."
                         % (len(merged), CUSTOM_METADATA_MAX_KEYS), "invalid_input")
    return merged


def fingerprint_map(data: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, str]:
    """``{key: fingerprint}``: the only view of secret data this collection shows."""
    return {key: t.cast(str, fingerprint(value if isinstance(value, str) else _stable_text(value)))
            for key, value in sorted((data or {}).items())}


def secret_view(version: t.Optional[int], data: t.Optional[t.Mapping[str, t.Any]],
                custom_metadata: t.Optional[t.Mapping[str, str]]) -> t.Dict[str, t.Any]:
    """One side of a diff: version, key names, fingerprints and custom_metadata -- never values."""
    return {
        "version": version,
        "data_keys": sorted((data or {}).keys()),
        "fingerprints": fingerprint_map(data),
        "custom_metadata": dict(sorted((custom_metadata or {}).items())),
    }


def version_state(versions: t.Optional[t.Mapping[str, t.Mapping[str, t.Any]]], version: int) -> str:
    """``live``, ``deleted``, ``destroyed`` or ``missing`` for one version in a metadata ``versions`` map."""
    entry = (versions or {}).get(str(version))
    if entry is None:
        return "missing"
    if entry.get("destroyed"):
        return "destroyed"
    if entry.get("deletion_time"):
        return "deleted"
    return "live"


def _type_name(value: t.Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a dictionary"}.get(
        type(value), type(value).__name__)


def _stable_text(value: t.Any) -> str:
    """Non-string values (written by other tools) are fingerprinted as compact, sorted JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------
# Auth methods
# --------------------------------------------------------------------------------------

def read_secret_file(env: t.Mapping[str, str], env_name: str, what: str) -> t.Optional[str]:
    """The stripped content of the file named by ``$env_name``; None when the variable is unset."""
    file_name = env.get(env_name)
    if not file_name:
        return None
    try:
        with open(os.path.expanduser(file_name), "r", encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise VaultError("Cannot read the %s from the file named by %s (%s): %s." % (what, env_name, file_name, reason),
                         "invalid_input")
    if not value:
        raise VaultError("The file named by %s (%s) is empty; it should hold the %s." % (env_name, file_name, what),
                         "invalid_input")
    return value


class AuthMethod:
    """Base of the auth methods: ``validate()`` checks the options, ``authenticate()`` logs in."""

    name = ""
    default_mount = ""

    def __init__(self, params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> None:
        self.params = params
        self.env = os.environ if env is None else env
        self.mount_point = (params.get("auth_mount_point") or self.default_mount).strip("/")

    def validate(self) -> None:
        raise NotImplementedError

    def authenticate(self, connection: "VaultConnection") -> None:
        raise NotImplementedError

    def secret_values(self) -> t.List[str]:
        """Secrets this method resolved outside the module's options (files), to be masked in output."""
        return []


class TokenAuth(AuthMethod):
    name = "token"

    def __init__(self, params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> None:
        super().__init__(params, env)
        self.token: t.Optional[str] = None
        self._from_file = False

    def validate(self) -> None:
        self.token = self.params.get("token")
        if not self.token:
            self.token = read_secret_file(self.env, "VAULT_TOKEN_FILE", "Vault token")
            self._from_file = bool(self.token)
        if not self.token:
            raise VaultError("auth_method=token needs a token: set the token option, or VAULT_TOKEN, or VAULT_TOKEN_FILE "
                             "(a file holding the token).", "invalid_input")

    def authenticate(self, connection: "VaultConnection") -> None:
        # No lookup-self: a token without the default policy cannot look itself up
        # although it works; the first real request tells whether it is valid.
        connection.client.token = self.token

    def secret_values(self) -> t.List[str]:
        return [self.token] if self._from_file and self.token else []


class SessionAuth(TokenAuth):
    """The token of the run's one login, from the file named by ``$APIKEYS_VAULT_TOKEN_FILE`` (see vault_login)."""

    name = "session"

    def validate(self) -> None:
        file_name = self.env.get(SESSION_TOKEN_FILE_ENV, "")
        if not os.path.exists(os.path.expanduser(file_name)):
            raise VaultError("The token of this run's Vault login is gone (%s names %s, which does not exist): the login "
                             "was already closed. Log in again (apikeys.rotation.vault_login) or unset %s."
                             % (SESSION_TOKEN_FILE_ENV, file_name, SESSION_TOKEN_FILE_ENV), "invalid_input")
        self.token = read_secret_file(self.env, SESSION_TOKEN_FILE_ENV, "Vault token of this run's login")
        self._from_file = True


class AppRoleAuth(AuthMethod):
    name = "approle"
    default_mount = "approle"

    def __init__(self, params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> None:
        super().__init__(params, env)
        self.role_id: t.Optional[str] = None
        self.secret_id: t.Optional[str] = None
        self._from_file = False

    def validate(self) -> None:
        self.role_id = self.params.get("role_id")
        if not self.role_id:
            raise VaultError("auth_method=approle needs role_id (or VAULT_ROLE_ID).", "invalid_input")
        self.secret_id = self.params.get("secret_id")
        if not self.secret_id:
            self.secret_id = read_secret_file(self.env, "VAULT_SECRET_ID_FILE", "AppRole secret_id")
            self._from_file = bool(self.secret_id)
        if not self.secret_id:
            raise VaultError("auth_method=approle needs secret_id (or VAULT_SECRET_ID, or VAULT_SECRET_ID_FILE).",
                             "invalid_input")

    def authenticate(self, connection: "VaultConnection") -> None:
        op = Op("log in with AppRole at auth/%s" % self.mount_point, "auth/%s/login" % self.mount_point, "approle", "login")
        connection.login_answer = connection.call(op, connection.client.auth.approle.login, role_id=self.role_id,
                                                  secret_id=self.secret_id, mount_point=self.mount_point)

    def secret_values(self) -> t.List[str]:
        return [self.secret_id] if self._from_file and self.secret_id else []


class JwtAuth(AuthMethod):
    name = "jwt"
    default_mount = "jwt"

    def __init__(self, params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> None:
        super().__init__(params, env)
        self.jwt: t.Optional[str] = None
        self.role: t.Optional[str] = None
        self._from_file = False

    def validate(self) -> None:
        self.role = self.params.get("role")
        if not self.role:
            raise VaultError("auth_method=jwt needs role (the JWT auth role, or VAULT_JWT_ROLE).", "invalid_input")
        self.jwt = self.params.get("jwt")
        if not self.jwt:
            self.jwt = read_secret_file(self.env, "VAULT_JWT_FILE", "JWT")
            self._from_file = bool(self.jwt)
        if not self.jwt:
            raise VaultError("auth_method=jwt needs jwt (or VAULT_JWT, or VAULT_JWT_FILE).", "invalid_input")

    def authenticate(self, connection: "VaultConnection") -> None:
        op = Op("log in with JWT role '%s' at auth/%s" % (self.role, self.mount_point), "auth/%s/login" % self.mount_point,
                "jwt", "login")
        connection.login_answer = connection.call(op, connection.client.auth.jwt.jwt_login, role=self.role, jwt=self.jwt,
                                                  path=self.mount_point)

    def secret_values(self) -> t.List[str]:
        return [self.jwt] if self._from_file and self.jwt else []


AUTH_METHODS: t.Dict[str, t.Type[AuthMethod]] = {
    TokenAuth.name: TokenAuth,
    AppRoleAuth.name: AppRoleAuth,
    JwtAuth.name: JwtAuth,
}


def select_auth(params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None,
                use_session: bool = True) -> AuthMethod:
    """The auth method named by ``auth_method``, validated; the run's login token when one is open."""
    name = params.get("auth_method") or "token"
    cls = AUTH_METHODS.get(name)
    if use_session and (os.environ if env is None else env).get(SESSION_TOKEN_FILE_ENV):
        cls = SessionAuth
    if cls is None:
        raise VaultError("auth_method must be one of %s, got %r." % (", ".join(sorted(AUTH_METHODS)), name), "invalid_input")
    method = cls(params, env)
    method.validate()
    return method


# --------------------------------------------------------------------------------------
# Connection: an hvac client with bounded retries and one error type
# --------------------------------------------------------------------------------------

class VaultConnection:
    """An hvac client built from the module options; ``call()`` retries and maps errors."""

    def __init__(self, params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None,
                 sleep: t.Callable[[float], None] = time.sleep, use_session: bool = True) -> None:
        self.params = params
        self.env = os.environ if env is None else env
        self.sleep = sleep
        self.url = (params.get("url") or "").rstrip("/")
        if not self.url:
            raise VaultError("url is required: set the url option or VAULT_ADDR (for example https://vault.example.com:8200).",
                             "invalid_input")
        if "://" not in self.url:
            raise VaultError("url %r needs a scheme, for example https://%s." % (self.url, self.url), "invalid_input")
        if not self.url.lower().startswith(("http://", "https://")):
            raise VaultError("url %r must be an http:// or https:// address of the Vault server (or set VAULT_ADDR)."
                             % self.url, "invalid_input")
        self.timeout = float(params.get("timeout") if params.get("timeout") is not None else 30)
        if self.timeout <= 0:
            raise VaultError("timeout must be a positive number of seconds.", "invalid_input")
        self.retries = int(params.get("retries") if params.get("retries") is not None else 3)
        if self.retries < 0:
            raise VaultError("retries must be 0 or more.", "invalid_input")
        ca_cert = params.get("ca_cert")
        if ca_cert and not os.path.exists(ca_cert):
            raise VaultError("ca_cert file %s does not exist." % ca_cert, "invalid_input")
        self.verify: t.Union[bool, str] = ca_cert if ca_cert else bool(params.get("validate_certs", True))
        self.auth = select_auth(params, self.env, use_session)
        self.last_status: t.Optional[int] = None
        self.login_answer: t.Any = None
        self.client: t.Any = None

    def connect(self) -> "VaultConnection":
        session = requests.Session()
        # hvac takes ``verify`` from a session it is handed, not from its own argument: set it here, so that
        # ca_cert / VAULT_CACERT / validate_certs apply. A CA file given this way is also the only one trusted:
        # requests consults REQUESTS_CA_BUNDLE only while verify is True.
        session.verify = self.verify
        session.hooks["response"].append(self._record_status)
        self.client = hvac.Client(url=self.url, token="", verify=self.verify, timeout=self.timeout,
                                  namespace=self.params.get("namespace") or None, session=session)
        self.auth.authenticate(self)
        return self

    def _record_status(self, response: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.last_status = response.status_code
        if response.status_code == 400 and PLAIN_HTTP_TO_TLS in (response.text or "")[:200]:
            raise plain_http_to_tls_error(self.url)
        return response

    def call(self, op: Op, func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
        """``func(*args, **kwargs)`` with up to ``retries`` more attempts on 412, 429, 5xx and dropped connections."""
        attempt = 0
        while True:
            self.last_status = None
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                status = self._status(exc)
                if attempt < self.retries and self._retryable(exc, status):
                    self.sleep(backoff_delay(attempt))
                    attempt += 1
                    continue
                raise map_error(exc, op, self.url, status=status, attempts=attempt + 1, timeout=self.timeout)

    def _status(self, exc: BaseException) -> t.Optional[int]:
        if HVAC_IMPORT_ERROR is None and isinstance(exc, hvac_exceptions.VaultError):
            return status_of(exc) or self.last_status
        return None

    @staticmethod
    def _retryable(exc: BaseException, status: t.Optional[int]) -> bool:
        if HVAC_IMPORT_ERROR is None and isinstance(exc, requests.exceptions.RequestException):
            # A refused or reset connection (a restarting server) is worth another try; a timeout
            # is not (the request may have been applied, and waiting again doubles the delay).
            return (isinstance(exc, requests.exceptions.ConnectionError)
                    and not isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.SSLError)))
        if HVAC_IMPORT_ERROR is None and isinstance(exc, hvac_exceptions.VaultError):
            return is_retryable(status, error_texts(getattr(exc, "errors", None)))
        return False


class NotFound(t.NamedTuple):
    """A 404 answer: ``errors`` from Vault and the JSON body (KV v2 puts version metadata there)."""

    errors: t.List[str]
    body: t.Any


class SecretVersion(t.NamedTuple):
    version: int
    data: t.Optional[t.Dict[str, t.Any]]  # None when the version is deleted or destroyed
    state: str  # live | deleted | destroyed
    created_time: t.Optional[str]
    deletion_time: t.Optional[str]
    custom_metadata: t.Dict[str, str]


class KV2Secret:
    """One secret of a KV v2 mount."""

    def __init__(self, connection: VaultConnection, mount: str, path: str) -> None:
        self.connection = connection
        self.mount = normalize_mount(mount)
        self.path = normalize_path(path)
        self.name = "%s/%s" % (self.mount, self.path)
        self.data_path = "%s/data/%s" % (self.mount, self.path)
        self.metadata_path = "%s/metadata/%s" % (self.mount, self.path)
        self._mount_checked = False

    def _url(self, api_path: str) -> str:
        return hvac_utils.format_url("/v1/{0}", api_path)

    def _request(self, op: Op, method: str, api_path: str, allow_404: bool = False, **kwargs: t.Any) -> t.Any:
        adapter = self.connection.client.adapter

        def do() -> t.Any:
            try:
                return adapter.request(method, self._url(api_path), **kwargs)
            except hvac_exceptions.InvalidPath as exc:
                if allow_404:
                    return NotFound(error_texts(exc.errors), exc.json)
                raise

        result = self.connection.call(op, do)
        if isinstance(result, NotFound) and any("no handler for route" in e for e in result.errors):
            raise map_error(hvac_exceptions.InvalidPath(errors=result.errors), op, self.connection.url, status=404)
        return result

    def ensure_kv2(self) -> None:
        """Fail clearly when the mount is missing, is KV version 1, or is another engine."""
        if self._mount_checked:
            return
        op = Op("look up the secrets engine mounted at '%s/'" % self.mount, "sys/internal/ui/mounts/%s" % self.mount,
                "read", "sys")
        try:
            answer = self._request(op, "GET", "sys/internal/ui/mounts/%s" % self.mount, allow_404=True)
        except VaultError as exc:
            if exc.category == "permission_denied":
                # The token may not see the mount table; the KV requests themselves will tell.
                self._mount_checked = True
                return
            raise
        info = answer.get("data") if isinstance(answer, dict) else None
        if not info:
            raise VaultError("No secrets engine is mounted at '%s/' on %s. Check the mount option (the KV v2 mount, "
                             "default 'secret')." % (self.mount, self.connection.url), "mount_missing", 404, self.data_path)
        found_path = str(info.get("path") or "").strip("/")
        engine = info.get("type")
        version = str((info.get("options") or {}).get("version") or "1")
        if found_path and found_path != self.mount:
            raise VaultError("No secrets engine is mounted at '%s/'; that path lies inside the '%s/' mount. Set mount=%s "
                             "and put the rest in path." % (self.mount, found_path, found_path), "mount_missing", 404,
                             self.data_path)
        if engine not in ("kv", "generic"):
            raise VaultError("The secrets engine at '%s/' is of type '%s', not KV version 2. Point mount at a KV v2 "
                             "mount." % (self.mount, engine), "not_kv2", None, self.data_path)
        if version != "2":
            raise VaultError("The secrets engine at '%s/' is KV version %s, not KV version 2: these modules need "
                             "versions, check-and-set and custom_metadata. Use a KV v2 mount, or upgrade this one "
                             "(vault kv enable-versioning %s)." % (self.mount, version, self.mount), "not_kv2", None,
                             self.data_path)
        self._mount_checked = True

    def read_version(self, version: t.Optional[int] = None) -> t.Optional[SecretVersion]:
        """The latest (or the given) version; None when the secret (or that version) does not exist."""
        which = "version %d of" % version if version else "the latest version of"
        op = Op("read %s the secret %s" % (which, self.name), self.data_path, "read")
        params = {"version": version} if version else None
        answer = self._request(op, "GET", self.data_path, allow_404=True, params=params)
        if isinstance(answer, NotFound):
            meta = _deep_get(answer.body, "data", "metadata")
            if isinstance(meta, dict) and meta.get("version"):
                return _secret_version(meta, None)
            self.ensure_kv2()
            return None
        body = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            self._mount_checked = False
            self.ensure_kv2()
            raise VaultError("Vault's answer for %s is not shaped like KV v2 (no version metadata). Is '%s/' a KV v2 "
                             "mount?" % (self.name, self.mount), "not_kv2", None, self.data_path)
        return _secret_version(body["metadata"], body.get("data") or {})

    def read_metadata(self) -> t.Optional[t.Dict[str, t.Any]]:
        """The secret's metadata (versions, custom_metadata, ...); None when the path is unknown to Vault."""
        op = Op("read the metadata of the secret %s" % self.name, self.metadata_path, "read")
        answer = self._request(op, "GET", self.metadata_path, allow_404=True)
        if isinstance(answer, NotFound):
            self.ensure_kv2()
            return None
        meta = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(meta, dict) or "current_version" not in meta:
            self._mount_checked = False
            self.ensure_kv2()
            raise VaultError("Vault's metadata answer for %s is not shaped like KV v2. Is '%s/' a KV v2 mount?"
                             % (self.name, self.mount), "not_kv2", None, self.metadata_path)
        return meta

    def write(self, data: t.Mapping[str, str], cas: int) -> int:
        """Write ``data`` as a new version with check-and-set; returns the new version number."""
        capability = "update" if cas else "create"
        op = Op("write a new version of the secret %s" % self.name, self.data_path, capability)
        try:
            answer = self._request(op, "POST", self.data_path, json={"data": dict(data), "options": {"cas": cas}})
        except VaultError as exc:
            if exc.status == 400 and "check-and-set" in exc.message:
                current = self.read_version()
                if current is not None and current.version == cas + 1 and current.data == dict(data):
                    # An earlier attempt of this very write was applied before its answer was lost.
                    return current.version
                raise cas_conflict_error(self.mount, self.path, cas, current.version if current else 0)
            raise
        version = _deep_get(answer, "data", "version")
        if not isinstance(version, int):
            raise VaultError("Vault accepted the write to %s but did not return the new version." % self.name,
                             "vault_error", None, self.data_path)
        return version

    def update_custom_metadata(self, custom_metadata: t.Mapping[str, str], exists: bool) -> None:
        """Replace the secret's custom_metadata with ``custom_metadata`` (the caller merged it)."""
        op = Op("update the custom_metadata of the secret %s" % self.name, self.metadata_path,
                "update" if exists else "create")
        self._request(op, "POST", self.metadata_path, json={"custom_metadata": dict(custom_metadata)})


def _deep_get(value: t.Any, *keys: str) -> t.Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _secret_version(meta: t.Mapping[str, t.Any], data: t.Optional[t.Dict[str, t.Any]]) -> SecretVersion:
    if meta.get("destroyed"):
        state = "destroyed"
    elif meta.get("deletion_time"):
        state = "deleted"
    else:
        state = "live"
    return SecretVersion(
        version=int(meta["version"]),
        data=data if state == "live" else None,
        state=state,
        created_time=meta.get("created_time") or None,
        deletion_time=meta.get("deletion_time") or None,
        custom_metadata=dict(meta.get("custom_metadata") or {}),
    )


# --------------------------------------------------------------------------------------
# The two modules' logic
# --------------------------------------------------------------------------------------

def source_version_data(kv: KV2Secret, version: int, current_version: int) -> t.Dict[str, t.Any]:
    """The data of ``version``, refusing clearly when it does not exist, is deleted or destroyed."""
    if version < 1:
        raise VaultError("data_from_version must be 1 or more, got %d." % version, "invalid_input")
    if version > current_version:
        raise VaultError("data_from_version=%d: %s has no such version (the current version is %d). Nothing was written."
                         % (version, kv.name, current_version), "version_missing", None, kv.data_path)
    source = kv.read_version(version)
    if source is None:
        raise VaultError("data_from_version=%d: version %d of %s no longer exists (older versions are pruned by "
                         "max_versions). Nothing was written." % (version, version, kv.name), "version_missing", None,
                         kv.data_path)
    if source.state == "destroyed":
        raise VaultError("data_from_version=%d: version %d of %s is destroyed; its data is gone for good and cannot be "
                         "restored. Nothing was written." % (version, version, kv.name), "version_destroyed", None,
                         kv.data_path)
    if source.state == "deleted":
        raise VaultError("data_from_version=%d: version %d of %s is deleted (since %s). Undelete it first (vault kv "
                         "undelete -versions=%d) if it should be restored. Nothing was written."
                         % (version, version, kv.name, source.deletion_time, version), "version_deleted", None,
                         kv.data_path)
    return dict(source.data or {})


def write_secret(kv: KV2Secret, data: t.Optional[t.Dict[str, str]] = None, data_from_version: t.Optional[int] = None,
                 custom_metadata: t.Optional[t.Dict[str, t.Optional[str]]] = None, cas: t.Optional[int] = None,
                 check_mode: bool = False, register_secret: t.Callable[[str], None] = lambda value: None,
                 data_from_path: t.Optional[str] = None, require_fingerprint: t.Optional[str] = None,
                 require_field: str = "api_key") -> t.Dict[str, t.Any]:
    """Read, compare, then write: a new version only when the data differs, metadata only when it differs.

    Returns the module result (``changed``, ``version``, ``previous_version``, ``created``,
    ``fingerprints``, ``custom_metadata``, ``diff``). In check mode the same reads happen and the
    result describes the plan; nothing is written.
    """
    validate_data(data)
    validate_custom_metadata(custom_metadata)
    if require_fingerprint is not None:
        try:
            require_fingerprint = checked_fingerprint(require_fingerprint, "require_fingerprint", required=True)
        except RotationError as exc:
            raise VaultError(str(exc), "invalid_input") from None
    if data is not None and data_from_version is not None:
        raise VaultError("data and data_from_version are mutually exclusive.", "invalid_input")
    if cas is not None and cas < 0:
        raise VaultError("cas must be 0 (the secret must not exist yet) or a version number, got %d." % cas, "invalid_input")

    current = kv.read_version()
    current_version = current.version if current else 0
    current_data = current.data if current else None
    current_meta: t.Dict[str, str] = dict(current.custom_metadata) if current else {}
    metadata_exists = current is not None

    if custom_metadata is not None and (current is None or current.state != "live"):
        # The data read carries no custom_metadata here (absent or deleted latest version):
        # read the metadata itself, so the merge does not drop existing keys.
        meta = kv.read_metadata()
        metadata_exists = meta is not None
        current_meta = dict((meta or {}).get("custom_metadata") or {})
        if meta is not None:
            current_version = max(current_version, int(meta.get("current_version") or 0))

    if cas is not None and cas != current_version:
        raise cas_conflict_error(kv.mount, kv.path, cas, current_version)
    if require_fingerprint is not None:
        held = fingerprint_map(current_data)
        if not fingerprints_match(require_fingerprint, held.get(require_field)):
            raise VaultError("%s: the latest version (%s) holds %s in %s, not %s. Nothing was written."
                             % (kv.name, current_version or "none", held.get(require_field) or "no value", require_field,
                                require_fingerprint), "fingerprint_conflict", None, kv.data_path, fingerprint_conflict=True,
                             current_version=current_version or None, fingerprints=held)
    expected_version = current_version if cas is None else cas

    desired_data: t.Optional[t.Dict[str, t.Any]] = None
    if data is not None:
        desired_data = dict(data)
    elif data_from_version is not None and data_from_path:
        # another secret of the same mount (the rotate role stages a new key at <path>.next)
        source = KV2Secret(kv.connection, kv.mount, data_from_path)
        latest = source.read_version()
        desired_data = source_version_data(source, data_from_version, latest.version if latest else 0)
    elif data_from_version is not None:
        desired_data = source_version_data(kv, data_from_version, current_version)
        for value in desired_data.values():
            if isinstance(value, str) and len(value) >= 4:
                register_secret(value)

    data_changed = desired_data is not None and desired_data != current_data
    merged_meta = merge_custom_metadata(current_meta, custom_metadata) if custom_metadata is not None else current_meta
    meta_changed = custom_metadata is not None and merged_meta != current_meta

    new_version = current_version
    if data_changed:
        new_version = current_version + 1
        if not check_mode:
            new_version = kv.write(t.cast(t.Dict[str, str], desired_data), expected_version)
    if meta_changed and not check_mode:
        kv.update_custom_metadata(merged_meta, exists=metadata_exists or data_changed)

    before_data = current_data
    after_data = desired_data if data_changed else current_data
    result: t.Dict[str, t.Any] = {
        "changed": bool(data_changed or meta_changed),
        "version": new_version or None,
        "previous_version": current_version or None,
        "created": bool(data_changed and current is None),
        "fingerprints": fingerprint_map(after_data),
        "custom_metadata": dict(sorted(merged_meta.items())),
        "diff": {
            "before": secret_view(current_version or None, before_data, current_meta),
            "after": secret_view(new_version or None, after_data, merged_meta),
            "before_header": "%s (version %s)" % (kv.name, current_version or "none"),
            "after_header": "%s (version %s)" % (kv.name, new_version or "none"),
        },
    }
    return result


def describe_secret(kv: KV2Secret, version: t.Optional[int] = None, return_data: bool = False) -> t.Dict[str, t.Any]:
    """What ``vault_secret_info`` returns: versions, custom_metadata, key names and fingerprints (data if asked)."""
    result: t.Dict[str, t.Any] = {
        "changed": False,
        "exists": False,
        "version": None,
        "current_version": None,
        "oldest_version": None,
        "versions": {},
        "custom_metadata": {},
        "data_keys": [],
        "fingerprints": {},
        "created_time": None,
        "updated_time": None,
    }
    if version is not None and version < 1:
        raise VaultError("version must be 1 or more, got %d." % version, "invalid_input")
    meta = kv.read_metadata()
    if meta is None:
        if return_data:
            result["data"] = None
        return result
    current_version = int(meta.get("current_version") or 0)
    versions = {str(k): {"created_time": v.get("created_time") or None,
                         "deletion_time": v.get("deletion_time") or None,
                         "destroyed": bool(v.get("destroyed"))}
                for k, v in sorted((meta.get("versions") or {}).items(), key=lambda item: int(item[0]))}
    result.update({
        "exists": True,
        "current_version": current_version or None,
        "oldest_version": int(meta.get("oldest_version") or 0) or (min(int(k) for k in versions) if versions else None),
        "versions": versions,
        "custom_metadata": dict(sorted((meta.get("custom_metadata") or {}).items())),
        "created_time": meta.get("created_time") or None,
        "updated_time": meta.get("updated_time") or None,
    })
    wanted = version or current_version
    data = None
    if wanted:
        state = version_state(versions, wanted)
        if state == "missing":
            raise VaultError("Version %d of %s does not exist (versions held: %s)."
                             % (wanted, kv.name, ", ".join(versions) or "none"), "version_missing", None, kv.data_path)
        result["version"] = wanted
        if state == "live":
            read = kv.read_version(wanted)
            if read is not None and read.state == "live":
                data = read.data
    result["data_keys"] = sorted((data or {}).keys())
    result["fingerprints"] = fingerprint_map(data)
    if return_data:
        result["data"] = data
    return result


# --------------------------------------------------------------------------------------
# The module base
# --------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------
# One login per run: vault_login keeps the token in a private file, the other modules use it
# --------------------------------------------------------------------------------------

SESSION_DIR_PREFIX = "apikeys-vault-"
SESSION_SETTINGS_FILE = "connection.json"
SESSION_GIVEN_FILE = "given"
SESSION_SETTINGS = ("url", "ca_cert", "validate_certs", "namespace", "timeout", "retries")


def open_login(connection: VaultConnection, directory: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """Log in as the options say and keep the token in a new private file (directory 0700, file 0600).

    A given token (auth_method=token) is not a login: it is kept the same way, so that modules without the Vault
    options (given through module_defaults, say) reach Vault too, and it is never revoked (``SESSION_GIVEN_FILE``).
    """
    given = connection.auth.name == TokenAuth.name
    if given:
        token = getattr(connection.auth, "token", None) or ""
        auth: t.Dict[str, t.Any] = {}
    else:
        connection.connect()
        token = connection.client.token
        answer = connection.login_answer if isinstance(connection.login_answer, dict) else {}
        auth = answer.get("auth") or {}
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=SESSION_DIR_PREFIX, dir=directory or None)
    file_name = os.path.join(folder, "token")
    handle = os.open(file_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(token)
    if given:
        with open(os.path.join(folder, SESSION_GIVEN_FILE), "w", encoding="utf-8") as stream:
            stream.write("a token given to the run: never revoked\n")
    # How to reach the server, for modules that read a key from Vault without the Vault options
    # (api_key_probe, provider_key_create): a CA given through module_defaults applies to them too.
    settings = {name: connection.params.get(name) for name in SESSION_SETTINGS}
    if settings.get("ca_cert"):
        settings["ca_cert"] = os.path.abspath(os.path.expanduser(settings["ca_cert"]))
    handle = os.open(os.path.join(folder, SESSION_SETTINGS_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(settings, stream)
    return dict(logged_in=not given, token_file=file_name, ttl=auth.get("lease_duration"),
                renewable=bool(auth.get("renewable")), auth_method=connection.auth.name)


def close_login(params: t.Mapping[str, t.Any], token_file: str,
                env: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, t.Any]:
    """Revoke the token of ``token_file`` (written by ``open_login``) and remove the file; never fails on the revoke."""
    if not token_file or not os.path.exists(token_file):
        return dict(revoked=False, removed=False, warning=None)
    folder = os.path.dirname(os.path.abspath(token_file))
    if os.path.basename(token_file) != "token" or not os.path.basename(folder).startswith(SESSION_DIR_PREFIX):
        raise VaultError("token_file %s was not written by vault_login (it writes <dir>/%s*/token): a token the run "
                         "did not make is never revoked." % (token_file, SESSION_DIR_PREFIX), "invalid_input")
    session_env = dict(os.environ if env is None else env)
    session_env[SESSION_TOKEN_FILE_ENV] = token_file
    warning = None
    revoked = False
    given = os.path.exists(os.path.join(folder, SESSION_GIVEN_FILE))
    try:
        if given:
            return dict(revoked=False, removed=True, warning=None)
        connection = VaultConnection(params, session_env).connect()
        connection.call(Op("revoke this run's token", "auth/token/revoke-self", "update"),
                        connection.client.auth.token.revoke_self)
        revoked = True
    except VaultError as exc:
        warning = "Could not revoke this run's Vault token, so it lives until its TTL ends: %s" % exc.message
    finally:
        os.remove(token_file)
        for name in (SESSION_SETTINGS_FILE, SESSION_GIVEN_FILE):
            if os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
        try:
            os.rmdir(folder)
        except OSError:
            pass
    return dict(revoked=revoked, removed=True, warning=warning)


# --------------------------------------------------------------------------------------
# A key by reference: modules that need a key value read it from Vault (and write it there)
# themselves, so that no value is ever a task's argument or result
# --------------------------------------------------------------------------------------

def env_connection_params(env: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, t.Any]:
    """The Vault connection options from the environment and the run's login, as a non-Vault module sees them."""
    env = os.environ if env is None else env
    params: t.Dict[str, t.Any] = {}
    for name, spec in _VAULT_ARGUMENT_SPEC.items():
        value = spec.get("default")
        for variable in (spec.get("fallback") or (None, []))[1]:
            if variable in env:
                value = env[variable]
                break
        params[name] = value
    params["validate_certs"] = str(params["validate_certs"]).lower() not in ("0", "false", "no", "off")
    token_file = env.get(SESSION_TOKEN_FILE_ENV)
    settings_file = os.path.join(os.path.dirname(token_file), SESSION_SETTINGS_FILE) if token_file else ""
    if settings_file and os.path.exists(settings_file):
        with open(settings_file, encoding="utf-8") as handle:
            params.update({k: v for k, v in json.load(handle).items() if k in SESSION_SETTINGS and v is not None})
    return params


def open_ref(option: str, ref: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> KV2Secret:
    """The secret ``ref`` names, connected and its mount checked (so a writer can fail before it makes anything)."""
    if HVAC_IMPORT_ERROR is not None:
        raise VaultError("%s reads Vault, which needs the Python library hvac: install it in the Python that runs "
                         "the module." % option, "invalid_input")
    params = env_connection_params(env)
    if not params.get("url"):
        raise VaultError("%s needs the Vault address: set VAULT_ADDR (this module takes no Vault options; it uses the "
                         "environment and the run's login)." % option, "invalid_input")
    kv = KV2Secret(VaultConnection(params, env).connect(), ref.get("mount") or "secret", ref.get("path") or "")
    kv.ensure_kv2()
    return kv


def read_ref(option: str, ref: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> str:
    """The value of ``ref['field']`` in the secret ``ref`` names (its ``version``, else the latest)."""
    return read_ref_version(option, ref, env)[0]


def read_ref_version(option: str, ref: t.Mapping[str, t.Any],
                     env: t.Optional[t.Mapping[str, str]] = None) -> t.Tuple[str, int]:
    """``read_ref``'s value and the version it was read from."""
    kv = open_ref(option, ref, env)
    version = ref.get("version")
    found = kv.read_version(version)
    field = ref.get("field") or "api_key"
    what = "%s: %s%s" % (option, kv.name, " version %d" % version if version else "")
    if found is None:
        raise VaultError("%s does not exist. Nothing was changed." % what, "not_found", None, kv.data_path)
    if found.data is None:
        raise VaultError("%s is %s; it holds no key. Nothing was changed." % (what, found.state), "version_deleted",
                         None, kv.data_path)
    value = found.data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise VaultError("%s has no field %s holding a key. Nothing was changed." % (what, field), "invalid_input",
                         None, kv.data_path)
    return value, found.version


def write_ref(kv: KV2Secret, ref: t.Mapping[str, t.Any], value: str) -> int:
    """Write ``value`` as the field ``ref['field']`` of ``kv`` (from ``open_ref``); the version it is in."""
    return int(write_secret(kv, data={ref.get("field") or "api_key": value})["version"])


class VaultModule(AnsibleModule):
    """An AnsibleModule with the Vault connection options merged in and a ``kv_secret()`` factory."""

    def __init__(self, argument_spec: t.Optional[t.Dict[str, t.Any]] = None, secret: bool = True,
                 **kwargs: t.Any) -> None:
        spec = vault_argument_spec(secret)
        spec.update(argument_spec or {})
        super().__init__(argument_spec=spec, **kwargs)
        if HVAC_IMPORT_ERROR is not None:
            self.fail_json(msg=missing_required_lib("hvac"), exception=HVAC_IMPORT_ERROR)

    def register_secret(self, value: t.Optional[str]) -> None:
        """Mask ``value`` in anything this module returns (values read or resolved at run time)."""
        if value:
            self.no_log_values.add(value)

    def kv_secret(self) -> KV2Secret:
        """Connect and log in as the options say; a ``KV2Secret`` for ``mount`` / ``path``."""
        mount = normalize_mount(self.params["mount"])
        path = normalize_path(self.params["path"])
        connection = VaultConnection(self.params)
        for value in connection.auth.secret_values():
            self.register_secret(value)
        connection.connect()
        self.register_secret(getattr(connection.client, "token", None))
        return KV2Secret(connection, mount, path)

    def fail_from(self, error: RotationError, **extra: t.Any) -> None:
        details = dict(error.details)
        details.update(extra)
        self.fail_json(msg=error.message, **details)
