# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small provider interface, the provider options written once, and their resolution.

Private to the apikeys.rotation collection.
"""

from __future__ import annotations

import datetime
import os
import re
import time
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import (
    FINGERPRINT_RE,
    RotationError,
    check_url,
    fingerprint,
    fingerprints_match,
    shown_url,
)
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import (
    HttpClient,
    NetworkError,
    ProviderError,
    Response,
    parse_error,
    scrub,
)

STATES = ("active", "disabled", "deleted")
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_RETRY_WAIT = 30.0


def provider_argument_spec(provider_names: t.Sequence[str], provider_required: bool = True) -> t.Dict[str, t.Any]:
    """The provider connection options shared by every provider module (doc fragment ``apikeys.rotation.provider``)."""
    return dict(
        provider=dict(type="str", required=provider_required, choices=list(provider_names)),
        base_url=dict(type="str"),
        admin_key=dict(type="str", no_log=True),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        retries=dict(type="int", default=DEFAULT_RETRIES),
        max_retry_wait=dict(type="float", default=DEFAULT_MAX_RETRY_WAIT),
        openai_project_id=dict(type="str"),
        openai_service_account_id=dict(type="str"),
        anthropic_workspace_id=dict(type="str"),
        openrouter_workspace_id=dict(type="str"),
        allow_insecure_http=dict(type="bool", default=False),
    )


class Options:
    """Resolved provider options: parameters first, then the environment, then defaults."""

    def __init__(self, provider: str, base_url: str, admin_key: t.Optional[str], admin_key_source: t.Optional[str],
                 timeout: float, retries: int, max_retry_wait: float, extra: t.Mapping[str, t.Any]) -> None:
        self.provider = provider
        self.base_url = base_url
        self.admin_key = admin_key
        self.admin_key_source = admin_key_source
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.extra = dict(extra)

    def get(self, name: str) -> t.Any:
        return self.extra.get(name)


def _read_secret_file(path: str, env_name: str) -> str:
    try:
        with open(os.path.expanduser(path), "r", encoding="utf-8") as handle:
            value = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise RotationError("admin_key: cannot read the file named by %s (%s): %s"
                            % (env_name, path, exc.__class__.__name__))
    if not value:
        raise RotationError("admin_key: the file named by %s (%s) is empty" % (env_name, path))
    return value


def http_limits(params: t.Mapping[str, t.Any]) -> t.Tuple[float, int, float]:
    """``timeout``, ``retries`` and ``max_retry_wait`` with defaults, refusing values out of range."""
    timeout = params.get("timeout")
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if timeout <= 0:
        raise RotationError("timeout must be greater than 0, got %s" % timeout)
    retries = params.get("retries")
    retries = DEFAULT_RETRIES if retries is None else int(retries)
    if retries < 0:
        raise RotationError("retries must be 0 or more, got %s" % retries)
    max_wait = params.get("max_retry_wait")
    max_wait = DEFAULT_MAX_RETRY_WAIT if max_wait is None else float(max_wait)
    if max_wait < 0:
        raise RotationError("max_retry_wait must be 0 or more, got %s" % max_wait)
    return timeout, retries, max_wait


# Admin credentials by their public prefixes: the first match names what a key is.
ADMIN_KEY_KINDS = (
    ("sk-ant-admin", "anthropic", True, "an Anthropic admin key"),
    ("sk-ant-", "anthropic", False, "an Anthropic API key, not an admin key (sk-ant-admin01-...)"),
    ("sk-admin-", "openai", True, "an OpenAI admin key"),
    ("sk-proj-", "openai", False, "an OpenAI project key, not an admin key (sk-admin-...)"),
    ("sk-svcacct-", "openai", False, "an OpenAI service-account key, not an admin key (sk-admin-...)"),
    ("sk-or-", "openrouter", True, "an OpenRouter key"),
)


def check_admin_key(provider: str, admin_key: str, source: t.Optional[str]) -> None:
    """Refuse, before any request, an admin credential that is plainly another provider's or not an admin key."""
    for prefix, owner, is_admin, what in ADMIN_KEY_KINDS:
        if admin_key.startswith(prefix):
            if owner != provider or not is_admin:
                raise RotationError("%s holds %s, which cannot manage %s keys: give the %s admin credential "
                                    "(option admin_key or its environment variable). Nothing was sent."
                                    % (source or "admin_key", what, provider, provider), provider=provider)
            return


