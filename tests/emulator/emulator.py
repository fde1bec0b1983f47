# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider emulator: Anthropic, OpenAI and OpenRouter on loopback, for tests.

Standard library only, one process::

    python tests/emulator/emulator.py --port 8787 [--host 127.0.0.1]

Provider base URLs (paths, headers, bodies, status codes and error shapes as
in providers.md):

- Anthropic   ``http://HOST:PORT/anthropic``            (then ``/v1/models`` ...)
- OpenAI      ``http://HOST:PORT/openai/v1``            (then ``/models`` ...)
- OpenRouter  ``http://HOST:PORT/openrouter/api/v1``    (then ``/key`` ...)
- Cloudflare  ``http://HOST:PORT/cloudflare/client/v4`` (Workers secrets, a deploy target)
- A Worker    ``http://HOST:PORT/worker/SCRIPT``        (``/healthz/key`` and traffic; a simulated consumer)

The control API lives under ``/_emulator/`` (see README.md next to this file).
Key values are shown once, in the answer that creates them, and nowhere else:
not in the state, not in the hit counters, not in the log.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import traceback
import typing as t
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROVIDERS = ("anthropic", "openai", "openrouter")
PROVIDER_BASES = (
    ("/anthropic", "anthropic"),
    ("/openai/v1", "openai"),
    ("/openrouter/api/v1", "openrouter"),
    ("/cloudflare/client/v4", "cloudflare"),
    ("/worker", "worker"),
)
# Faults may target the providers, the Cloudflare API and the simulated Workers.
SERVICES = PROVIDERS + ("cloudflare", "worker")
# Worker secrets (Cloudflare's limit: 5 kB; names as Workers bindings allow).
CLOUDFLARE_SECRET_MAX = 5 * 1024
CLOUDFLARE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CLOUDFLARE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
CLOUDFLARE_SCRIPT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CLOUDFLARE_SECRETS_RE = re.compile(
    r"^/accounts/(?P<account>[^/]+)/workers/scripts/(?P<script>[^/]+)/secrets(?:/(?P<name>[^/]+))?/?$")
CONTROL_PREFIX = "/_emulator"

# Behaviour the public documentation does not pin down (UNCONFIRMED in
# providers.md). Kept here so a single line changes it.
ANTHROPIC_API_KEY_ON_ADMIN_STATUS = 403      # a normal API key on the Admin API: permission_error
ANTHROPIC_ADMIN_KEY_ON_API_STATUS = 401      # an admin key on /v1/models or /v1/messages: authentication_error
ANTHROPIC_ACCEPT_BEARER = True               # anthropic SDK 2.x sends the API key as "Authorization: Bearer"
OPENAI_PROJECT_KEY_ON_ADMIN_STATUS = 401     # OpenAI answers missing scopes with 401 "insufficient permissions"
OPENAI_ADMIN_KEY_ON_API_STATUS = 401
OPENROUTER_MANAGEMENT_ON_COMPLETIONS_STATUS = 403

# Where the providers' own documents disagree, a switch per reading (POST /_emulator/behaviour);
# the first value of each is the default: the published document's reading.
BEHAVIOURS = {
    # OpenAI's published OpenAPI document (delete-project-api-key): deleting a service account's key is
    # an error (400); newer reference pages say it deletes the key.
    "openai_service_account_key_delete": ("refuse", "allow"),
    # A scope-restricted OpenAI key on GET /models: both statuses are seen in the wild.
    "openai_restricted_status": (401, 403),
    # Keys made through the OpenAI API: all permissions, or scoped so that they may not list models
    # (an organisation whose default permissions restrict new keys).
    "openai_new_key_scopes": ("all", "no-model-list"),
}
OPENAI_SA_KEY_DELETE_MESSAGE = "The API key belongs to a service account and cannot be deleted."
# Default workspace of the OpenRouter account (its keys list without workspace_id).
OPENROUTER_DEFAULT_WORKSPACE = "0df9e665-d932-5740-b2c7-b52af166bc11"
OPENROUTER_USER = "user_2dHFtVWx2n56w6HkM0000000000"

ANTHROPIC_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # 2023-06-01; anthropic SDK 2.x sends a newer date
MAX_BODY = 10 * 1024 * 1024
MAX_RECORDED_REQUESTS = 20000
MAX_SLEEP = 600.0

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
LOWER_ALNUM = string.ascii_lowercase + string.digits
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
KEY_CHARS = ALNUM + "-_"

# Anything that looks like a key value is masked before it reaches the log.
_LOG_SECRET_RE = re.compile(r"sk-[A-Za-z0-9_\-]{4,}")


def rand(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for dummy in range(length))


def fingerprint(value: str) -> str:
    """The collection's public fingerprint of a secret: ``sha256:`` + 12 hex."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> t.Optional[float]:
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def safe_for_log(text: str) -> str:
    return _LOG_SECRET_RE.sub("sk-***", text)


def log_line(text: str) -> None:
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Key formats, ids and redacted hints (providers.md)

def mint_value(provider: str, kind: str) -> str:
    if provider == "anthropic":
        prefix = "sk-ant-admin01-" if kind == "admin" else "sk-ant-api03-"
        return prefix + rand(KEY_CHARS, 93) + "AA"
    if provider == "openai":
        prefix = "sk-admin-" if kind == "admin" else "sk-svcacct-"
        return prefix + rand(KEY_CHARS, 74) + "T3BlbkFJ" + rand(KEY_CHARS, 74)
    return "sk-or-v1-" + secrets.token_hex(32)


def anthropic_hint(value: str) -> str:
    match = re.match(r"sk-ant-[a-z]+\d+-", value)
    prefix = match.group(0) if match else value[:3]
    return prefix + value[len(prefix):len(prefix) + 3] + "..." + value[-4:]


def openai_redacted(value: str) -> str:
    return value[:6] + "..." + value[-3:]


def openrouter_label(value: str) -> str:
    """OpenRouter's ``label``: ``sk-or-v1-`` + 3 characters + ``...`` + the last 4 (``sk-or-v1-0e6...1c96``)."""
    body = value[len("sk-or-v1-"):]
    return "sk-or-v1-" + body[:3] + "..." + body[-4:]


def openai_incorrect_key_shown(value: str) -> str:
    """How OpenAI's 401 message shows a rejected key: 8 chars, stars, last 4.

    The real API shows short strings whole; here anything under 24 chars is
    shown as stars only, so the emulator never shows more than the real API.
    """
    if len(value) < 24:
        return "*" * max(len(value), 3)
    return value[:8] + "*" * (len(value) - 12) + value[-4:]


def cloudflare_ok(result: t.Any) -> dict:
    """Cloudflare's v4 envelope around a result."""
    return {"success": True, "errors": [], "messages": [], "result": result}


def cloudflare_error(status: int, code: int, message: str,
                     chain: t.Optional[t.Tuple[int, str]] = None) -> dict:
    """Cloudflare's v4 envelope around one error (``status`` is the HTTP status it goes with)."""
    error: dict = {"code": code, "message": message}
    if chain is not None:
        error["error_chain"] = [{"code": chain[0], "message": chain[1]}]
    del status
    return {"success": False, "errors": [error], "messages": [], "result": None}


def request_id(provider: str) -> str:
    if provider == "anthropic":
        return "req_01" + rand(BASE58, 22)
    return "req_" + secrets.token_hex(16)


# ---------------------------------------------------------------------------
# Models served by the probe endpoints

ANTHROPIC_MODELS = [
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-24T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-opus-4-20250514", "Claude Opus 4", "2025-05-22T00:00:00Z"),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
    ("claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-24T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
]

OPENAI_MODELS = [
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4.1", 1744316542, "system"),
    ("gpt-4.1-mini", 1744318173, "system"),
    ("o3", 1744225308, "system"),
    ("o4-mini", 1744225351, "system"),
    ("text-embedding-3-small", 1705948997, "system"),
    ("text-embedding-3-large", 1705953180, "system"),
]

OPENROUTER_MODELS = [
    ("anthropic/claude-sonnet-4.5", "Anthropic: Claude Sonnet 4.5", 1759161676, 1000000),
    ("openai/gpt-4o", "OpenAI: GPT-4o", 1715367049, 128000),
    ("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", 1721260800, 128000),
    ("google/gemini-2.5-flash", "Google: Gemini 2.5 Flash", 1750172488, 1048576),
    ("meta-llama/llama-3.3-70b-instruct", "Meta: Llama 3.3 70B Instruct", 1733506137, 131072),
]


def anthropic_model(entry: t.Tuple[str, str, str]) -> dict:
    return {"type": "model", "id": entry[0], "display_name": entry[1], "created_at": entry[2],
            "lifecycle": "active", "max_input_tokens": 200000, "max_tokens": 64000}


def openai_model(entry: t.Tuple[str, int, str]) -> dict:
    return {"id": entry[0], "object": "model", "created": entry[1], "owned_by": entry[2]}


def openrouter_model(entry: t.Tuple[str, str, int, int]) -> dict:
    return {"id": entry[0], "canonical_slug": entry[0], "name": entry[1], "created": entry[2],
            "description": entry[1], "context_length": entry[3],
            "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"]},
            "pricing": {"prompt": "0.000003", "completion": "0.000015", "request": "0", "image": "0"},
            "top_provider": {"context_length": entry[3], "max_completion_tokens": 16384, "is_moderated": False},
            "supported_parameters": ["max_tokens", "temperature", "tools"]}


# ---------------------------------------------------------------------------
# Errors in each provider's own shape

ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    405: ("invalid_request_error", "Method Not Allowed"),
    408: ("timeout_error", "Request timed out."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}

OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to perform this request."),
    404: ("invalid_request_error", None, "Not found."),
    409: ("invalid_request_error", None, "Conflict."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}

