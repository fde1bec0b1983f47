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
  - With O(successes) greater than 1, one run of the module probes up to O(successes) times, O(interval) seconds
    apart, and RV(live) is V(true) only when every probe succeeds; it stops at the first failure. RV(successes),
    RV(probes) and RV(first_failure) tell how far it got.
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
      - The provider of the key. Required with O(api_key) and O(api_key_from); not used with O(health_url).
    type: str
    required: false
    choices: [anthropic, openai, openrouter]
  api_key:
    description:
      - The key to probe (provider mode). Its format must fit O(provider).
      - Mutually exclusive with O(api_key_from) and O(health_url).
    type: str
  api_key_from:
    description:
      - Probe the key kept in this field of a KV v2 secret instead of O(api_key) (provider mode). The module reads it
        from Vault itself, so the value is never a task argument, a result or a variable.
      - Vault is reached as the environment says (E(VAULT_ADDR), E(VAULT_CACERT), E(VAULT_TOKEN), ...) or with the run's
        login (E(APIKEYS_VAULT_TOKEN_FILE), see M(apikeys.rotation.vault_login)). Needs the Python library hvac.
      - Mutually exclusive with O(api_key) and O(health_url).
    type: dict
    suboptions:
      mount:
        description: The KV v2 mount.
        type: str
        default: secret
      path:
        description: The secret's path below O(api_key_from.mount).
        type: str
        required: true
      field:
        description: The field of the secret that holds the key.
        type: str
        default: api_key
      version:
        description: The version to read; the latest when not set.
        type: int
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
      - With O(api_key_from), the fingerprint of the key the secret must hold. When the version read holds another
        key (or none), the task fails before any probe with RV(key_mismatch), RV(fingerprint) naming the key found.
        The C(apikeys.rotation.rotate) role's verify reads the newest version this way, so that it probes only the key
        the rotation stored.
    type: str
  health_validate_certs:
    description:
      - Verify the TLS certificate of O(health_url).
    type: bool
    default: true
  successes:
    description:
      - How many probes in a row must succeed for RV(live=true). The probes stop at the first failure.
      - V(1) probes once. A larger value proves the key stays live, for example after it first authenticated at a
        provider that propagates new keys with a delay. With C(until), retry only while no probe succeeded
        (RV(successes) is 0), so that a run that succeeded and then failed fails the task instead of being retried
        (see the examples).
      - Between 1 and 100.
    type: int
    default: 1
  interval:
    description:
      - Seconds between two consecutive probes when O(successes) is greater than 1 (not waited after the last, nor
        before the first unless O(previous_probe_at) is set).
      - Between 0 and 600.
    type: float
    default: 1
  previous_probe_at:
    description:
      - When an earlier probe of the same key answered (its RV(answered_at), seconds since the epoch). The first probe
        then waits until O(interval) seconds after it, so that consecutive probes split over two tasks stay
        O(interval) apart.
      - A time already O(interval) or more in the past means no wait.
    type: float
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

- name: Live, then three successes in a row, 3 seconds apart (retried only until the first success)
  apikeys.rotation.api_key_probe:
    provider: openai
    api_key: "{{ new_key.api_key }}"
    successes: 3
    interval: 3
  register: proven
  # a key that went live and then failed is not retried: the task fails
  until: proven.live or proven.successes > 0
  failed_when: not proven.live
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
  description:
    - Whether the key authenticates (provider mode) or the application serves the expected key (application mode).
    - With O(successes) greater than 1, V(true) only when all O(successes) probes succeeded.
  returned: always
  type: bool
  sample: true
probes:
  description: How many probes were sent, O(successes) at most; fewer when one failed (the last one sent is the failed one).
  returned: always
  type: int
  sample: 3
successes:
  description: How many probes in a row succeeded, from the first one on.
  returned: always
  type: int
  sample: 3
answered_at:
  description:
    - When the last probe's answer (or failure) came, in seconds since the epoch, by the clock of the host that ran
      the probe (the controller for a task on it, which is how the C(rotate) role times how long a new key took to
      authenticate and to be verified).
  returned: always
  type: float
  sample: 1796551200.25
first_failure:
  description: The RV(reason) of the first probe that failed; null when none failed.
  returned: always
  type: str
  sample: "the key was rejected: HTTP 401 authentication_error - invalid x-api-key"