def resolve_options(params: t.Mapping[str, t.Any], provider_class: t.Type["Provider"],
                    environ: t.Optional[t.Mapping[str, str]] = None) -> Options:
    """Resolve base URL and admin key with the provider's environment fallbacks and validate them.

    ``base_url``: option, then ``<PROVIDER>_BASE_URL``, then the official URL.
    ``admin_key``: option, then ``<ADMIN_ENV>``, then the file named by ``<ADMIN_ENV>_FILE``.
    """
    env = os.environ if environ is None else environ
    name = provider_class.name
    if params.get("base_url"):
        base_url, where = params["base_url"], "base_url"
    elif env.get(provider_class.base_url_env):
        base_url, where = env[provider_class.base_url_env], "%s (base_url)" % provider_class.base_url_env
    else:
        base_url, where = provider_class.default_base_url, "base_url"
    try:
        base_url = check_url(base_url, where, bool(params.get("allow_insecure_http")))
    except RotationError as exc:
        raise RotationError(str(exc) + ". The admin key is sent to this address. Nothing was sent", provider=name)
    admin_key = params.get("admin_key")
    source: t.Optional[str] = "admin_key" if admin_key else None
    if not admin_key and env.get(provider_class.admin_key_env):
        admin_key = env[provider_class.admin_key_env].strip()
        source = provider_class.admin_key_env
    if not admin_key and env.get(provider_class.admin_key_env + "_FILE"):
        file_env = provider_class.admin_key_env + "_FILE"
        admin_key = _read_secret_file(env[file_env], file_env)
        source = file_env
    if admin_key:
        check_admin_key(name, admin_key, source)
    timeout, retries, max_wait = http_limits(params)
    extra = {k: params.get(k) for k in ("openai_project_id", "openai_service_account_id", "anthropic_workspace_id",
                                        "openrouter_workspace_id")}
    return Options(name, base_url, admin_key or None, source, timeout, retries, max_wait, extra)


def split_hint(hint: t.Optional[str]) -> t.Optional[t.Tuple[str, str]]:
    """Split a provider's redacted hint (``head...tail``, ``head…tail``, ``head****tail``) into head and tail."""
    if not hint or not isinstance(hint, str):
        return None
    match = re.match(r"^(.*?)(?:\.{3,}|\u2026|\*{3,})(.*)$", hint.strip())
    if not match:
        return None
    head, tail = match.group(1), match.group(2)
    if not head and not tail:
        return None
    return head, tail


def hint_matches(hint: t.Optional[str], api_key: t.Optional[str]) -> bool:
    """Whether a key value fits a redacted hint: it starts with the head and ends with the tail."""
    parts = split_hint(hint)
    if parts is None or not api_key:
        return False
    head, tail = parts
    return len(api_key) >= len(head) + len(tail) and api_key.startswith(head) and api_key.endswith(tail)


