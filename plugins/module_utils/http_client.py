# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of the provider modules. Private to the apikeys.rotation collection.

Timeouts, bounded retries (408, 409, 429, 5xx and network errors) that honour
``retry-after-ms``, ``retry-after`` (seconds or an HTTP date) and
``x-should-retry``, exponential backoff with jitter otherwise, and one error
type, :class:`ProviderError`, whose message never holds a key value.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import sys
import time
import traceback
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint


def _import_httpx() -> t.Any:
    """Import httpx without its command-line client.

    httpx imports ``httpx._main`` (click, rich, pygments: about as much again as httpx
    itself) whenever those happen to be installed, on every import. A module never uses
    it: for the duration of the import ``httpx._main`` is marked absent, so httpx falls
    back to its stub ``main``; afterwards the mark is removed.
    """
    hidden = "httpx" not in sys.modules and "httpx._main" not in sys.modules
    if hidden:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx as module  # pylint: disable=import-outside-toplevel
    finally:
        if hidden and "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]
    return module


try:
    httpx = _import_httpx()
except ImportError:
    httpx = None
    HAS_HTTPX = False
    HTTPX_IMPORT_ERROR: t.Optional[str] = traceback.format_exc()
else:
    HAS_HTTPX = True
    HTTPX_IMPORT_ERROR = None

_SSL_CONTEXTS: t.Dict[t.Tuple[bool, str, str], t.Any] = {}


def ssl_context(verify: t.Any) -> t.Any:
    """httpx's own TLS context for ``verify`` True or False, made once per process and CA setting.

    Loading the CA bundle costs tens of milliseconds per client. The context is kept per
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` value (httpx honours them), so a task whose environment
    names another bundle gets a context of its own. Anything else (a context, a path) is
    passed through.
    """
    if verify is not True and verify is not False:
        return verify
    key = (bool(verify), os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    if key not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[key] = httpx.create_ssl_context(verify=verify)
    return _SSL_CONTEXTS[key]


if HAS_HTTPX:
    # Made where this file is imported: in the controller's main process when the action
    # plugins load it, so every task's worker inherits it.
    ssl_context(True)
    # httpx imports its transport (httpcore, h11, anyio) only when the first client is made,
    # which every provider task does: importing it here puts it in the main process too, where
    # each worker inherits it instead of importing it again (about 30 ms a task). A module
    # process pays the same import either way.
    import httpcore  # noqa: F401  pylint: disable=unused-import,wrong-import-position

USER_AGENT = "apikeys.rotation"
RETRYABLE_STATUSES = frozenset((408, 409, 429))
NEVER_RETRY_STATUSES = frozenset((400, 401, 403, 404))
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0

# Anything that looks like a provider key: sk-ant-api03-…, sk-ant-admin01-…,
# sk-proj-…, sk-svcacct-…, sk-admin-…, legacy sk-…, sk-or-v1-<64 hex>, including
# the masked forms providers echo back ("sk-proj-****abcd", "sk-abc...xyz").
_KEY_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-*.\u2026]+")
_KNOWN_PREFIXES = ("sk-ant-api03-", "sk-ant-admin01-", "sk-or-v1-", "sk-svcacct-", "sk-proj-", "sk-admin-")
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)(?!\[)[^\s\"',;]+")
_MIN_FULL_KEY_BODY = 20


def _mask_token(token: str) -> str:
    trailing = ""
    while token and token[-1] == "." and not token.endswith("..."):
        trailing = token[-1] + trailing
        token = token[:-1]
    body = token[3:]
    masked = "*" in token or "..." in token or "\u2026" in token
    if not masked and len(body) < _MIN_FULL_KEY_BODY:
        return token + trailing
    prefix = "sk-"
    for known in _KNOWN_PREFIXES:
        if token.startswith(known):
            prefix = known
            break
    if masked:
        return prefix + "[redacted]" + trailing
    return "[key %s]" % fingerprint(token) + trailing


def scrub(text: t.Any, secrets: t.Iterable[t.Optional[str]] = ()) -> str:
    """Return ``text`` with every known secret and every key-shaped token replaced.

    A complete key becomes ``[key sha256:…]`` (its fingerprint); a key that the
    provider already masked becomes its prefix plus ``[redacted]``; a bearer
    token becomes ``Bearer [redacted]``.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "[key %s]" % fingerprint(secret))
    text = _KEY_TOKEN_RE.sub(lambda m: _mask_token(m.group(0)), text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + "[redacted]", text)
    return text


def join_url(base_url: str, path: str) -> str:
    """Join a base URL that may carry a path (``…/openai/v1``) with an API path (``/models``)."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", path, re.I):
        return path
    if not path:
        return base_url
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def header(headers: t.Optional[t.Mapping[str, str]], name: str) -> t.Optional[str]:
    """Case-insensitive header lookup on any mapping."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def should_retry(status: int, headers: t.Optional[t.Mapping[str, str]] = None) -> bool:
    """Whether a response with this status is worth another attempt."""
    override = (header(headers, "x-should-retry") or "").strip().lower()
    if override == "true":
        return True
    if override == "false":
        return False
    if status in NEVER_RETRY_STATUSES:
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def retry_after(headers: t.Optional[t.Mapping[str, str]], now: t.Optional[float] = None) -> t.Optional[float]:
    """Seconds the server asked us to wait (``retry-after-ms``, then ``retry-after``), or None."""
    value = header(headers, "retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def backoff(attempt: int, rand: t.Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter for the ``attempt``-th retry (0-based)."""
    delay = min(INITIAL_BACKOFF * (2 ** attempt), MAX_BACKOFF)
    return delay * (1.0 - 0.25 * rand())