status:
  description: HTTP status of the last answer; null when nothing answered.
  returned: always
  type: int
  sample: 200
latency_ms:
  description: Milliseconds the last answer took.
  returned: always
  type: int
  sample: 84
fingerprint:
  description: Provider mode - the fingerprint of the key probed (O(api_key), or the key read with O(api_key_from)).
    Application mode - the fingerprint the application reported (same as RV(reported_fingerprint)).
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
  description:
    - Why the key is or is not live, in words (never a key value).
    - With O(successes) greater than 1, the last probe's reason followed by how many probes succeeded.
  returned: always
  type: str
  sample: "the key was rejected: HTTP 401 authentication_error - invalid x-api-key"
request_id:
  description: The provider's request id of the last answer, when it sent one.
  returned: in provider mode
  type: str
  sample: req_011CS1
code:
  description:
    - The provider's own reason code for a refusal of the last probe (OpenAI C(error.code), for example
      V(invalid_api_key); otherwise the error type, for example Anthropic V(authentication_error)); null when the
      probe succeeded or the answer carried none.
    - OpenAI - only V(invalid_api_key) says the key itself is bad; other 401 codes concern the organisation, the
      caller's IP allow-list or the project, and RV(reason) says so.
  returned: in provider mode
  type: str
  sample: invalid_api_key
