#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: api_key_probe
short_description: Prove that an API key is live, at the provider or in the application that uses it
version_added: 0.1.0
description:
  - Provider mode (O(provider) and O(api_key)) - asks the provider's zero-token endpoint whether the key
    authenticates - Anthropic C(GET /v1/models?limit=1), OpenAI C(GET /models), OpenRouter C(GET /key). No endpoint
    that bills tokens is ever called.
  - >-
    Application mode (O(health_url) and O(expected_fingerprint)) - reads the application's key health endpoint, which
    answers C({"live": true|false, "fingerprint": "sha256:..."}). RV(live) is V(true) only when the application reports
    C(live) true and the expected fingerprint, that is the new key serves the application's traffic.
  - A rejected key (401, 403), a provider or application failure (5xx) or a network error gives RV(live=false) and a
    RV(reason), never a failed task, so C(until) can retry. The task fails only on bad input.
  - The admin options of the provider group (O(admin_key), O(openai_project_id), ...) are accepted so that
    C(module_defaults) for the group work, and ignored.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.provider
  - apikeys.rotation.attributes
  - apikeys.rotation.attributes.info_module
options:
  provider:
    description:
      - The provider of O(api_key). Required with O(api_key); not used with O(health_url).
    type: str
    required: false
    choices: [anthropic, openai, openrouter]
  api_key:
    description:
      - The key to probe (provider mode). Its format must fit O(provider).
      - Mutually exclusive with O(health_url).
    type: str
  health_url:
    description:
      - The application's key health endpoint, V(http://) or V(https://) (application mode).
      - See C(docs/key-health-endpoint.md) in the collection for the JSON it must answer.
    type: str
  expected_fingerprint:
    description:
      - The fingerprint (C(sha256:) and 12 hex digits) of the key the application should serve. Required with
        O(health_url).
      - An application that reports the full 64-hex SHA-256 also matches.
    type: str
  health_validate_certs:
    description:
      - Verify the TLS certificate of O(health_url).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details:
      - Only reads; probes the same in check mode.
  idempotent:
    support: full
    details:
      - Never changes anything; RV(live) may differ between runs, as the key's state does.
  action_group:
    description: Use C(group/apikeys.rotation.provider) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - apikeys.rotation.provider
seealso:
  - module: apikeys.rotation.provider_key_create
  - module: apikeys.rotation.provider_key_revoke
"""

EXAMPLES = r"""
- name: The new key authenticates at OpenAI (retried until it does)
  apikeys.rotation.api_key_probe:
    provider: openai
    api_key: "{{ new_key.api_key }}"
  register: probe
  until: probe.live
  retries: 10
  delay: 3
  no_log: true

- name: The application serves the new key
  apikeys.rotation.api_key_probe:
    health_url: https://wishlist.internal/healthz/key
    expected_fingerprint: "{{ new_key.fingerprint }}"
  register: app
  until: app.live
  retries: 20
  delay: 5
"""

RETURN = r"""
live:
  description: Whether the key authenticates (provider mode) or the application serves the expected key (application mode).
  returned: always
  type: bool
  sample: true
status:
  description: HTTP status of the last answer; null when nothing answered.
  returned: always
  type: int
  sample: 200
latency_ms:
  description: Milliseconds the answer took.
  returned: always
  type: int
  sample: 84
fingerprint:
  description: Provider mode - the fingerprint of O(api_key). Application mode - the fingerprint the application
    reported (same as RV(reported_fingerprint)).
  returned: always
  type: str
  sample: "sha256:0a1b2c3d4e5f"
reported_fingerprint:
  description: The fingerprint the application reported; null if none or not a fingerprint.
  returned: in application mode
  type: str
  sample: "sha256:0a1b2c3d4e5f"
reported_live:
  description: What the application reported as C(live).
  returned: in application mode
  type: bool
  sample: true
reason:
  description: Why the key is or is not live, in words (never a key value).
  returned: always
  type: str
  sample: "the key was rejected: HTTP 401 authentication_error - invalid x-api-key"
request_id:
  description: The provider's request id of the last answer, when it sent one.
  returned: in provider mode
  type: str
  sample: req_011CS1
mode:
  description: V(provider) or V(health).
  returned: always
  type: str
  sample: provider
http:
  description: Requests sent, retries made and seconds spent waiting between retries.
  returned: always
  type: dict
  sample: {"requests": 1, "retries": 0, "retry_wait": 0.0}
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import HttpClient, NetworkError
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, get_provider, run_module
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import (
    FINGERPRINT_RE,
    evaluate_health,
    http_limits,
    provider_argument_spec,
)


def probe_provider(module):
    params = module.params
    if not params["provider"]:
        raise RotationError("provider is required with api_key")
    provider = get_provider(params)
    if provider.options.admin_key:
        module.no_log_values.add(provider.options.admin_key)
    try:
        api_key = provider.validate_key(params["api_key"])
        result = provider.probe(api_key).as_dict()
        result.update(changed=False, mode="provider", fingerprint=fingerprint(api_key), http=provider.stats)
        return result
    finally:
        provider.close()


def probe_health(module):
    params = module.params
    url = (params["health_url"] or "").strip()
    if not re.match(r"^https?://[^/\s]+", url, re.I):
        raise RotationError("health_url must be an http:// or https:// URL, got %r" % url)
    expected = (params["expected_fingerprint"] or "").strip().lower()
    if not FINGERPRINT_RE.match(expected):
        raise RotationError("expected_fingerprint must be sha256: followed by 12 (or 64) hex digits, got %r"
                            % params["expected_fingerprint"])
    timeout, retries, max_wait = http_limits(params)
    client = HttpClient(url, "health_url", timeout=timeout, retries=retries,
                        max_retry_wait=max_wait, verify=params["health_validate_certs"])
    started = time.monotonic()
    try:
        try:
            resp = client.send("GET", "", "reading the key health endpoint")
            outcome = evaluate_health(resp, None, expected, started)
        except NetworkError as exc:
            outcome = evaluate_health(None, exc, expected, started)
    finally:
        client.close()
    outcome.update(changed=False, mode="health", fingerprint=outcome["reported_fingerprint"], http=dict(client.stats))
    return outcome


def probe(module, _provider):
    if module.params["api_key"] is not None:
        if not module.params["api_key"].strip():
            raise RotationError("api_key is empty")
        return probe_provider(module)
    return probe_health(module)


def main():
    argument_spec = provider_argument_spec(PROVIDER_NAMES, provider_required=False)
    argument_spec.update(
        api_key=dict(type="str", no_log=True),
        health_url=dict(type="str"),
        expected_fingerprint=dict(type="str", no_log=False),
        health_validate_certs=dict(type="bool", default=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("api_key", "health_url")],
        required_one_of=[("api_key", "health_url")],
        required_by={"health_url": "expected_fingerprint"},
    )
    run_module(module, probe, needs_provider=False)


if __name__ == "__main__":
    main()