def retry_delay(headers: t.Optional[t.Mapping[str, str]], attempt: int, max_wait: float,
                now: t.Optional[float] = None, rand: t.Callable[[], float] = random.random) -> float:
    """Seconds to wait before the next attempt: the server's wish, else backoff; never above ``max_wait``."""
    asked = retry_after(headers, now=now)
    delay = asked if asked is not None else backoff(attempt, rand)
    return max(0.0, min(delay, max_wait))


def parse_error(status: t.Optional[int], body: t.Any, headers: t.Optional[t.Mapping[str, str]] = None
                ) -> t.Tuple[t.Optional[str], str, t.Optional[str]]:
    """Return ``(error_type, message, request_id)`` from any provider's error response.

    Anthropic: ``{"type":"error","error":{"type","message"},"request_id"}``;
    OpenAI: ``{"error":{"message","type","param","code"}}``;
    OpenRouter: ``{"error":{"code":<status>,"message"}}``.
    """
    error_type: t.Optional[str] = None
    message = ""
    request_id = header(headers, "request-id") or header(headers, "x-request-id")
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body) if body.strip() else None
        except ValueError:
            message = body.strip()[:300]
            body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            etype = err.get("type")
            code = err.get("code")
            if isinstance(etype, str) and etype:
                error_type = etype
                if isinstance(code, str) and code and code != etype:
                    error_type = "%s/%s" % (etype, code)
            elif isinstance(code, str) and code:
                error_type = code
            msg = err.get("message")
            if msg is not None:
                message = str(msg)
        elif isinstance(err, str):
            message = err
        elif isinstance(body.get("message"), str):
            message = body["message"]
        if not request_id and isinstance(body.get("request_id"), str):
            request_id = body["request_id"]
    if not message and status is not None:
        message = "HTTP %s" % status
    return error_type, message, request_id


class ProviderError(RotationError):
    """A provider API call that failed: status, provider error type, request id, readable message."""

    def __init__(self, message: str, provider: t.Optional[str] = None, status: t.Optional[int] = None,
                 error_type: t.Optional[str] = None, request_id: t.Optional[str] = None,
                 secrets: t.Iterable[t.Optional[str]] = (), **details: t.Any) -> None:
        clean = scrub(message, secrets)
        super().__init__(clean, provider=provider, status=status, error_type=error_type,
                         request_id=request_id, **details)
        self.provider = provider
        self.status = status
        self.error_type = error_type
        self.request_id = request_id

    @classmethod
    def from_response(cls, provider: str, action: str, status: int, body: t.Any,
                      headers: t.Optional[t.Mapping[str, str]] = None,
                      secrets: t.Iterable[t.Optional[str]] = ()) -> "ProviderError":
        error_type, message, request_id = parse_error(status, body, headers)
        text = format_error(provider, action, status, error_type, message, request_id)
        return cls(text, provider=provider, status=status, error_type=error_type,
                   request_id=request_id, secrets=secrets)


def format_error(provider: str, action: str, status: t.Optional[int], error_type: t.Optional[str],
                 message: str, request_id: t.Optional[str]) -> str:
    """The single place where a provider failure becomes a sentence."""
    parts = ["%s: %s failed" % (provider, action)]
    if status is not None:
        parts.append(": HTTP %s" % status)
    else:
        parts.append(":")
    if error_type:
        parts.append(" %s" % error_type)
    if message:
        parts.append(" - %s" % message.rstrip())
    if request_id:
        parts.append(" (request id %s)" % request_id)
    return "".join(parts)