restricted:
  description:
    - V(true) when the provider authenticated the key but refused it the probe endpoint for lack of a permission or
      scope (OpenAI answers a scope-restricted key on C(/models) with 401 or 403 "You have insufficient permissions
      for this operation. Missing scopes - api.model.read" and no C(error.code)). RV(live) is then V(true) - the key
      works, it may only not list models.
  returned: in provider mode
  type: bool
  sample: false
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
api_key_version:
  description: With O(api_key_from), the version of the secret the key was read from.
  returned: with O(api_key_from), when a key was read (and with RV(key_mismatch) when the version is known)
  type: int
  sample: 4
key_mismatch:
  description:
    - V(true) when the task failed because the key read with O(api_key_from) is not the one O(expected_fingerprint)
      names (or there is none); nothing was probed, and RV(fingerprint) names the key found (null for none).
  returned: on that failure
  type: bool
  sample: true
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.common import (
    RotationError,
    check_url,
    checked_fingerprint,
    fingerprint,
    fingerprints_match,
    vault_ref_spec,
)
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import HttpClient, NetworkError
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, get_provider, run_module
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import evaluate_health, http_limits, provider_argument_spec


MAX_SUCCESSES = 100
MAX_INTERVAL = 600.0


def probe_limits(params):
    """``successes`` and ``interval``, refusing values out of range."""
    successes = params.get("successes")
    successes = 1 if successes is None else int(successes)
    if not 1 <= successes <= MAX_SUCCESSES:
        raise RotationError("successes must be between 1 and %d, got %s" % (MAX_SUCCESSES, successes))
    interval = params.get("interval")
    interval = 1.0 if interval is None else float(interval)
    if not 0 <= interval <= MAX_INTERVAL:
        raise RotationError("interval must be between 0 and %d seconds, got %s" % (MAX_INTERVAL, interval))
    return successes, interval


def consecutive(probe_once, successes, interval, sleep=None, since=None):
    """Call ``probe_once()`` (a dict with ``live`` and ``reason``) until it fails or succeeded ``successes`` times.

    The probes are ``interval`` seconds apart; with ``since`` (when an earlier probe answered), the
    first one too. Returns the last outcome with ``live`` true only when every probe succeeded, plus
    ``probes``, ``successes``, ``first_failure`` and ``answered_at`` (``time.time()`` once the last
    probe answered).
    """
    outcome = {}
    done = 0
    if since is not None:
        wait = float(since) + interval - time.time()
        if wait > 0:
            (sleep or time.sleep)(min(wait, interval))
    for index in range(successes):
        if index:
            (sleep or time.sleep)(interval)
        outcome = probe_once()
        if not outcome["live"]:
            break
        done += 1
    answered_at = time.time()
    probes = done + (0 if done == successes else 1)
    first_failure = None if done == successes else outcome["reason"]
    if successes > 1:
        if first_failure is None:
            outcome["reason"] = "%s (%d of %d consecutive probes)" % (outcome["reason"], done, successes)
        else:
            outcome["reason"] = "%s (probe %d of %d, after %d success%s)" % (
                outcome["reason"], probes, successes, done, "" if done == 1 else "es")
    outcome.update(live=first_failure is None, probes=probes, successes=done, first_failure=first_failure,
                   answered_at=answered_at)
    return outcome


def probe_provider(module, api_key, successes, interval):
    params = module.params
    if not params["provider"]:
        raise RotationError("provider is required with api_key or api_key_from")
    provider = get_provider(params)
    if provider.options.admin_key:
        module.no_log_values.add(provider.options.admin_key)
    try:
        api_key = provider.validate_key(api_key)
        result = consecutive(lambda: provider.probe(api_key).as_dict(), successes, interval,
                             since=params["previous_probe_at"])
        result.update(changed=False, mode="provider", fingerprint=fingerprint(api_key), http=provider.stats)
        return result
    finally:
        provider.close()


def probe_health(module, successes, interval):
    params = module.params
    url = check_url(params["health_url"], "health_url", params["allow_insecure_http"])
    expected = checked_fingerprint(params["expected_fingerprint"], "expected_fingerprint", required=True)
    timeout, retries, max_wait = http_limits(params)
    client = HttpClient(url, "health_url", timeout=timeout, retries=retries,
                        max_retry_wait=max_wait, verify=params["health_validate_certs"])

    def probe_once():
        started = time.monotonic()
        try:
            resp = client.send("GET", "", "reading the key health endpoint")
            return evaluate_health(resp, None, expected, started)
        except NetworkError as exc:
            return evaluate_health(None, exc, expected, started)

    try:
        outcome = consecutive(probe_once, successes, interval, since=params["previous_probe_at"])
    finally:
        client.close()
    outcome.update(changed=False, mode="health", fingerprint=outcome["reported_fingerprint"], http=dict(client.stats))
    return outcome


def probe(module, _provider):
    successes, interval = probe_limits(module.params)
    if module.params["api_key_from"] is not None:
        # the key is read here, from Vault, and never passes through a task variable
        from ansible_collections.apikeys.rotation.plugins.module_utils.vault import VaultError, read_ref_version

        ref = module.params["api_key_from"]
        expected = (checked_fingerprint(module.params["expected_fingerprint"], "expected_fingerprint", required=True)
                    if module.params["expected_fingerprint"] is not None else None)
        try:
            api_key, version = read_ref_version("api_key_from", ref)
        except VaultError as exc:
            if expected is None or exc.category not in ("not_found", "version_deleted"):
                raise
            # no key where the expected one should be: the same answer as another key
            api_key, version = None, None
        if api_key is not None:
            module.no_log_values.add(api_key)
        if expected is not None:
            found = fingerprint(api_key) if api_key is not None else None
            if not fingerprints_match(expected, found):
                raise RotationError("api_key_from: the %s of %s/%s holds %s, not the key %s (expected_fingerprint). "
                                    "Nothing was probed." % (
                                        "version %d" % version if version else "latest version",
                                        (ref.get("mount") or "secret").strip("/"), ref["path"].strip("/"),
                                        "the key " + found if found else "no key", expected),
                                    key_mismatch=True, fingerprint=found, api_key_version=version)
        result = probe_provider(module, api_key, successes, interval)
        result["api_key_version"] = version
        return result
    if module.params["api_key"] is not None:
        if not module.params["api_key"].strip():
            raise RotationError("api_key is empty")
        if module.params["expected_fingerprint"] is not None:
            raise RotationError("expected_fingerprint goes with health_url or api_key_from, not with api_key")
        return probe_provider(module, module.params["api_key"], successes, interval)
    return probe_health(module, successes, interval)


def main():
    argument_spec = provider_argument_spec(PROVIDER_NAMES, provider_required=False)
    argument_spec.update(
        api_key=dict(type="str", no_log=True),
        api_key_from=vault_ref_spec(),
        health_url=dict(type="str"),
        expected_fingerprint=dict(type="str", no_log=False),
        health_validate_certs=dict(type="bool", default=True),
        successes=dict(type="int", default=1),
        interval=dict(type="float", default=1.0),
        previous_probe_at=dict(type="float"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("api_key", "api_key_from", "health_url")],
        required_one_of=[("api_key", "api_key_from", "health_url")],
        required_by={"health_url": "expected_fingerprint"},
    )
    run_module(module, probe, needs_provider=False)


if __name__ == "__main__":
    main()