OPENROUTER_MESSAGES = {
    400: "Bad Request",
    401: "User not found.",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answer; rendered in the shape of the provider it belongs to."""

    def __init__(self, status: int, message: t.Optional[str] = None, etype: t.Optional[str] = None,
                 code: t.Any = None, param: t.Optional[str] = None) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message
        self.etype = etype
        self.code = code
        self.param = param


def error_body(provider: str, err: ApiError, rid: str) -> dict:
    if provider == "anthropic":
        default = ANTHROPIC_ERRORS.get(err.status)
        if default is None:
            default = ("api_error", "Internal server error") if err.status >= 500 else ("invalid_request_error", "Invalid request.")
        return {"type": "error", "error": {"type": err.etype or default[0], "message": err.message or default[1]},
                "request_id": rid}
    if provider == "openai":
        default = OPENAI_ERRORS.get(err.status)
        if default is None:
            default = ("server_error", None, "Server error.") if err.status >= 500 else ("invalid_request_error", None, "Invalid request.")
        code = err.code if (err.code is not None or err.etype is not None or err.message is not None) else default[1]
        return {"error": {"message": err.message or default[2], "type": err.etype or default[0],
                          "param": err.param, "code": code}}
    message = err.message or OPENROUTER_MESSAGES.get(err.status) or ("Error" if err.status < 500 else "Internal Server Error")
    return {"error": {"code": err.status, "message": message}}


def refuse_unknown(provider: str, unknown: t.Set[str], openrouter_message: str) -> None:
    """A 400 in the provider's words for the first parameter or field it does not take."""
    if not unknown:
        return
    name = sorted(unknown)[0][:64]
    if provider == "openai":
        raise ApiError(400, "Unrecognized request argument supplied: %s" % name, param=name, code="unknown_parameter")
    if provider == "anthropic":
        raise ApiError(400, "%s: Extra inputs are not permitted" % name)
    raise ApiError(400, openrouter_message % name)


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------
# State

class Key:
    """One key at one provider. ``value`` never leaves this object except at creation."""

    def __init__(self, provider: str, kind: str, key_id: str, value: str, name: str, created: float) -> None:
        self.provider = provider
        self.kind = kind
        self.id = key_id
        self.value = value
        self.name = name
        self.created = created
        self.updated: t.Optional[float] = None
        self.status = "active"
        self.valid_from = created
        self.never_valid = False
        self.refusals_left = 0             # the next so many authentications get a 401 (new_key_refusals)
        self.grace_until: t.Optional[float] = None
        self.last_used: t.Optional[float] = None
        # anthropic (workspace_id None: the Default Workspace, which has no id)
        self.workspace_id: t.Optional[str] = None
        self.created_by: t.Optional[str] = None
        self.scope = "workspace"           # or "organization": no workspace at all
        self.no_hint = False               # partial_key_hint null
        self.no_creator = False            # created_by null
        self.expires: t.Optional[float] = None
        # openai
        self.scopes: t.Optional[t.List[str]] = None        # None: all permissions
        self.refusal_code: t.Optional[str] = None          # a 401 code other than invalid_api_key
        self.owner_project_access = "active"
        self.project_id: t.Optional[str] = None
        self.service_account_id: t.Optional[str] = None
        # openrouter
        self.limit: t.Optional[float] = None
        self.limit_reset: t.Optional[str] = None
        self.include_byok_in_limit = False
        self.expires_at: t.Optional[str] = None
        self.usage = 0.0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.value)

    @property
    def hint(self) -> str:
        if self.provider == "anthropic":
            return anthropic_hint(self.value)
        if self.provider == "openai":
            return openai_redacted(self.value)
        return openrouter_label(self.value)

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def authenticates(self, now: float) -> bool:
        if self.never_valid or now < self.valid_from or self.expired(now):
            return False
        if self.provider == "openrouter" and self.expires_at:
            expiry = parse_iso(self.expires_at)
            if expiry is not None and now >= expiry:
                return False
        if self.status == "active":
            return True
        return self.grace_until is not None and now < self.grace_until


class Worker:
    """A Cloudflare Worker script with its secrets, and the code it runs: a simulated consumer of a key.

    A secret written through the API makes a new deployment; the Worker serves it once the
    deployment is live (``pickup_delay`` seconds later), or never (``pickup: never``, a Worker
    that does not pick the key up). ``GET /worker/SCRIPT/healthz/key`` answers as
    docs/key-health-endpoint.md says, probing the provider with the key it serves; any other
    path under the Worker is traffic, answered 200 only when that key authenticates.
    """

    def __init__(self, account_id: str, script: str, provider: str, secret_name: str) -> None:
        self.account_id = account_id
        self.script = script
        self.provider = provider
        self.secret_name = secret_name
        self.secrets: t.Dict[str, dict] = {}     # name -> {"value", "fingerprint", "deployment", "at"}
        self.deployments = 0
        self.pickup = "deploy"                   # or "never"
        self.pickup_delay = 0.0
        self.serving: t.Optional[str] = None     # the value the running code holds
        self.served = 0
        self.failed = 0
        self.puts = 0

    def put_secret(self, name: str, value: str, now: float) -> None:
        self.deployments += 1
        self.puts += 1
        self.secrets[name] = {"value": value, "fingerprint": fingerprint(value), "deployment": self.deployments,
                              "at": now}

    def key_in_use(self, now: float) -> t.Optional[str]:
        """The key the running code holds: the bound secret once its deployment is live."""
        secret = self.secrets.get(self.secret_name)
        if secret is not None and self.pickup != "never" and now >= secret["at"] + self.pickup_delay:
            self.serving = secret["value"]
        return self.serving

    def state(self, now: float) -> dict:
        held = self.key_in_use(now)
        return {"account_id": self.account_id, "script": self.script, "provider": self.provider,
                "secret_name": self.secret_name, "deployments": self.deployments, "puts": self.puts,
                "secrets": [{"name": n, "type": "secret_text", "fingerprint": v["fingerprint"],
                             "deployment": v["deployment"]} for n, v in sorted(self.secrets.items())],
                "serving_fingerprint": fingerprint(held) if held else None,
                "pickup": self.pickup, "pickup_delay": self.pickup_delay,
                "requests": {"served": self.served, "failed": self.failed}}


class Fault:
    def __init__(self, fault_id: str, spec: dict) -> None:
        self.id = fault_id
        self.provider: t.Optional[str] = spec.get("provider")
        self.method: t.Optional[str] = spec.get("method")
        self.path: t.Optional[str] = spec.get("path")
        self.path_re = re.compile(self.path) if self.path else None
        self.status: t.Optional[int] = spec.get("status")
        self.remaining: int = spec.get("count", 1)
        self.retry_after = spec.get("retry_after")
        self.retry_after_ms = spec.get("retry_after_ms")
        self.latency = spec.get("latency")
        self.hang = spec.get("hang")

    def matches(self, provider: str, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.provider and self.provider != provider:
            return False
        if self.method and self.method != method:
            return False
        return not self.path_re or bool(self.path_re.search(path))

    def headers(self) -> t.List[t.Tuple[str, str]]:
        headers = []
        if self.retry_after is not None:
            value = self.retry_after
            headers.append(("Retry-After", "%d" % value if float(value).is_integer() else "%g" % value))
        if self.retry_after_ms is not None:
            headers.append(("retry-after-ms", "%d" % self.retry_after_ms))
        return headers

    def describe(self) -> dict:
        return {"id": self.id, "provider": self.provider, "method": self.method, "path": self.path,
                "status": self.status, "remaining": self.remaining, "retry_after": self.retry_after,
                "retry_after_ms": self.retry_after_ms, "latency": self.latency, "hang": self.hang}


class Call:
    """What a route handler sees: the request, the authenticated key, the path parameters."""

    def __init__(self, provider: str, method: str, path: str, query: t.Dict[str, t.List[str]],
                 headers: t.Any, body: bytes) -> None:
        self.provider = provider
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.key: t.Optional[Key] = None
        self.params: t.Dict[str, str] = {}

    def arg(self, name: str) -> t.Optional[str]:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> dict:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "The request body is not valid JSON.")
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return data


class Response:
    def __init__(self, status: int, body: t.Any, headers: t.Optional[t.List[t.Tuple[str, str]]] = None,
                 hang: t.Optional[float] = None) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers or [])
        self.hang = hang


class Route:
    """One provider endpoint: the query parameters and body fields it takes (``None``: not checked).

    A parameter or body field the provider does not document is refused with a 400 in its shape.
    """

    def __init__(self, method: str, template: str, auth: str, handler: str,
                 query: t.Optional[t.Iterable[str]] = (), body: t.Optional[t.Iterable[str]] = None) -> None:
        self.method = method
        self.template = template
        self.auth = auth  # none | api | admin | any
        self.handler = handler
        self.query = None if query is None else frozenset(query)
        self.body = None if body is None else frozenset(body)
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self.regex = re.compile("^" + pattern + "$")