def iso_time(value: t.Any) -> t.Optional[str]:
    """Creation times as RFC 3339 strings (OpenAI gives Unix seconds, the others strings)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


class KeyRecord:
    """A key as the provider lists it: never its value."""

    FIELDS = ("id", "name", "status", "created_at", "redacted_hint")

    def __init__(self, key_id: str, name: t.Optional[str], status: str, created_at: t.Any = None,
                 redacted_hint: t.Optional[str] = None, **extra: t.Any) -> None:
        self.id = key_id
        self.name = name
        self.status = status
        self.created_at = iso_time(created_at)
        self.redacted_hint = redacted_hint
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def as_dict(self) -> t.Dict[str, t.Any]:
        data = {"id": self.id, "name": self.name, "status": self.status, "created_at": self.created_at,
                "redacted_hint": self.redacted_hint}
        data.update(self.extra)
        return data

    def __repr__(self) -> str:
        return "KeyRecord(%r, %r, %r)" % (self.id, self.name, self.status)


class CreatedKey:
    """A key just made (or adopted): the record plus the value, which only the create module returns."""

    def __init__(self, record: KeyRecord, value: t.Optional[str], changed: bool = True) -> None:
        self.record = record
        self.value = value
        self.changed = changed

    @property
    def fingerprint(self) -> t.Optional[str]:
        return fingerprint(self.value)


class ProbeResult:
    """Whether a key authenticates right now. Built from any outcome; a probe never raises for 4xx/5xx/network.

    ``code`` is the provider's own reason code for a refusal (OpenAI ``error.code``, else the error type);
    ``restricted`` says the provider authenticated the key but refused it the probe endpoint for lack of a
    permission or scope: the key works, it may only not list models. ``live`` is then true.
    """

    def __init__(self, live: bool, status: t.Optional[int], latency_ms: t.Optional[int], reason: str,
                 request_id: t.Optional[str] = None, code: t.Optional[str] = None, restricted: bool = False) -> None:
        self.live = live
        self.status = status
        self.latency_ms = latency_ms
        self.reason = reason
        self.request_id = request_id
        self.code = code
        self.restricted = restricted

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"live": self.live, "status": self.status, "latency_ms": self.latency_ms, "reason": self.reason,
                "request_id": self.request_id, "code": self.code, "restricted": self.restricted}


class Refusal:
    """How a provider's refusal of a probe reads: its reason code, and whether it proves the key itself is bad.

    ``restricted``: authenticated, but not allowed to call the probe endpoint (a scope-restricted key).
    ``key_rejected``: the provider says the key itself is invalid, disabled or deleted.
    """

    def __init__(self, code: t.Optional[str], restricted: bool = False, key_rejected: bool = True,
                 what: t.Optional[str] = None) -> None:
        self.code = code
        self.restricted = restricted
        self.key_rejected = key_rejected
        self.what = what


class StatusChange:
    """The outcome of :meth:`Provider.set_status`."""

    def __init__(self, key_id: str, previous_status: t.Optional[str], status: t.Optional[str], changed: bool,
                 **extra: t.Any) -> None:
        self.key_id = key_id
        self.previous_status = previous_status
        self.status = status
        self.changed = changed
        #: what else was done or found (OpenAI: ``service_account_deleted``), ids only
        self.extra = extra


class Capabilities:
    def __init__(self, can_create: bool, can_disable: bool, can_delete: bool) -> None:
        self.can_create = can_create
        self.can_disable = can_disable
        self.can_delete = can_delete

    def as_dict(self) -> t.Dict[str, bool]:
        return {"can_create": self.can_create, "can_disable": self.can_disable, "can_delete": self.can_delete}


def error_code(body: t.Any) -> t.Optional[str]:
    """The provider's reason code in an error body: ``error.code`` when it is a word, else ``error.type``."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None
    for field in ("code", "type"):
        value = err.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def probe_result_from(resp: t.Optional[Response], error: t.Optional[BaseException], started: float,
                      secrets: t.Iterable[t.Optional[str]] = (),
                      classify: t.Optional[t.Callable[[int, t.Any, str], Refusal]] = None) -> ProbeResult:
    """Turn one probe outcome (a response or a network error) into a :class:`ProbeResult`.

    ``classify(status, body, message)`` reads a 401/403 the provider's way (see :meth:`Provider.refusal`).
    """
    latency_ms = int((time.monotonic() - started) * 1000)
    if error is not None or resp is None:
        return ProbeResult(False, None, latency_ms, scrub(str(error) if error else "no response", secrets))
    if resp.ok:
        return ProbeResult(True, resp.status, resp.elapsed_ms, "authenticated", resp.request_id)
    error_type, message, request_id = parse_error(resp.status, resp.body, resp.headers)
    detail = (" " + error_type if error_type else "") + (" - " + message if message else "")
    code = error_code(resp.body)
    if resp.status in (401, 403):
        refusal = classify(resp.status, resp.body, message) if classify else Refusal(code)
        code = refusal.code
        if refusal.restricted:
            reason = ("authenticated, but the key may not call the probe endpoint (a restricted key): HTTP %s%s"
                      % (resp.status, detail))
            return ProbeResult(True, resp.status, resp.elapsed_ms, scrub(reason, secrets), request_id, code, True)
        what = refusal.what or ("the key was rejected" if refusal.key_rejected
                                else "refused for a reason other than the key itself")
    elif resp.status == 429:
        what = "rate limited (the key may be valid but cannot serve now)"
    elif resp.status >= 500:
        what = "the provider failed"
    elif resp.status == 404:
        what = "not found: the base_url does not lead to the provider's API (check base_url)"
    else:
        what = "unexpected answer (check base_url)"
    reason = "%s: HTTP %s%s" % (what, resp.status, detail)
    return ProbeResult(False, resp.status, resp.elapsed_ms, scrub(reason, secrets), request_id, code)