class Response:
    """What callers get back: status, headers, parsed JSON (or None), elapsed milliseconds."""

    def __init__(self, status: int, headers: t.Mapping[str, str], body: t.Any, elapsed_ms: int) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed_ms = elapsed_ms

    @property
    def request_id(self) -> t.Optional[str]:
        return header(self.headers, "request-id") or header(self.headers, "x-request-id")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class NetworkError(ProviderError):
    """No HTTP answer at all (connection refused, timeout, connection dropped)."""


class HttpClient:
    """A thin wrapper over ``httpx.Client`` with the collection's retry policy.

    ``stats`` counts requests, retries and the seconds spent waiting, for results.
    """

    def __init__(self, base_url: str, provider: str, timeout: float = 30.0, retries: int = 3,
                 max_retry_wait: float = 30.0, headers: t.Optional[t.Mapping[str, str]] = None,
                 verify: t.Any = True, secrets: t.Iterable[t.Optional[str]] = (),
                 sleep: t.Callable[[float], None] = time.sleep, rand: t.Callable[[], float] = random.random,
                 transport: t.Any = None) -> None:
        if httpx is None:
            raise RotationError("the Python library httpx is required by the provider modules")
        self.base_url = base_url
        self.provider = provider
        self.retries = max(0, int(retries))
        self.max_retry_wait = max(0.0, float(max_retry_wait))
        self.secrets: t.List[str] = [s for s in secrets if s]
        self._sleep = sleep
        self._rand = rand
        default_headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        default_headers.update(headers or {})
        kwargs: t.Dict[str, t.Any] = {"timeout": float(timeout), "headers": default_headers,
                                      "verify": ssl_context(verify), "follow_redirects": False}
        if transport is not None:
            kwargs["transport"] = transport
        self._client = httpx.Client(**kwargs)
        self.stats: t.Dict[str, t.Any] = {"requests": 0, "retries": 0, "retry_wait": 0.0}

    def add_secret(self, value: t.Optional[str]) -> None:
        if value and value not in self.secrets:
            self.secrets.append(value)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.close()

    def url(self, path: str) -> str:
        return join_url(self.base_url, path)

    def _wait(self, seconds: float) -> None:
        self.stats["retries"] += 1
        self.stats["retry_wait"] = round(self.stats["retry_wait"] + seconds, 3)
        if seconds > 0:
            self._sleep(seconds)

    def send(self, method: str, path: str, action: str, headers: t.Optional[t.Mapping[str, str]] = None,
             params: t.Optional[t.Mapping[str, t.Any]] = None, json_body: t.Any = None,
             idempotent: t.Optional[bool] = None) -> Response:
        """One logical request, retried per policy. Returns the last response whatever its status.

        Raises :class:`NetworkError` when no attempt got an HTTP answer. A request
        that is not ``idempotent`` (default: POST) is not retried after it may have
        reached the server (read timeout, dropped connection), so a create is never
        sent twice; it is still retried on connect errors and retryable statuses.
        """
        if idempotent is None:
            idempotent = method.upper() != "POST"
        url = self.url(path)
        attempt = 0
        while True:
            self.stats["requests"] += 1
            started = time.monotonic()
            try:
                resp = self._client.request(method, url, headers=dict(headers or {}), params=params,
                                            json=json_body)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                retryable = idempotent or not sent
                if retryable and attempt < self.retries:
                    self._wait(retry_delay(None, attempt, self.max_retry_wait, rand=self._rand))
                    attempt += 1
                    continue
                kind = type(exc).__name__
                detail = str(exc) or kind
                raise NetworkError(format_error(self.provider, action, None, "network_error",
                                                "%s: %s (after %d attempt(s))" % (kind, detail, attempt + 1), None),
                                   provider=self.provider, error_type="network_error", secrets=self.secrets)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            raw = resp.content
            body: t.Any = None
            if raw:
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            result = Response(resp.status_code, resp.headers, body, elapsed_ms)
            if not result.ok and should_retry(result.status, resp.headers) and attempt < self.retries:
                self._wait(retry_delay(resp.headers, attempt, self.max_retry_wait, rand=self._rand))
                attempt += 1
                continue
            return result

    def request(self, method: str, path: str, action: str, ok: t.Collection[int] = (200, 201, 204),
                **kwargs: t.Any) -> Response:
        """Like :meth:`send` but raises :class:`ProviderError` unless the final status is in ``ok``."""
        result = self.send(method, path, action, **kwargs)
        if result.status not in ok:
            raise ProviderError.from_response(self.provider, action, result.status, result.body,
                                              result.headers, secrets=self.secrets)
        return result