ANTHROPIC_PAGE = ("limit", "after_id", "before_id")
OPENAI_PAGE = ("limit", "after")
# The official Anthropic SDKs append ?beta=true to Admin API calls.
ANTHROPIC_BETA = ("beta",)
ROUTES = {
    "anthropic": [
        Route("GET", "/v1/models", "api", "anthropic_models", ANTHROPIC_PAGE + ANTHROPIC_BETA),
        Route("GET", "/v1/models/{model_id}", "api", "anthropic_model", ANTHROPIC_BETA),
        Route("POST", "/v1/messages", "api", "anthropic_messages", ANTHROPIC_BETA),
        Route("POST", "/v1/messages/count_tokens", "api", "anthropic_count_tokens", ANTHROPIC_BETA),
        Route("GET", "/v1/organizations/api_keys", "admin", "anthropic_list_keys",
              ANTHROPIC_PAGE + ANTHROPIC_BETA + ("status", "workspace_id", "created_by_user_id")),
        Route("GET", "/v1/organizations/api_keys/{id}", "admin", "anthropic_get_key", ANTHROPIC_BETA),
        Route("POST", "/v1/organizations/api_keys/{id}", "admin", "anthropic_update_key", ANTHROPIC_BETA,
              ("name", "status")),
    ],
    "openai": [
        Route("GET", "/models", "api", "openai_models"),
        Route("GET", "/models/{model}", "api", "openai_model"),
        Route("POST", "/chat/completions", "api", "openai_billing"),
        Route("POST", "/responses", "api", "openai_billing"),
        Route("POST", "/completions", "api", "openai_billing"),
        Route("POST", "/embeddings", "api", "openai_billing"),
        Route("GET", "/organization/projects", "admin", "openai_list_projects", OPENAI_PAGE + ("include_archived",)),
        Route("POST", "/organization/projects", "admin", "openai_create_project", (),
              ("name", "geography", "external_key_id")),
        Route("GET", "/organization/projects/{project_id}", "admin", "openai_get_project"),
        Route("GET", "/organization/projects/{project_id}/service_accounts", "admin", "openai_list_sas", OPENAI_PAGE),
        Route("POST", "/organization/projects/{project_id}/service_accounts", "admin", "openai_create_sa", (),
              ("name", "create_service_account_only")),
        Route("GET", "/organization/projects/{project_id}/service_accounts/{service_account_id}", "admin", "openai_get_sa"),
        Route("DELETE", "/organization/projects/{project_id}/service_accounts/{service_account_id}", "admin", "openai_delete_sa"),
        Route("POST", "/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys", "admin",
              "openai_create_sa_key", (), ("name", "scopes")),
        Route("GET", "/organization/projects/{project_id}/api_keys", "admin", "openai_list_keys",
              OPENAI_PAGE + ("owner_project_access",)),
        Route("GET", "/organization/projects/{project_id}/api_keys/{key_id}", "admin", "openai_get_key"),
        Route("DELETE", "/organization/projects/{project_id}/api_keys/{key_id}", "admin", "openai_delete_key"),
    ],
    "openrouter": [
        Route("GET", "/models", "none", "openrouter_models", None),
        Route("GET", "/key", "any", "openrouter_key"),
        Route("POST", "/chat/completions", "api", "openrouter_billing"),
        Route("POST", "/completions", "api", "openrouter_billing"),
        Route("GET", "/keys", "admin", "openrouter_list_keys", ("include_disabled", "offset", "workspace_id")),
        Route("POST", "/keys", "admin", "openrouter_create_key", (),
              ("name", "limit", "limit_reset", "include_byok_in_limit", "expires_at", "workspace_id")),
        Route("GET", "/keys/{hash}", "admin", "openrouter_get_key"),
        Route("PATCH", "/keys/{hash}", "admin", "openrouter_update_key", (),
              ("name", "disabled", "limit", "limit_reset", "include_byok_in_limit")),
        Route("DELETE", "/keys/{hash}", "admin", "openrouter_delete_key"),
    ],
}


def find_route(provider: str, method: str, path: str) -> t.Tuple[t.Optional[Route], t.Dict[str, str]]:
    for route in ROUTES[provider]:
        if route.method != method:
            continue
        match = route.regex.match(path)
        if match:
            return route, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
    return None, {}


def path_methods(provider: str, path: str) -> t.List[str]:
    """The methods the provider serves on ``path`` (for a 405 on a known path)."""
    return sorted({route.method for route in ROUTES[provider] if route.regex.match(path)})


def default_propagation() -> dict:
    return {"new_key_delay": 0.0, "new_key_refusals": 0, "revoke_delay": 0.0, "never_valid": False}


def cursor_page(ordered: list, ident: t.Callable[[t.Any], str], keep: t.Callable[[t.Any], bool], limit: int,
                after: t.Optional[str], before: t.Optional[str]) -> t.Tuple[list, bool]:
    """A page of ``ordered`` (filtered by ``keep``) after or before a cursor id; (page, has_more)."""
    ids = [ident(item) for item in ordered]
    if after is not None:
        if after not in ids:
            raise ApiError(400, "Invalid cursor: %s" % after[:64])
        rest = [item for item in ordered[ids.index(after) + 1:] if keep(item)]
        return rest[:limit], len(rest) > limit
    if before is not None:
        if before not in ids:
            raise ApiError(400, "Invalid cursor: %s" % before[:64])
        rest = [item for item in ordered[:ids.index(before)] if keep(item)]
        return rest[-limit:] if rest else [], len(rest) > limit
    rest = [item for item in ordered if keep(item)]
    return rest[:limit], len(rest) > limit


def int_arg(call: Call, name: str, default: int, low: int, high: int) -> int:
    raw = call.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "%s: Input should be a valid integer" % name, param=name)
    if value < low:
        raise ApiError(400, "%s: Input should be greater than or equal to %d" % (name, low), param=name)
    if value > high:
        raise ApiError(400, "%s: Input should be less than or equal to %d" % (name, high), param=name)
    return value