def evaluate_health(resp: t.Optional[Response], error: t.Optional[BaseException], expected: str,
                    started: float) -> t.Dict[str, t.Any]:
    """Judge an application's key health answer ``{"live": bool, "fingerprint": "sha256:..."}``.

    Live only when the application says ``live: true`` and reports the expected fingerprint.
    """
    latency_ms = int((time.monotonic() - started) * 1000)
    result: t.Dict[str, t.Any] = {"live": False, "status": None, "latency_ms": latency_ms,
                                  "reported_fingerprint": None, "reported_live": None}
    if error is not None or resp is None:
        result["reason"] = "health_url did not answer: %s" % scrub(str(error) if error else "no response")
        return result
    result["status"] = resp.status
    result["latency_ms"] = resp.elapsed_ms
    body = resp.body
    if not resp.ok:
        result["reason"] = "health_url answered HTTP %s" % resp.status
        return result
    if not isinstance(body, dict) or "live" not in body:
        result["reason"] = "health_url did not answer the JSON contract {\"live\": true|false, \"fingerprint\": \"sha256:...\"}"
        return result
    reported = body.get("fingerprint")
    reported_fp = reported if isinstance(reported, str) and FINGERPRINT_RE.match(reported.strip().lower()) else None
    result["reported_fingerprint"] = reported_fp
    result["reported_live"] = body.get("live") is True
    if body.get("live") is not True:
        result["reason"] = "the application reports its key is not live"
    elif reported_fp is None:
        result["reason"] = "the application reports no valid fingerprint (expected sha256: and hex digits)"
    elif not fingerprints_match(expected, reported_fp):
        result["reason"] = "the application serves the key %s, not the expected %s" % (reported_fp, expected)
    else:
        result["live"] = True
        result["reason"] = "the application serves the expected key and reports it live"
    return result


