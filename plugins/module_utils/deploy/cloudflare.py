# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare Workers secrets: write one secret of a Worker script, list the names it binds.

``PUT /accounts/{account_id}/workers/scripts/{script}/secrets`` with
``{"name", "text", "type": "secret_text"}`` answers the v4 envelope
``{"success", "errors": [{"code", "message"}], "messages", "result": {"name", "type"}}``;
the value is never returned, by this API or any other.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, check_url
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import HttpClient, NetworkError

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
BASE_URL_ENV = "CLOUDFLARE_API_BASE_URL"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ACCOUNT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
SCRIPT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
BINDING_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SECRET_MAX = 5 * 1024
WHO = "Cloudflare"


def default_secret_name(provider: str) -> str:
    """The binding a Worker reads the provider's key from by convention: ANTHROPIC_API_KEY, ..."""
    return "%s_API_KEY" % provider.upper()


def api_token(option: t.Optional[str], env: t.Optional[t.Mapping[str, str]] = None) -> t.Tuple[str, str]:
    """The API token and where it came from: the option, ``CLOUDFLARE_API_TOKEN`` or the file ``*_FILE`` names."""
    env = os.environ if env is None else env
    if option and option.strip():
        return option.strip(), "api_token"
    if env.get(TOKEN_ENV, "").strip():
        return env[TOKEN_ENV].strip(), TOKEN_ENV
    path = env.get(TOKEN_ENV + "_FILE", "").strip()
    if path:
        try:
            with open(os.path.expanduser(path), "r", encoding="utf-8") as handle:
                value = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise RotationError("api_token: cannot read the file named by %s_FILE (%s): %s"
                                % (TOKEN_ENV, path, exc.__class__.__name__))
        if not value:
            raise RotationError("api_token: the file named by %s_FILE (%s) is empty" % (TOKEN_ENV, path))
        return value, TOKEN_ENV + "_FILE"
    raise RotationError("no Cloudflare API token: set api_token, %s or %s_FILE (a token with the permission "
                        "Workers Scripts: Edit on the account). Nothing was changed" % (TOKEN_ENV, TOKEN_ENV))


def check_names(account_id: t.Any, script_name: t.Any, secret_name: t.Any) -> None:
    """Refuse identifiers Cloudflare would refuse, before anything is read or sent."""
    if not isinstance(account_id, str) or not ACCOUNT_ID_RE.match(account_id.strip()):
        raise RotationError("account_id must be a Cloudflare account id (32 lowercase hex digits), got %r"
                            % str(account_id)[:80])
    if not isinstance(script_name, str) or not SCRIPT_RE.match(script_name.strip()):
        raise RotationError("script_name must be a Worker's name (lowercase letters, digits, - and _, at most 63), got %r"
                            % str(script_name)[:80])
    if not isinstance(secret_name, str) or not BINDING_RE.match(secret_name.strip()):
        raise RotationError("secret_name must be a binding name (letters, digits and _, not starting with a digit), "
                            "got %r" % str(secret_name)[:80])


def envelope_error(status: t.Optional[int], body: t.Any) -> str:
    """Cloudflare's ``errors[]`` in words: ``HTTP 403 code 10000 Authentication error``."""
    parts = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        for error in body["errors"][:3]:
            if isinstance(error, dict):
                text = "code %s %s" % (error.get("code"), str(error.get("message") or "")[:200])
                chain = error.get("error_chain")
                if isinstance(chain, list) and chain and isinstance(chain[0], dict):
                    text += " (%s %s)" % (chain[0].get("code"), str(chain[0].get("message") or "")[:200])
                parts.append(text)
    return "HTTP %s%s" % (status, (" " + "; ".join(parts)) if parts else "")


HINTS = {
    400: "check secret_name and the token's format",
    401: "the API token is not valid",
    403: "the API token is not valid for this account, or lacks the permission Workers Scripts: Edit",
    404: "check account_id and script_name: the Worker must exist (deploy its code first)",
}


class WorkersSecrets:
    """The secrets of one Worker script."""

    def __init__(self, base_url: str, token: str, account_id: str, script_name: str, timeout: float = 30.0,
                 retries: int = 3, max_retry_wait: float = 30.0, verify: t.Any = True) -> None:
        self.path = "/accounts/%s/workers/scripts/%s/secrets" % (account_id, script_name)
        self.client = HttpClient(base_url, WHO, timeout=timeout, retries=retries, max_retry_wait=max_retry_wait,
                                 headers={"authorization": "Bearer " + token}, verify=verify, secrets=[token])

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, action: str, json_body: t.Any = None) -> t.Any:
        try:
            resp = self.client.send(method, self.path, action, json_body=json_body, idempotent=True)
        except NetworkError as exc:
            raise RotationError(str(exc), error_type="network_error")
        body = resp.body
        if resp.status == 200 and isinstance(body, dict) and body.get("success") is True:
            return body.get("result")
        hint = HINTS.get(resp.status or 0, "")
        message = "Cloudflare refused %s: %s" % (action, envelope_error(resp.status, body))
        raise RotationError(message + (": " + hint if hint else ""), status=resp.status, error_type="cloudflare_error")

    def names(self) -> t.List[str]:
        """The names of the secrets the script binds (proves the token, the account and the script)."""
        result = self._call("GET", "listing the Worker's secrets")
        return sorted(str(item.get("name")) for item in result or [] if isinstance(item, dict))

    def put(self, name: str, value: str) -> None:
        """Write the secret ``name``: Cloudflare deploys the Worker with it at once."""
        if len(value.encode("utf-8")) > SECRET_MAX:
            raise RotationError("the key is larger than a Worker secret may be (5 kB). Nothing was changed")
        self.client.add_secret(value)
        result = self._call("PUT", "writing the Worker secret %s" % name,
                            {"name": name, "text": value, "type": "secret_text"})
        if not isinstance(result, dict) or result.get("name") != name:
            raise RotationError("Cloudflare answered the write of %s without naming it; check the Worker's secrets"
                                % name, error_type="cloudflare_error")


def connect(params: t.Mapping[str, t.Any], env: t.Optional[t.Mapping[str, str]] = None) -> WorkersSecrets:
    """A :class:`WorkersSecrets` for the module's options, with the token and base URL fallbacks."""
    from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import http_limits

    env = os.environ if env is None else env
    check_names(params.get("account_id"), params.get("script_name"), params.get("secret_name"))
    if params.get("base_url"):
        base_url, where = params["base_url"], "base_url"
    elif env.get(BASE_URL_ENV):
        base_url, where = env[BASE_URL_ENV], "%s (base_url)" % BASE_URL_ENV
    else:
        base_url, where = DEFAULT_BASE_URL, "base_url"
    try:
        base_url = check_url(base_url, where, bool(params.get("allow_insecure_http")))
    except RotationError as exc:
        raise RotationError(str(exc) + ". The API token is sent to this address. Nothing was sent")
    token, _source = api_token(params.get("api_token"), env)
    timeout, retries, max_wait = http_limits(params)
    return WorkersSecrets(base_url, token, params["account_id"].strip(), params["script_name"].strip(),
                          timeout=timeout, retries=retries, max_retry_wait=max_wait,
                          verify=params.get("validate_certs", True))