class Emulator:
    """All state, behind one lock. HTTP handling lives in ``Handler``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    # -- state ---------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.keys: t.Dict[str, t.List[Key]] = {p: [] for p in PROVIDERS}
            self.by_value: t.Dict[t.Tuple[str, str], Key] = {}
            self.by_id: t.Dict[t.Tuple[str, str], Key] = {}
            self.projects: t.Dict[str, dict] = {}
            self.service_accounts: t.Dict[str, dict] = {}
            self.default_project: t.Optional[str] = None
            self.faults: t.List[Fault] = []
            self.fault_seq = 0
            self.propagation = {p: default_propagation() for p in PROVIDERS}
            self.counts: t.Dict[str, int] = {}
            self.requests: t.List[dict] = []
            self.anthropic_user = "user_01" + rand(BASE58, 22)
            self.anthropic_workspace = "wrkspc_01" + rand(BASE58, 22)
            self.behaviour = {name: values[0] for name, values in BEHAVIOURS.items()}
            self.cf_tokens: t.Dict[str, str] = {}        # API token -> account id
            self.workers: t.Dict[t.Tuple[str, str], Worker] = {}

    def _add_key(self, provider: str, kind: str, name: str, key_id: t.Optional[str] = None) -> Key:
        now = time.time()
        value = mint_value(provider, kind)
        if key_id is None:
            if provider == "anthropic":
                key_id = "apikey_01" + rand(BASE58, 22)
            elif provider == "openai":
                key_id = "key_" + rand(ALNUM, 16)
            else:
                key_id = hashlib.sha256(value.encode("utf-8")).hexdigest()
        key = Key(provider, kind, key_id, value, name, now)
        if kind == "api":
            settings = self.propagation[provider]
            key.valid_from = now + settings["new_key_delay"]
            key.never_valid = bool(settings["never_valid"])
            key.refusals_left = int(settings["new_key_refusals"])
        self.keys[provider].append(key)
        self.by_value[(provider, value)] = key
        self.by_id[(provider, key_id)] = key
        return key

    def _set_status(self, key: Key, status: str) -> None:
        """Move a key to ``status``; leaving ``active`` starts the revoke grace period."""
        now = time.time()
        if status == key.status:
            return
        if status == "active":
            key.grace_until = None
        elif key.status == "active":
            key.grace_until = now + self.propagation[key.provider]["revoke_delay"]
        key.status = status
        key.updated = now

    def authenticate(self, provider: str, value: t.Optional[str]) -> t.Optional[Key]:
        if not value:
            return None
        key = self.by_value.get((provider, value))
        now = time.time()
        if key is None or not key.authenticates(now):
            return None
        if key.refusals_left > 0:
            # not propagated yet: refused, as a key inside its new_key_delay is
            key.refusals_left -= 1
            return None
        key.last_used = now
        return key

    def state(self) -> dict:
        with self.lock:
            now = time.time()
            out: dict = {}
            for provider in PROVIDERS:
                out[provider] = {"keys": [self._key_state(k, now) for k in self.keys[provider]]}
            out["openai"]["service_accounts"] = [self._sa_state(sa) for sa in self.service_accounts.values()]
            out["openai"]["projects"] = [dict(p) for p in self.projects.values()]
            out["cloudflare"] = {"workers": [w.state(now) for w in self.workers.values()]}
            return out

    def _key_state(self, key: Key, now: float) -> dict:
        entry = {"id": key.id, "name": key.name, "kind": key.kind, "status": key.status,
                 "fingerprint": key.fingerprint, "created_at": self._created_at(key),
                 "last_used_at": key.last_used, "authenticates": key.authenticates(now),
                 "redacted_hint": key.hint}
        if key.provider == "anthropic":
            entry.update(workspace_id=key.workspace_id, partial_key_hint=None if key.no_hint else key.hint,
                         scope=key.scope, status=self._anthropic_status(key))
        elif key.provider == "openai":
            entry.update(project_id=key.project_id, service_account_id=key.service_account_id,
                         redacted_value=key.hint, owner_project_access=key.owner_project_access, scopes=key.scopes)
        else:
            entry.update(hash=key.id, label=key.hint, disabled=key.status == "disabled",
                         is_management_key=key.kind == "admin",
                         workspace_id=key.workspace_id or OPENROUTER_DEFAULT_WORKSPACE)
        return entry

    @staticmethod
    def _created_at(key: Key) -> t.Any:
        if key.provider == "anthropic":
            return rfc3339(key.created)
        if key.provider == "openai":
            return int(key.created)
        return iso_seconds(key.created)

    @staticmethod
    def _sa_state(sa: dict) -> dict:
        return {"id": sa["id"], "name": sa["name"], "project_id": sa["project_id"], "status": sa["status"],
                "role": sa["role"], "created_at": sa["created_at"]}

    # -- hits ----------------------------------------------------------------

    def record(self, provider: str, method: str, route: t.Optional[Route], path: str) -> dict:
        path = safe_for_log(path)
        template = route.template if route else path
        entry = {"provider": provider, "method": method, "route": template, "path": path, "status": None}
        with self.lock:
            name = "%s %s %s" % (provider, method, template)
            self.counts[name] = self.counts.get(name, 0) + 1
            self.requests.append(entry)
            if len(self.requests) > MAX_RECORDED_REQUESTS:
                del self.requests[:len(self.requests) - MAX_RECORDED_REQUESTS]
        return entry

    def hits(self) -> dict:
        with self.lock:
            return {"counts": dict(self.counts), "requests": [dict(r) for r in self.requests]}

    def take_fault(self, provider: str, method: str, path: str) -> t.Optional[Fault]:
        with self.lock:
            for fault in self.faults:
                if fault.matches(provider, method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- provider requests ---------------------------------------------------

    def handle(self, call: Call, entry: dict, route: t.Optional[Route]) -> Response:
        """Answer one provider request (faults included). May sleep; never holds the lock while sleeping."""
        provider = call.provider
        rid = request_id(provider)
        fault = self.take_fault(provider, call.method, call.path)
        if fault is not None and fault.hang:
            return Response(0, None, hang=float(fault.hang))
        if fault is not None and fault.latency:
            time.sleep(float(fault.latency))
        if fault is not None and fault.status:
            resp = Response(fault.status, error_body(provider, ApiError(fault.status), rid), fault.headers())
        else:
            try:
                with self.lock:
                    resp = self._dispatch(call, route)
            except ApiError as err:
                resp = Response(err.status, error_body(provider, err, rid))
            except Exception:  # an emulator bug: answer 500 in the provider's shape rather than drop the connection
                log_line(safe_for_log(traceback.format_exc()).rstrip())
                resp = Response(500, error_body(provider, ApiError(500), rid))
        if provider == "anthropic":
            resp.headers.append(("request-id", rid))
        elif provider == "openai":
            resp.headers.append(("x-request-id", rid))
            resp.headers.append(("openai-processing-ms", "1"))
            resp.headers.append(("x-ratelimit-limit-requests", "10000"))
            resp.headers.append(("x-ratelimit-remaining-requests", "9999"))
        else:
            resp.headers.append(("x-request-id", rid))
        with self.lock:
            entry["status"] = resp.status
        return resp

    def _dispatch(self, call: Call, route: t.Optional[Route]) -> Response:
        provider = call.provider
        if route is None:
            if provider == "openai":
                raise ApiError(404, "Invalid URL (%s /v1%s)" % (call.method, call.path))
            if path_methods(provider, call.path):
                raise ApiError(405, "Method Not Allowed")
            raise ApiError(404)
        if provider == "anthropic":
            self._auth_anthropic(call, route)
        elif provider == "openai":
            self._auth_openai(call, route)
        else:
            self._auth_openrouter(call, route)
        self._check_inputs(call, route)
        result = getattr(self, route.handler)(call)
        if isinstance(result, Response):
            return result
        return Response(200, result)

    @staticmethod
    def _check_inputs(call: Call, route: Route) -> None:
        """Refuse query parameters and body fields the endpoint does not take, as the real APIs do."""
        if route.query is not None:
            refuse_unknown(call.provider, set(call.query) - route.query, "Unrecognized query parameter: %s")
        if route.body is not None and call.method in ("POST", "PATCH", "PUT"):
            refuse_unknown(call.provider, set(call.json()) - route.body, "Unrecognized key(s) in object: '%s'")

    @staticmethod
    def _bearer(call: Call) -> t.Optional[str]:
        header = call.headers.get("Authorization") or ""
        parts = header.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1].strip():
            return parts[1].strip()
        return None

    def _auth_anthropic(self, call: Call, route: Route) -> None:
        version = call.headers.get("anthropic-version")
        if not version:
            raise ApiError(400, "anthropic-version: header is required")
        if not ANTHROPIC_VERSION_RE.match(version.strip()):
            raise ApiError(400, "anthropic-version: invalid version %r" % version.strip()[:32])
        value = call.headers.get("x-api-key")
        if not value and ANTHROPIC_ACCEPT_BEARER:
            value = self._bearer(call)
        if not value:
            raise ApiError(401, "x-api-key header is required")
        if not call.headers.get("x-api-key") and call.headers.get("Authorization") and not self._bearer(call):
            raise ApiError(401, "invalid x-api-key")
        key = self.authenticate("anthropic", value.strip())
        if key is None:
            raise ApiError(401, "invalid x-api-key")
        if route.auth == "admin" and key.kind != "admin":
            if ANTHROPIC_API_KEY_ON_ADMIN_STATUS == 401:
                raise ApiError(401, "invalid x-api-key")
            raise ApiError(ANTHROPIC_API_KEY_ON_ADMIN_STATUS,
                           "This endpoint requires an admin API key (sk-ant-admin...).")
        if route.auth == "api" and key.kind == "admin":
            if ANTHROPIC_ADMIN_KEY_ON_API_STATUS == 401:
                raise ApiError(401, "invalid x-api-key")
            raise ApiError(ANTHROPIC_ADMIN_KEY_ON_API_STATUS, "Admin API keys cannot be used for this endpoint.")
        call.key = key

    def _auth_openai(self, call: Call, route: Route) -> None:
        value = self._bearer(call)
        if not value:
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header "
                           "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                           "username) if you're accessing the API from your browser and are prompted for a username and "
                           "password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                           etype="invalid_request_error", code=None)
        key = self.authenticate("openai", value)
        if key is None:
            raise ApiError(401, "Incorrect API key provided: %s. You can find your API key at "
                           "https://platform.openai.com/account/api-keys." % openai_incorrect_key_shown(value),
                           etype="invalid_request_error", code="invalid_api_key")
        if route.auth == "admin" and key.kind != "admin":
            raise ApiError(OPENAI_PROJECT_KEY_ON_ADMIN_STATUS,
                           "You have insufficient permissions for this operation. Missing scopes: api.management.read. "
                           "Check that you have the correct role in your organization (Owner), and if you're using a "
                           "restricted API key, that it has the necessary scopes.",
                           etype="invalid_request_error", code=None)
        if key.refusal_code:
            raise ApiError(401, "This request was refused (%s)." % key.refusal_code, etype="invalid_request_error",
                           code=key.refusal_code)
        needed = "api.model.read" if route.handler in ("openai_models", "openai_model") else "model.request"
        if route.auth == "api" and key.scopes is not None and needed not in key.scopes:
            raise ApiError(self.behaviour["openai_restricted_status"] if needed == "api.model.read" else 401,
                           "You have insufficient permissions for this operation. Missing scopes: %s. Check that you "
                           "have the correct role in your organization (Reader, Writer, Owner) and project (Member, "
                           "Owner), and if you're using a restricted API key, that it has the necessary scopes." % needed,
                           etype="invalid_request_error", code=None)
        if route.auth == "api" and key.kind == "admin":
            raise ApiError(OPENAI_ADMIN_KEY_ON_API_STATUS,
                           "You have insufficient permissions for this operation. Missing scopes: model.request. "
                           "Check that you have the correct role in your organization (Reader, Writer, Owner) and project "
                           "(Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.",
                           etype="invalid_request_error", code=None)
        call.key = key

    def _auth_openrouter(self, call: Call, route: Route) -> None:
        if route.auth == "none":
            return
        value = self._bearer(call)
        if not value:
            raise ApiError(401, "No auth credentials found")
        key = self.authenticate("openrouter", value)
        if key is None:
            raise ApiError(401, "User not found.")
        if route.auth == "admin" and key.kind != "admin":
            raise ApiError(403, "Only management keys can perform this operation")
        if route.auth == "api" and key.kind == "admin":
            raise ApiError(OPENROUTER_MANAGEMENT_ON_COMPLETIONS_STATUS,
                           "Management keys cannot be used for this operation")
        call.key = key

    # -- Anthropic -------------------------------------------------------------

    @staticmethod
    def _anthropic_page(items: list, call: Call, keep: t.Callable[[t.Any], bool], ident: t.Callable[[t.Any], str],
                        render: t.Callable[[t.Any], dict]) -> dict:
        limit = int_arg(call, "limit", 20, 1, 1000)
        after, before = call.arg("after_id"), call.arg("before_id")
        if after and before:
            raise ApiError(400, "Only one of after_id and before_id may be given.")
        page, has_more = cursor_page(items, ident, keep, limit, after or None, before or None)
        data = [render(item) for item in page]
        return {"data": data, "has_more": has_more,
                "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}

    def anthropic_models(self, call: Call) -> dict:
        return self._anthropic_page(ANTHROPIC_MODELS, call, lambda m: True, lambda m: m[0], anthropic_model)

    def anthropic_model(self, call: Call) -> dict:
        for entry in ANTHROPIC_MODELS:
            if entry[0] == call.params["model_id"]:
                return anthropic_model(entry)
        raise ApiError(404, "model: %s" % call.params["model_id"][:100])

    def anthropic_messages(self, call: Call) -> dict:
        body = call.json()
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                raise ApiError(400, "%s: Field required" % field)
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise ApiError(400, "messages: at least one message is required")
        return {"id": "msg_01" + rand(BASE58, 22), "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": "Hello."}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 8, "output_tokens": 3}}

    def anthropic_count_tokens(self, call: Call) -> dict:
        body = call.json()
        for field in ("model", "messages"):
            if field not in body:
                raise ApiError(400, "%s: Field required" % field)
        return {"input_tokens": 8}

    def _anthropic_status(self, key: Key) -> str:
        if key.status == "active" and key.expired(time.time()):
            return "expired"
        return key.status

    def _anthropic_key_object(self, key: Key) -> dict:
        """The key object: Default Workspace keys have ``workspace_id`` null (``scope`` names the workspace);
        organisation-scoped keys have no workspace; ``created_by`` and ``partial_key_hint`` may be null."""
        if key.scope == "organization":
            scope: dict = {"type": "organization"}
        else:
            scope = {"type": "workspace", "workspace_id": key.workspace_id or self.anthropic_workspace}
        return {"id": key.id, "type": "api_key", "name": key.name, "created_at": rfc3339(key.created),
                "created_by": None if key.no_creator else {"id": key.created_by or self.anthropic_user, "type": "user"},
                "partial_key_hint": None if key.no_hint else key.hint, "status": self._anthropic_status(key),
                "workspace_id": key.workspace_id, "expires_at": rfc3339(key.expires) if key.expires else None,
                "scope": scope, "principal": None}

    def _anthropic_key(self, call: Call) -> Key:
        key = self.by_id.get(("anthropic", call.params["id"]))
        if key is None or key.kind != "api":
            raise ApiError(404, "API key not found: %s" % call.params["id"][:64])
        return key

    def anthropic_list_keys(self, call: Call) -> dict:
        status = call.arg("status")
        if status and status not in ("active", "inactive", "archived", "expired"):
            raise ApiError(400, "status: Input should be 'active', 'inactive', 'archived' or 'expired'")
        workspace, creator = call.arg("workspace_id"), call.arg("created_by_user_id")

        def keep(key: Key) -> bool:
            in_default = key.workspace_id is None and key.scope != "organization"
            return (key.kind == "api" and (not status or self._anthropic_status(key) == status)
                    and (not workspace or key.workspace_id == workspace
                         or (workspace == self.anthropic_workspace and in_default))
                    and (not creator or (key.created_by or self.anthropic_user) == creator))

        newest_first = list(reversed(self.keys["anthropic"]))
        return self._anthropic_page(newest_first, call, keep, lambda k: k.id, self._anthropic_key_object)

    def anthropic_get_key(self, call: Call) -> dict:
        return self._anthropic_key_object(self._anthropic_key(call))

    def anthropic_update_key(self, call: Call) -> dict:
        key = self._anthropic_key(call)
        body = call.json()
        unknown = sorted(set(body) - {"name", "status"})
        if unknown:
            raise ApiError(400, "%s: Extra inputs are not permitted" % unknown[0][:64])
        name, status = body.get("name"), body.get("status")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 500):
            raise ApiError(400, "name: String should have between 1 and 500 characters")
        if status is not None and status not in ("active", "inactive", "archived"):
            raise ApiError(400, "status: Input should be 'active', 'inactive' or 'archived'")
        if self._anthropic_status(key) == "expired" and status not in (None, "archived"):
            raise ApiError(400, "Cannot update the status of an expired API key.")
        if key.status == "archived" and ((status is not None and status != "archived")
                                         or (name is not None and name != key.name)):
            raise ApiError(400, "Cannot update an archived API key.")
        if name is not None and name != key.name:
            key.name = name
            key.updated = time.time()
        if status is not None:
            self._set_status(key, status)
        return self._anthropic_key_object(key)

    # -- OpenAI ----------------------------------------------------------------

    def openai_models(self, call: Call) -> dict:
        return {"object": "list", "data": [openai_model(m) for m in OPENAI_MODELS]}

    def openai_model(self, call: Call) -> dict:
        for entry in OPENAI_MODELS:
            if entry[0] == call.params["model"]:
                return openai_model(entry)
        raise ApiError(404, "The model '%s' does not exist or you do not have access to it." % call.params["model"][:100],
                       code="model_not_found")

    def openai_billing(self, call: Call) -> dict:
        body = call.json()
        if not body.get("model"):
            raise ApiError(400, "you must provide a model parameter", param="model")
        now = int(time.time())
        usage = {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}
        if call.path == "/embeddings":
            return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.0, 0.1, 0.2]}],
                    "model": body["model"], "usage": {"prompt_tokens": 8, "total_tokens": 8}}
        if call.path == "/responses":
            return {"id": "resp_" + secrets.token_hex(24), "object": "response", "created_at": now, "status": "completed",
                    "model": body["model"], "output": [{"type": "message", "id": "msg_" + secrets.token_hex(24),
                                                        "status": "completed", "role": "assistant",
                                                        "content": [{"type": "output_text", "text": "Hello.", "annotations": []}]}],
                    "usage": {"input_tokens": 8, "output_tokens": 3, "total_tokens": 11}}
        if call.path == "/completions":
            return {"id": "cmpl-" + rand(ALNUM, 29), "object": "text_completion", "created": now, "model": body["model"],
                    "choices": [{"text": "Hello.", "index": 0, "logprobs": None, "finish_reason": "stop"}], "usage": usage}
        return {"id": "chatcmpl-" + rand(ALNUM, 29), "object": "chat.completion", "created": now, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello.", "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}], "usage": usage}

    def _project(self, call: Call) -> dict:
        project = self.projects.get(call.params["project_id"])
        if project is None:
            raise ApiError(404, "No such project: '%s'" % call.params["project_id"][:64], code="not_found")
        return project

    def _new_project(self, name: str, project_id: t.Optional[str] = None) -> dict:
        project = {"object": "organization.project", "id": project_id or "proj_" + rand(ALNUM, 24), "name": name,
                   "created_at": int(time.time()), "archived_at": None, "status": "active"}
        self.projects[project["id"]] = project
        return project

    def _new_sa(self, project_id: str, name: str, sa_id: t.Optional[str] = None) -> dict:
        sa = {"object": "organization.project.service_account", "id": sa_id or "svc_acct_" + rand(LOWER_ALNUM, 24),
              "name": name, "role": "member", "created_at": int(time.time()), "project_id": project_id, "status": "active"}
        self.service_accounts[sa["id"]] = sa
        return sa

    @staticmethod
    def _sa_object(sa: dict) -> dict:
        return {"object": sa["object"], "id": sa["id"], "name": sa["name"], "role": sa["role"], "created_at": sa["created_at"]}

    def _new_sa_key(self, sa: dict, name: str) -> Key:
        key = self._add_key("openai", "api", name)
        key.project_id = sa["project_id"]
        key.service_account_id = sa["id"]
        return key

    @staticmethod
    def _created_key_object(key: Key) -> dict:
        return {"object": "organization.project.service_account.api_key", "value": key.value, "name": key.name,
                "created_at": int(key.created), "id": key.id}

    def _openai_key_object(self, key: Key) -> dict:
        sa = self.service_accounts.get(key.service_account_id or "")
        owner: dict = {"type": "service_account"}
        if sa is not None:
            owner["service_account"] = self._sa_object(sa)
        return {"object": "organization.project.api_key", "redacted_value": key.hint, "name": key.name, "id": key.id,
                "created_at": int(key.created), "last_used_at": int(key.last_used) if key.last_used else None,
                "owner": owner, "owner_project_access": key.owner_project_access}

    @staticmethod
    def _openai_list(items: list, call: Call, keep: t.Callable[[t.Any], bool], ident: t.Callable[[t.Any], str],
                     render: t.Callable[[t.Any], dict]) -> dict:
        limit = int_arg(call, "limit", 20, 1, 100)
        page, has_more = cursor_page(items, ident, keep, limit, call.arg("after") or None, None)
        data = [render(item) for item in page]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    def openai_list_projects(self, call: Call) -> dict:
        return self._openai_list(list(self.projects.values()), call, lambda p: True, lambda p: p["id"], dict)

    def openai_create_project(self, call: Call) -> dict:
        name = call.json().get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "Missing required parameter: 'name'.", param="name", code="missing_required_parameter")
        return self._new_project(name)

    def openai_get_project(self, call: Call) -> dict:
        return self._project(call)

    def _sa(self, call: Call) -> dict:
        project = self._project(call)
        sa = self.service_accounts.get(call.params["service_account_id"])
        if sa is None or sa["project_id"] != project["id"] or sa["status"] != "active":
            raise ApiError(404, "No such service account: '%s'" % call.params["service_account_id"][:64], code="not_found")
        return sa

    def openai_list_sas(self, call: Call) -> dict:
        project = self._project(call)
        return self._openai_list(list(self.service_accounts.values()), call,
                                 lambda sa: sa["project_id"] == project["id"] and sa["status"] == "active",
                                 lambda sa: sa["id"], self._sa_object)

    def openai_create_sa(self, call: Call) -> Response:
        project = self._project(call)
        name = call.json().get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "Missing required parameter: 'name'.", param="name", code="missing_required_parameter")
        body_in = call.json()
        sa = self._new_sa(project["id"], name)
        body = self._sa_object(sa)
        if body_in.get("create_service_account_only"):
            sa["role"] = "none"
            body.update(role="none", api_key=None)
            return Response(200, body)
        # The published example names the first key "Secret Key", not after the account.
        key = self._new_sa_key(sa, "Secret Key")
        self._apply_new_key_scopes(key)
        body["api_key"] = self._created_key_object(key)
        return Response(200, body)

    def openai_get_sa(self, call: Call) -> dict:
        return self._sa_object(self._sa(call))

    def openai_delete_sa(self, call: Call) -> dict:
        sa = self._sa(call)
        sa["status"] = "deleted"
        for key in self.keys["openai"]:
            if key.service_account_id == sa["id"]:
                self._set_status(key, "deleted")
        return {"object": "organization.project.service_account.deleted", "id": sa["id"], "deleted": True}

    def openai_create_sa_key(self, call: Call) -> dict:
        sa = self._sa(call)
        body = call.json()
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, "Invalid type for 'name': expected a string.", param="name", code="invalid_type")
        scopes = body.get("scopes")
        if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes)):
            raise ApiError(400, "Invalid type for 'scopes': expected an array of strings.", param="scopes",
                           code="invalid_type")
        key = self._new_sa_key(sa, name or "Secret Key")
        key.scopes = scopes
        self._apply_new_key_scopes(key)
        return self._created_key_object(key)

    def _apply_new_key_scopes(self, key: Key) -> None:
        if self.behaviour["openai_new_key_scopes"] == "no-model-list" and key.scopes is None:
            key.scopes = ["model.request"]

    def _openai_key(self, call: Call) -> Key:
        project = self._project(call)
        key = self.by_id.get(("openai", call.params["key_id"]))
        if key is None or key.kind != "api" or key.project_id != project["id"] or key.status == "deleted":
            raise ApiError(404, "No such API key: '%s'" % call.params["key_id"][:64], code="not_found")
        return key

    def openai_list_keys(self, call: Call) -> dict:
        project = self._project(call)
        access = call.arg("owner_project_access")
        if access is not None and access not in ("active", "inactive", "any"):
            raise ApiError(400, "Invalid value for 'owner_project_access': expected one of active, inactive, any.",
                           param="owner_project_access", code="invalid_value")

        def visible(key: Key) -> bool:
            # Omitted: membership-based visibility, which leaves out keys whose owner lost project access.
            return access == "any" or key.owner_project_access == (access or "active")

        return self._openai_list(self.keys["openai"], call,
                                 lambda k: (k.kind == "api" and k.project_id == project["id"] and k.status == "active"
                                            and visible(k)),
                                 lambda k: k.id, self._openai_key_object)

    def openai_get_key(self, call: Call) -> dict:
        return self._openai_key_object(self._openai_key(call))

    def openai_delete_key(self, call: Call) -> dict:
        key = self._openai_key(call)
        if key.service_account_id and self.behaviour["openai_service_account_key_delete"] == "refuse":
            raise ApiError(400, OPENAI_SA_KEY_DELETE_MESSAGE, etype="invalid_request_error", code=None)
        self._set_status(key, "deleted")
        return {"object": "organization.project.api_key.deleted", "id": key.id, "deleted": True}

    # -- OpenRouter ------------------------------------------------------------

    def openrouter_models(self, call: Call) -> dict:
        return {"data": [openrouter_model(m) for m in OPENROUTER_MODELS]}

    def openrouter_key(self, call: Call) -> dict:
        key = call.key
        remaining = None if key.limit is None else max(key.limit - key.usage, 0.0)
        return {"data": {"label": key.hint, "limit": key.limit, "usage": key.usage, "is_free_tier": False,
                         "creator_user_id": OPENROUTER_USER,
                         "is_management_key": key.kind == "admin", "is_provisioning_key": key.kind == "admin",
                         "limit_remaining": remaining, "limit_reset": key.limit_reset,
                         "include_byok_in_limit": key.include_byok_in_limit, "expires_at": key.expires_at,
                         "usage_daily": key.usage, "usage_weekly": key.usage, "usage_monthly": key.usage,
                         "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
                         "rate_limit": {"requests": -1, "interval": "10s", "note": "deprecated"}}}

    def openrouter_billing(self, call: Call) -> dict:
        body = call.json()
        if call.path == "/chat/completions" and not isinstance(body.get("messages"), list):
            raise ApiError(400, "Input required: specify \"prompt\" or \"messages\"")
        if call.path == "/completions" and "prompt" not in body:
            raise ApiError(400, "Input required: specify \"prompt\" or \"messages\"")
        call.key.usage += 0.0001
        now = int(time.time())
        model = body.get("model") or "openai/gpt-4o-mini"
        usage = {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}
        if call.path == "/completions":
            return {"id": "gen-" + rand(ALNUM, 24), "object": "text_completion", "created": now, "model": model,
                    "choices": [{"text": "Hello.", "index": 0, "finish_reason": "stop"}], "usage": usage}
        return {"id": "gen-" + rand(ALNUM, 24), "object": "chat.completion", "created": now, "model": model,
                "provider": "OpenAI", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."},
                                                   "finish_reason": "stop"}], "usage": usage}

    @staticmethod
    def _openrouter_key_object(key: Key) -> dict:
        remaining = None if key.limit is None else max(key.limit - key.usage, 0.0)
        return {"hash": key.id, "name": key.name, "label": key.hint, "disabled": key.status == "disabled",
                "limit": key.limit, "limit_remaining": remaining, "limit_reset": key.limit_reset,
                "include_byok_in_limit": key.include_byok_in_limit, "usage": key.usage, "usage_daily": key.usage,
                "usage_weekly": key.usage, "usage_monthly": key.usage, "byok_usage": 0, "byok_usage_daily": 0,
                "byok_usage_weekly": 0, "byok_usage_monthly": 0, "created_at": iso_seconds(key.created),
                "updated_at": iso_seconds(key.updated) if key.updated else None, "expires_at": key.expires_at,
                "creator_user_id": OPENROUTER_USER, "workspace_id": key.workspace_id or OPENROUTER_DEFAULT_WORKSPACE}

    def _openrouter_key(self, call: Call) -> Key:
        key = self.by_id.get(("openrouter", call.params["hash"]))
        if key is None or key.kind != "api" or key.status == "deleted":
            raise ApiError(404, "Key not found")
        return key

    @staticmethod
    def _openrouter_settings(key: Key, body: dict) -> None:
        if "limit" in body:
            limit = body["limit"]
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0):
                raise ApiError(400, "limit must be a non-negative number or null")
            key.limit = None if limit is None else float(limit)
        if "limit_reset" in body:
            if body["limit_reset"] not in (None, "daily", "weekly", "monthly"):
                raise ApiError(400, "limit_reset must be one of daily, weekly, monthly or null")
            key.limit_reset = body["limit_reset"]
        if "include_byok_in_limit" in body:
            if not isinstance(body["include_byok_in_limit"], bool):
                raise ApiError(400, "include_byok_in_limit must be a boolean")
            key.include_byok_in_limit = body["include_byok_in_limit"]

    def openrouter_list_keys(self, call: Call) -> dict:
        raw = (call.arg("include_disabled") or "false").lower()
        if raw not in ("true", "false"):
            raise ApiError(400, "include_disabled must be true or false")
        include_disabled = raw == "true"
        offset = int_arg(call, "offset", 0, 0, 10 ** 9)
        # By default, keys in the default workspace only.
        workspace = call.arg("workspace_id") or OPENROUTER_DEFAULT_WORKSPACE
        listed = [k for k in self.keys["openrouter"]
                  if k.kind == "api" and (k.workspace_id or OPENROUTER_DEFAULT_WORKSPACE) == workspace
                  and (k.status == "active" or (include_disabled and k.status == "disabled"))]
        return {"data": [self._openrouter_key_object(k) for k in listed[offset:offset + 100]]}

    def openrouter_create_key(self, call: Call) -> Response:
        body = call.json()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        expires_at = body.get("expires_at")
        if expires_at is not None and (not isinstance(expires_at, str) or parse_iso(expires_at) is None):
            raise ApiError(400, "expires_at must be an ISO 8601 date-time or null")
        workspace = body.get("workspace_id")
        if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
            raise ApiError(400, "workspace_id must be a non-empty string")
        key = self._add_key("openrouter", "api", name)
        key.workspace_id = workspace
        try:
            self._openrouter_settings(key, body)
        except ApiError:
            self._forget(key)
            raise
        key.expires_at = expires_at
        return Response(201, {"data": self._openrouter_key_object(key), "key": key.value})

    def _forget(self, key: Key) -> None:
        self.keys[key.provider].remove(key)
        del self.by_value[(key.provider, key.value)]
        del self.by_id[(key.provider, key.id)]

    def openrouter_get_key(self, call: Call) -> dict:
        return {"data": self._openrouter_key_object(self._openrouter_key(call))}

    def openrouter_update_key(self, call: Call) -> dict:
        key = self._openrouter_key(call)
        body = call.json()
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            raise ApiError(400, "name must be a non-empty string")
        if "disabled" in body and not isinstance(body["disabled"], bool):
            raise ApiError(400, "disabled must be a boolean")
        self._openrouter_settings(key, body)
        if "name" in body:
            key.name = body["name"]
        if "disabled" in body:
            self._set_status(key, "disabled" if body["disabled"] else "active")
        key.updated = time.time()
        return {"data": self._openrouter_key_object(key)}

    def openrouter_delete_key(self, call: Call) -> dict:
        key = self._openrouter_key(call)
        self._set_status(key, "deleted")
        return {"deleted": True}

    # -- Cloudflare Workers secrets and the simulated Workers -----------------

    def handle_cloudflare(self, call: Call, entry: dict) -> Response:
        """The Cloudflare API (``{"success", "errors", "messages", "result"}`` envelopes) and the Workers."""
        fault = self.take_fault(call.provider, call.method, call.path)
        if fault is not None and fault.hang:
            return Response(0, None, hang=float(fault.hang))
        if fault is not None and fault.latency:
            time.sleep(float(fault.latency))
        if fault is not None and fault.status:
            resp = Response(fault.status, cloudflare_error(fault.status, 10013, "service unavailable")
                            if call.provider == "cloudflare" else {"error": "fault"}, fault.headers())
        elif call.provider == "cloudflare":
            with self.lock:
                resp = self._cloudflare(call)
            resp.headers.append(("cf-ray", rand(HEX, 16) + "-LHR"))
        else:
            resp = self._worker(call)
        with self.lock:
            entry["status"] = resp.status
            if call.provider == "worker" and call.path.endswith("/healthz/key") and isinstance(resp.body, dict):
                # what the Worker said it serves, so that a test can order it against the revoke
                entry["reported"] = resp.body.get("fingerprint") if resp.body.get("live") else None
        return resp

    def _cloudflare(self, call: Call) -> Response:
        match = CLOUDFLARE_SECRETS_RE.match(call.path)
        if match is None:
            message = "Could not route to %s, perhaps your object identifier is invalid?" % safe_for_log(call.path)[:200]
            return Response(404, cloudflare_error(404, 7003, message))
        account_id, script, name = match.group("account"), match.group("script"), match.group("name")
        allowed = ("GET", "DELETE") if name else ("GET", "PUT")
        if call.method not in allowed:
            return Response(405, cloudflare_error(405, 10000, "Method not allowed"))
        auth = call.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return Response(400, cloudflare_error(400, 6003, "Invalid request headers",
                                                  chain=(6111, "Invalid format for Authorization header")))
        if self.cf_tokens.get(auth[7:].strip()) != account_id:
            return Response(403, cloudflare_error(403, 10000, "Authentication error"))
        worker = self.workers.get((account_id, script))
        if worker is None:
            return Response(404, cloudflare_error(404, 10007, "This Worker does not exist on your account."))
        if call.query:
            return Response(400, cloudflare_error(400, 10001, "unknown query parameter(s): %s"
                                                  % ", ".join(sorted(call.query))[:200]))
        if call.method == "PUT":
            return self._cloudflare_put_secret(call, worker)
        if name is None:
            return Response(200, cloudflare_ok([{"name": n, "type": "secret_text"} for n in sorted(worker.secrets)]))
        if name not in worker.secrets:
            return Response(404, cloudflare_error(404, 10056, "Binding name '%s' not found." % name[:64]))
        if call.method == "DELETE":
            del worker.secrets[name]
            worker.deployments += 1
            return Response(200, cloudflare_ok(None))
        return Response(200, cloudflare_ok({"name": name, "type": "secret_text"}))

    def _cloudflare_put_secret(self, call: Call, worker: Worker) -> Response:
        try:
            body = call.json()
        except ApiError:
            return Response(400, cloudflare_error(400, 10001, "Invalid request body: not a JSON object"))
        unknown = sorted(set(body) - {"name", "text", "type"})
        if unknown:
            return Response(400, cloudflare_error(400, 10001, "Invalid request body: unknown field(s) %s"
                                                  % ", ".join(unknown)[:200]))
        name, text, kind = body.get("name"), body.get("text"), body.get("type")
        if not isinstance(name, str) or not CLOUDFLARE_NAME_RE.match(name):
            return Response(400, cloudflare_error(400, 10001, "Invalid request body: name must be a binding name"))
        if kind != "secret_text":
            return Response(400, cloudflare_error(400, 10001, "Invalid request body: type must be secret_text"))
        if not isinstance(text, str) or not text:
            return Response(400, cloudflare_error(400, 10001, "Invalid request body: text must be a non-empty string"))
        if len(text.encode("utf-8")) > CLOUDFLARE_SECRET_MAX:
            return Response(400, cloudflare_error(400, 10054, "Secret too large: it must be 5kB or less"))
        worker.put_secret(name, text, time.time())
        return Response(200, cloudflare_ok({"name": name, "type": "secret_text"}))

    def _worker(self, call: Call) -> Response:
        """The simulated Worker's own code: its key health endpoint and its traffic."""
        script, _sep, rest = call.path.lstrip("/").partition("/")
        with self.lock:
            worker = next((w for w in self.workers.values() if w.script == script), None)
            if worker is None:
                return Response(404, {"error": "no such Worker"})
            key = self.authenticate(worker.provider, worker.key_in_use(time.time()) or "")
            held = worker.serving
            if rest == "healthz/key":
                return Response(200, {"live": key is not None, "fingerprint": fingerprint(held) if held else None})
            if key is None:
                worker.failed += 1
                return Response(502, {"error": "the provider refused the Worker's key"})
            worker.served += 1
            return Response(200, {"ok": True})

    # -- control API -------------------------------------------------------------

    def control(self, method: str, path: str, body: t.Any) -> t.Tuple[int, t.Any]:
        routes = {
            ("GET", "/health"): lambda b: {"ok": True},
            ("POST", "/reset"): self._control_reset,
            ("POST", "/keys"): self._control_create_key,
            ("POST", "/openai/projects"): self._control_create_project,
            ("GET", "/state"): lambda b: self.state(),
            ("GET", "/faults"): self._control_list_faults,
            ("POST", "/faults"): self._control_add_fault,
            ("DELETE", "/faults"): self._control_clear_faults,
            ("GET", "/propagation"): lambda b: self._control_propagation(None),
            ("POST", "/propagation"): self._control_propagation,
            ("GET", "/hits"): lambda b: self.hits(),
            ("GET", "/behaviour"): lambda b: dict(self.behaviour),
            ("POST", "/behaviour"): self._control_behaviour,
            ("DELETE", "/hits"): self._control_clear_hits,
            ("POST", "/cloudflare/workers"): self._control_create_worker,
            ("POST", "/cloudflare/worker"): self._control_worker_behaviour,
        }
        handler = routes.get((method, path.rstrip("/") or "/"))
        if handler is None:
            raise ControlError(404, "unknown control endpoint: %s %s" % (method, path[:100]))
        if body is not None and not isinstance(body, dict):
            raise ControlError(400, "the body must be a JSON object")
        with self.lock:
            return 200, handler(body or {})

    def _control_behaviour(self, body: dict) -> dict:
        for name, value in body.items():
            if name not in BEHAVIOURS:
                raise ControlError(400, "unknown behaviour %r: one of %s" % (name, ", ".join(sorted(BEHAVIOURS))))
            if value not in BEHAVIOURS[name]:
                raise ControlError(400, "%s must be one of %s" % (name, ", ".join(str(v) for v in BEHAVIOURS[name])))
        self.behaviour.update(body)
        return dict(self.behaviour)

    def _control_create_worker(self, body: t.Optional[dict]) -> dict:
        """A Worker script on an account, with an API token for it and (optionally) the key it serves."""
        body = body or {}
        unknown = sorted(set(body) - {"script", "provider", "account_id", "secret_name", "api_key", "pickup",
                                      "pickup_delay"})
        if unknown:
            raise ControlError(400, "unknown field(s): %s" % ", ".join(unknown))
        script = body.get("script")
        if not isinstance(script, str) or not CLOUDFLARE_SCRIPT_RE.match(script):
            raise ControlError(400, "script must be a Worker name (lowercase letters, digits, - and _)")
        provider = body.get("provider")
        if provider not in PROVIDERS:
            raise ControlError(400, "provider must be one of %s" % ", ".join(PROVIDERS))
        account_id = body.get("account_id") or rand(HEX, 32)
        if not isinstance(account_id, str) or not CLOUDFLARE_ID_RE.match(account_id):
            raise ControlError(400, "account_id must be 32 lowercase hex digits")
        secret_name = body.get("secret_name", "%s_API_KEY" % provider.upper())
        if not isinstance(secret_name, str) or not CLOUDFLARE_NAME_RE.match(secret_name):
            raise ControlError(400, "secret_name must be a binding name")
        if any(w.script == script for w in self.workers.values()):
            raise ControlError(409, "a Worker named %s exists already" % script)
        worker = Worker(account_id, script, provider, secret_name)
        self._worker_behaviour(worker, body)
        api_key = body.get("api_key")
        if api_key is not None:
            if not isinstance(api_key, str) or not api_key:
                raise ControlError(400, "api_key must be a non-empty string")
            worker.put_secret(secret_name, api_key, time.time() - worker.pickup_delay)
            worker.serving = api_key  # the key the Worker runs with from the start
        token = rand(ALNUM, 40)
        self.cf_tokens[token] = account_id
        self.workers[(account_id, script)] = worker
        return {"account_id": account_id, "script": script, "secret_name": secret_name, "api_token": token,
                "health_path": "/worker/%s/healthz/key" % script, "traffic_path": "/worker/%s/work" % script}

    @staticmethod
    def _worker_behaviour(worker: Worker, body: dict) -> None:
        pickup = body.get("pickup", worker.pickup)
        if pickup not in ("deploy", "never"):
            raise ControlError(400, "pickup must be deploy or never")
        delay = body.get("pickup_delay", worker.pickup_delay)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_SLEEP:
            raise ControlError(400, "pickup_delay must be a number of seconds from 0 to %d" % MAX_SLEEP)
        worker.pickup, worker.pickup_delay = pickup, float(delay)

    def _control_worker_behaviour(self, body: t.Optional[dict]) -> dict:
        """Change when a Worker picks up a new secret: ``{"script", "pickup"?, "pickup_delay"?}``."""
        body = body or {}
        unknown = sorted(set(body) - {"script", "pickup", "pickup_delay"})
        if unknown:
            raise ControlError(400, "unknown field(s): %s" % ", ".join(unknown))
        worker = next((w for w in self.workers.values() if w.script == body.get("script")), None)
        if worker is None:
            raise ControlError(404, "no Worker named %r" % body.get("script"))
        self._worker_behaviour(worker, body)
        return worker.state(time.time())

    def _control_reset(self, body: dict) -> dict:
        self.reset()
        return {"ok": True}

    def _control_clear_hits(self, body: dict) -> dict:
        self.counts = {}
        self.requests = []
        return {"ok": True}

    def _control_list_faults(self, body: dict) -> dict:
        return {"faults": [f.describe() for f in self.faults]}

    def _control_clear_faults(self, body: dict) -> dict:
        self.faults = []
        return {"ok": True}

    def _control_create_project(self, body: dict) -> dict:
        name = body.get("name", "Default project")
        if not isinstance(name, str) or not name:
            raise ControlError(400, "name must be a non-empty string")
        project_id = body.get("id")
        if project_id is not None and (not isinstance(project_id, str) or not project_id.startswith("proj_")):
            raise ControlError(400, "id must be a string starting with proj_")
        if project_id in self.projects:
            raise ControlError(400, "project %s exists" % project_id)
        project = self._new_project(name, project_id)
        return {"id": project["id"], "name": project["name"], "created_at": project["created_at"]}

    def _control_create_key(self, body: dict) -> dict:
        allowed = {"provider", "kind", "name", "status", "workspace_id", "project_id", "service_account_id",
                   "created_by_user_id", "limit", "scope", "expires_in", "no_hint", "no_creator", "scopes",
                   "refusal_code", "owner_project_access"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ControlError(400, "unknown field(s): %s" % ", ".join(unknown))
        provider, kind = body.get("provider"), body.get("kind", "api")
        if provider not in PROVIDERS:
            raise ControlError(400, "provider must be one of %s" % ", ".join(PROVIDERS))
        if kind not in ("api", "admin"):
            raise ControlError(400, "kind must be api or admin")
        for field in ("name", "workspace_id", "project_id", "service_account_id", "created_by_user_id"):
            if body.get(field) is not None and (not isinstance(body[field], str) or not body[field]):
                raise ControlError(400, "%s must be a non-empty string" % field)
        statuses = {"anthropic": ("active", "inactive", "archived"), "openai": ("active",),
                    "openrouter": ("active", "disabled")}[provider]
        status = body.get("status", "active")
        if status not in statuses:
            raise ControlError(400, "status for %s must be one of %s" % (provider, ", ".join(statuses)))
        owners = (("workspace_id", ("anthropic", "openrouter")), ("created_by_user_id", ("anthropic",)),
                  ("scope", ("anthropic",)), ("expires_in", ("anthropic",)), ("no_hint", ("anthropic",)),
                  ("no_creator", ("anthropic",)), ("project_id", ("openai",)), ("service_account_id", ("openai",)),
                  ("scopes", ("openai",)), ("refusal_code", ("openai",)), ("owner_project_access", ("openai",)),
                  ("limit", ("openrouter",)))
        misplaced = [f for f, owner in owners if body.get(f) is not None and provider not in owner]
        if misplaced:
            raise ControlError(400, "%s does not apply to %s" % (", ".join(misplaced), provider))
        default_names = {"anthropic": "Console key", "openai": "Service account key", "openrouter": "key"}
        name = body.get("name") or (default_names[provider] if kind == "api" else "admin key")
        extra: dict = {}
        if provider == "openai" and kind == "api":
            sa = self._control_openai_sa(body, name)
            key = self._new_sa_key(sa, name)
            extra.update(project_id=key.project_id, service_account_id=key.service_account_id,
                         redacted_value=key.hint)
        else:
            key = self._add_key(provider, kind, name)
        if provider == "anthropic":
            if body.get("scope") not in (None, "workspace", "organization"):
                self._forget(key)
                raise ControlError(400, "scope must be workspace or organization")
            if body.get("scope") == "organization" and body.get("workspace_id"):
                self._forget(key)
                raise ControlError(400, "an organization-scoped key has no workspace_id")
            expires_in = body.get("expires_in")
            if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, (int, float))):
                self._forget(key)
                raise ControlError(400, "expires_in must be a number of seconds (negative: already expired)")
            key.workspace_id = body.get("workspace_id")
            key.created_by = body.get("created_by_user_id")
            key.scope = body.get("scope") or "workspace"
            key.expires = None if expires_in is None else key.created + float(expires_in)
            key.no_hint = bool(body.get("no_hint"))
            key.no_creator = bool(body.get("no_creator"))
            extra.update(workspace_id=key.workspace_id, partial_key_hint=None if key.no_hint else key.hint)
        elif provider == "openai" and kind == "api":
            if body.get("owner_project_access") not in (None, "active", "inactive"):
                self._forget(key)
                raise ControlError(400, "owner_project_access must be active or inactive")
            key.scopes = body.get("scopes")
            key.refusal_code = body.get("refusal_code")
            key.owner_project_access = body.get("owner_project_access") or "active"
        elif provider == "openrouter":
            if body.get("limit") is not None:
                limit = body["limit"]
                if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
                    self._forget(key)
                    raise ControlError(400, "limit must be a non-negative number")
                key.limit = float(limit)
            key.workspace_id = body.get("workspace_id")
            extra.update(hash=key.id, label=key.hint, is_management_key=kind == "admin",
                         workspace_id=key.workspace_id or OPENROUTER_DEFAULT_WORKSPACE)
        if status != "active":
            key.status = status
            key.updated = key.created
        if provider == "openrouter":
            extra["disabled"] = key.status == "disabled"
        result = {"provider": provider, "kind": kind, "id": key.id, "value": key.value, "name": key.name,
                  "status": key.status, "fingerprint": key.fingerprint, "created_at": self._created_at(key),
                  "redacted_hint": key.hint}
        result.update(extra)
        return result

    def _control_openai_sa(self, body: dict, name: str) -> dict:
        project_id = body.get("project_id")
        if project_id is None:
            if self.default_project is None or self.default_project not in self.projects:
                self.default_project = self._new_project("Default project")["id"]
            project_id = self.default_project
        elif project_id not in self.projects:
            if not project_id.startswith("proj_"):
                raise ControlError(400, "project_id must start with proj_")
            self._new_project(project_id, project_id)
        sa_id = body.get("service_account_id")
        if sa_id is None:
            return self._new_sa(project_id, name)
        sa = self.service_accounts.get(sa_id)
        if sa is None:
            if not sa_id.startswith("svc_acct_"):
                raise ControlError(400, "service_account_id must start with svc_acct_")
            return self._new_sa(project_id, name, sa_id)
        if sa["project_id"] != project_id or sa["status"] != "active":
            raise ControlError(400, "service account %s is not an active account of project %s" % (sa_id, project_id))
        return sa

    def _control_add_fault(self, body: dict) -> dict:
        allowed = {"provider", "method", "path", "status", "count", "retry_after", "retry_after_ms", "latency", "hang"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ControlError(400, "unknown field(s): %s" % ", ".join(unknown))
        spec = dict(body)
        if spec.get("provider") is not None and spec["provider"] not in SERVICES:
            raise ControlError(400, "provider must be null or one of %s" % ", ".join(SERVICES))
        if spec.get("method") is not None:
            if not isinstance(spec["method"], str) or not spec["method"].isalpha():
                raise ControlError(400, "method must be an HTTP method name")
            spec["method"] = spec["method"].upper()
        if spec.get("path") is not None:
            if not isinstance(spec["path"], str):
                raise ControlError(400, "path must be a regular expression string")
            try:
                re.compile(spec["path"])
            except re.error as exc:
                raise ControlError(400, "path is not a valid regular expression: %s" % exc)
        for field, low, high in (("status", 100, 599), ("count", 1, 10 ** 6), ("retry_after_ms", 0, 10 ** 8)):
            value = spec.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
                raise ControlError(400, "%s must be an integer between %d and %d" % (field, low, high))
        for field in ("retry_after", "latency", "hang"):
            value = spec.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value <= MAX_SLEEP):
                raise ControlError(400, "%s must be a number of seconds between 0 and %d" % (field, MAX_SLEEP))
        if spec.get("status") is None and (spec.get("retry_after") is not None or spec.get("retry_after_ms") is not None):
            spec["status"] = 429
        if not (spec.get("status") or spec.get("latency") or spec.get("hang")):
            raise ControlError(400, "a fault needs status, latency or hang")
        spec["count"] = spec.get("count") or 1
        self.fault_seq += 1
        fault = Fault("fault_%d" % self.fault_seq, spec)
        self.faults.append(fault)
        return {"id": fault.id}

    def _control_propagation(self, body: t.Optional[dict]) -> dict:
        if body is not None:
            unknown = sorted(set(body) - {"provider", "new_key_delay", "new_key_refusals", "revoke_delay", "never_valid"})
            if unknown:
                raise ControlError(400, "unknown field(s): %s" % ", ".join(unknown))
            provider = body.get("provider")
            if provider is not None and provider not in PROVIDERS:
                raise ControlError(400, "provider must be null or one of %s" % ", ".join(PROVIDERS))
            for field in ("new_key_delay", "revoke_delay"):
                value = body.get(field)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                    raise ControlError(400, "%s must be a non-negative number of seconds" % field)
            refusals = body.get("new_key_refusals")
            if refusals is not None and (isinstance(refusals, bool) or not isinstance(refusals, int) or refusals < 0):
                raise ControlError(400, "new_key_refusals must be a non-negative whole number of authentications")
            if body.get("never_valid") is not None and not isinstance(body["never_valid"], bool):
                raise ControlError(400, "never_valid must be a boolean")
            for name in ([provider] if provider else PROVIDERS):
                for field in ("new_key_delay", "revoke_delay"):
                    if body.get(field) is not None:
                        self.propagation[name][field] = float(body[field])
                if refusals is not None:
                    self.propagation[name]["new_key_refusals"] = refusals
                if body.get("never_valid") is not None:
                    self.propagation[name]["never_valid"] = body["never_valid"]
        return {p: dict(self.propagation[p]) for p in PROVIDERS}