class Provider:
    """One provider behind the small interface every module uses.

    Subclasses set the class attributes and implement the ``_``-less methods
    that their capabilities allow. Everything they raise is a
    :class:`~ansible_collections.apikeys.rotation.plugins.module_utils.common.RotationError`.
    """

    name = ""
    display_name = ""
    default_base_url = ""
    base_url_env = ""
    admin_key_env = ""
    probe_path = ""
    key_pattern: t.Pattern[str] = re.compile(r".+")
    key_format = ""
    capabilities = Capabilities(False, False, False)
    #: the provider's own status words, mapped from the module's states
    state_map: t.Mapping[str, str] = {}

    def __init__(self, options: Options, transport: t.Any = None, sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self._transport = transport
        self._sleep = sleep
        self._client: t.Optional[HttpClient] = None

    # -- plumbing -----------------------------------------------------------

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(self.options.base_url, self.name, timeout=self.options.timeout,
                                      retries=self.options.retries, max_retry_wait=self.options.max_retry_wait,
                                      secrets=[self.options.admin_key], transport=self._transport, sleep=self._sleep)
        return self._client

    @property
    def stats(self) -> t.Dict[str, t.Any]:
        if self._client is None:
            return {"requests": 0, "retries": 0, "retry_wait": 0.0}
        return dict(self._client.stats)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def auth_headers(self, key: str) -> t.Dict[str, str]:
        return {"authorization": "Bearer %s" % key}

    def admin_headers(self) -> t.Dict[str, str]:
        if not self.options.admin_key:
            raise RotationError(
                "admin_key is required for this %s operation: set the admin_key option or the environment variable "
                "%s (or %s_FILE naming a file that holds it)" % (self.display_name, self.admin_key_env, self.admin_key_env),
                provider=self.name)
        return self.auth_headers(self.options.admin_key)

    def admin(self, method: str, path: str, action: str, collection: bool = False, **kwargs: t.Any) -> Response:
        """An admin call; ``collection`` marks a path without an id (a listing, a create), where 404 means a wrong base URL."""
        try:
            return self.client.request(method, path, action, headers=self.admin_headers(), **kwargs)
        except ProviderError as exc:
            if collection and exc.status == 404:
                raise ProviderError("%s. %s" % (exc, self.wrong_base_url_text()), provider=self.name, status=404,
                                    error_type=exc.error_type, request_id=exc.request_id, wrong_base_url=True) from None
            raise

    def wrong_base_url_text(self) -> str:
        """What a 404 where the API must answer means: base_url does not lead to the provider's API."""
        return ("The base_url %s does not lead to %s's API: set base_url (or %s) to its API root, %s for the real service"
                % (shown_url(self.options.base_url), self.display_name, self.base_url_env, self.default_base_url))

    def require(self, option: str) -> str:
        value = self.options.get(option)
        if not value:
            raise RotationError("%s is required for provider=%s" % (option, self.name), provider=self.name)
        return value

    # -- key values ---------------------------------------------------------

    def validate_key(self, api_key: t.Optional[str], option: str = "api_key") -> str:
        """Check a key's format; the error names the option and the expected format, never the value."""
        if api_key is None or not str(api_key).strip():
            raise RotationError("%s is empty: expected %s key (%s)" % (option, self.display_name_with_article, self.key_format),
                                provider=self.name)
        api_key = str(api_key).strip()
        if not self.key_pattern.match(api_key):
            raise RotationError("%s (fingerprint %s) is not %s key: expected %s%s"
                                % (option, fingerprint(api_key), self.display_name_with_article, self.key_format,
                                   describe_key_kind(api_key)), provider=self.name)
        return api_key

    @property
    def display_name_with_article(self) -> str:
        return ("an " if self.display_name[:1] in "AEIOU" else "a ") + self.display_name

    def redact(self, api_key: str) -> str:
        """The provider's redacted hint for a key value, as its listings show it."""
        raise NotImplementedError

    # -- the interface ----------------------------------------------------

    def probe(self, api_key: str) -> ProbeResult:
        """Ask the provider's zero-token endpoint whether ``api_key`` authenticates. Never raises on HTTP or network errors."""
        self.client.add_secret(api_key)
        started = time.monotonic()
        try:
            resp = self.client.send("GET", self.probe_path, "probe", headers=self.auth_headers(api_key))
        except NetworkError as exc:
            return probe_result_from(None, exc, started, self.client.secrets)
        return probe_result_from(resp, None, started, self.client.secrets, self.refusal)

    def refusal(self, status: int, body: t.Any, message: str) -> Refusal:
        """Read a 401/403 answer to the probe. By default the key itself was refused."""
        return Refusal(error_code(body))

    def create(self, name: str) -> CreatedKey:
        raise RotationError("%s has no API to create keys" % self.display_name, provider=self.name)

    def adopt(self, api_key: str, name: str, check_mode: bool = False) -> CreatedKey:
        raise RotationError("api_key is only used with providers that cannot create keys by API; %s creates its own"
                            % self.display_name, provider=self.name)

    def find(self, name: t.Optional[str] = None, key_id: t.Optional[str] = None) -> t.List[KeyRecord]:
        raise NotImplementedError

    def set_status(self, key_id: str, state: str, check_mode: bool = False) -> StatusChange:
        raise NotImplementedError

    def remove_orphan(self, record: KeyRecord, name: str) -> None:
        """Delete a key left behind by an interrupted create (its value is lost)."""
        self.set_status(record.id, "deleted")

    # -- helpers for subclasses ---------------------------------------------

    def unsupported_state(self, state: str) -> RotationError:
        return RotationError("%s cannot set a key to state=%s" % (self.display_name, state), provider=self.name)

    def check_state(self, state: str) -> None:
        if state not in STATES:
            raise RotationError("state must be one of %s, got %r" % (", ".join(STATES), state), provider=self.name)
        allowed = {"active": True, "disabled": self.capabilities.can_disable, "deleted": self.capabilities.can_delete}
        if not allowed[state]:
            raise self.unsupported_state(state)


def describe_key_kind(value: str) -> str:
    """A hint about which kind of key was given instead (never the value)."""
    kinds = (
        ("sk-ant-admin01-", "an Anthropic admin key"),
        ("sk-ant-api03-", "an Anthropic API key"),
        ("sk-ant-", "an Anthropic key"),
        ("sk-or-v1-", "an OpenRouter key"),
        ("sk-admin-", "an OpenAI admin key"),
        ("sk-proj-", "an OpenAI project key"),
        ("sk-svcacct-", "an OpenAI service-account key"),
    )
    for prefix, label in kinds:
        if value.startswith(prefix):
            return "; the value given looks like %s" % label
    return "; the value given does not look like a known provider key"


__all__ = [
    "Capabilities", "CreatedKey", "KeyRecord", "Options", "ProbeResult", "Provider", "ProviderError", "Refusal",
    "RotationError", "StatusChange", "hint_matches", "iso_time", "provider_argument_spec", "resolve_options",
    "split_hint",
]
