# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Provider connection options, shared by every module of the group apikeys.rotation.provider.
    DOCUMENTATION = r"""
options:
  provider:
    description:
      - The provider that holds the key.
      - V(anthropic) uses the Anthropic Admin API (an admin key C(sk-ant-admin01-...)); Anthropic cannot create
        keys by API, so a key made in the Anthropic Console is adopted instead.
      - V(openai) uses the OpenAI Administration API (an admin key C(sk-admin-...)); keys belong to service
        accounts of the project O(openai_project_id).
      - V(openrouter) uses the OpenRouter key management API (a management key).
    type: str
    required: true
    choices: [anthropic, openai, openrouter]
  base_url:
    description:
      - Base URL of the provider API, with its path.
      - If not set, the environment variable E(ANTHROPIC_BASE_URL), E(OPENAI_BASE_URL) or E(OPENROUTER_BASE_URL)
        (depending on O(provider)) is used, then the official URL V(https://api.anthropic.com),
        V(https://api.openai.com/v1) or V(https://openrouter.ai/api/v1).
    type: str
  admin_key:
    description:
      - The key that manages keys at the provider, never logged.
      - Anthropic admin key, OpenAI admin key or OpenRouter management key.
      - If not set, the environment variable E(ANTHROPIC_ADMIN_KEY), E(OPENAI_ADMIN_KEY) or
        E(OPENROUTER_MANAGEMENT_KEY) is used, then the file named by the same variable with the suffix C(_FILE)
        (for example E(OPENAI_ADMIN_KEY_FILE)).
      - Required by every operation that lists, creates or changes keys; not needed to probe a key.
    type: str
  timeout:
    description:
      - Seconds to wait for each HTTP request (connect and read).
    type: float
    default: 30
  retries:
    description:
      - How many times a request is retried after HTTP 408, 409, 429, 5xx (including Anthropic's 529) or a
        network error. Never after 400, 401, 403 or 404.
      - The wait follows the provider's C(retry-after-ms) or C(Retry-After) header (seconds or an HTTP date),
        else exponential backoff with jitter. A C(x-should-retry) header overrides the decision.
      - A request that creates a key is not sent again once it may have reached the provider (a read timeout),
        so a retry never makes a second key.
    type: int
    default: 3
  max_retry_wait:
    description:
      - Upper bound, in seconds, of one wait between retries, whatever the provider asks in C(Retry-After).
    type: float
    default: 30
  openai_project_id:
    description:
      - The OpenAI project (C(proj_...)) whose keys are managed. Required with O(provider=openai) for every
        operation except the probe.
    type: str
  openai_service_account_id:
    description:
      - The OpenAI service account (C(svc_acct_...)) that owns new keys.
      - If not set, a new service account named after the key is created with each key, and revoking the key deletes
        that account. With it set, OpenAI may refuse to delete one key of the account (its published reference says
        it does); the old key then stays active and M(apikeys.rotation.provider_key_revoke) says so.
    type: str
  anthropic_workspace_id:
    description:
      - Restrict Anthropic key look-ups to this workspace (C(wrkspc_...)).
      - Keys of the Default Workspace carry no workspace id; leave this unset for them.
    type: str
  openrouter_workspace_id:
    description:
      - The OpenRouter workspace whose keys are listed and in which new keys are made.
      - Without it OpenRouter lists and creates keys in the default workspace only, so a key in another workspace is
        invisible to look-ups.
    type: str
  allow_insecure_http:
    description:
      - Accept a plain C(http://) O(base_url) (and, in M(apikeys.rotation.api_key_probe), C(health_url)) on a host
        other than this host's loopback address. Credentials then cross the network unencrypted.
      - Without it a URL must be C(https://), or C(http://) on C(localhost), C(127.0.0.0/8) or C([::1]).
      - A link-local address (C(169.254.0.0/16), C(fe80::/10)), where cloud metadata services answer, is always
        refused. Any C(user:password@) in a URL is never shown in a message or result.
    type: bool
    default: false
requirements:
  - httpx (Python library, on the host that runs the module)
notes:
  - The options above can be set once for a play with
    C(module_defaults) and the action group C(group/apikeys.rotation.provider).
  - No key value is ever returned in a result except by M(apikeys.rotation.provider_key_create), and error
    messages from the provider are cleaned of anything that looks like a key.
"""