# ---------------------------------------------------------------------------
# HTTP

def split_provider(path: str) -> t.Tuple[t.Optional[str], str]:
    for base, provider in PROVIDER_BASES:
        if path == base or path.startswith(base + "/"):
            sub = path[len(base):] or "/"
            if provider == "openrouter" and len(sub) > 1:
                sub = sub.rstrip("/")
            return provider, sub
    return None, path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provider-emulator/1.0"
    # Headers and body go out in separate writes: without this, keep-alive
    # clients wait for a delayed ACK (about 40 ms) on every request.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_request(self, code: t.Any = "-", size: t.Any = "-") -> None:
        """Replaced by one line per request in ``_log``."""

    def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
        log_line("emulator " + safe_for_log(format % args))

    def _log(self, provider: str, path: str, status: t.Any, started: float) -> None:
        log_line("%s %s %s %s %dms" % (provider, self.command, safe_for_log(path), status,
                                       (time.monotonic() - started) * 1000))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: t.Any, headers: t.Sequence[t.Tuple[str, str]] = ()) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status, "Overloaded" if status == 529 else None)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _serve(self) -> None:
        started = time.monotonic()
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._log("-", path, 413, started)
            self._send(413, {"error": "request body too large or malformed"})
            return
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._serve_control(emulator, path[len(CONTROL_PREFIX):] or "/", body, started)
            return
        provider, sub = split_provider(path)
        if provider is None:
            self._log("-", path, 404, started)
            self._send(404, {"error": "unknown path; providers live under /anthropic, /openai/v1, /openrouter/api/v1"})
            return
        call = Call(provider, self.command, sub, query, self.headers, body)
        if provider in PROVIDERS:
            route, call.params = find_route(provider, self.command, sub)
            resp = emulator.handle(call, emulator.record(provider, self.command, route, sub), route)
        else:
            resp = emulator.handle_cloudflare(call, emulator.record(provider, self.command, None, sub))
        if resp.hang is not None:
            time.sleep(resp.hang)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._log(provider, path, "no-answer", started)
            return
        self._log(provider, path, resp.status, started)
        self._send(resp.status, resp.body, resp.headers)

    def _serve_control(self, emulator: Emulator, path: str, raw: bytes, started: float) -> None:
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            status, result = 400, {"error": "the body is not valid JSON"}
        else:
            try:
                status, result = emulator.control(self.command, path, body)
            except ControlError as err:
                status, result = err.status, {"error": err.message}
            except Exception as exc:  # an emulator bug: say so instead of dropping the connection
                log_line(safe_for_log(traceback.format_exc()).rstrip())
                status, result = 500, {"error": "internal emulator error: %s" % type(exc).__name__}
        self._log("control", CONTROL_PREFIX + path, status, started)
        self._send(status, result)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address: t.Tuple[str, int]) -> None:
        self.emulator = Emulator()
        super().__init__(address, Handler)

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """A client went away (timeout, hang fault): one line, no traceback."""
        error = type(sys.exc_info()[1]).__name__
        log_line("connection from %s:%s ended: %s" % (client_address[0], client_address[1], error))


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Anthropic, OpenAI and OpenRouter emulator for tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = Server((args.host, args.port))

    def stop(signum: int, frame: t.Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("provider emulator listening on http://%s:%d\n" % (args.host, args.port))
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
        sys.stderr.write("provider emulator stopped\n")
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
