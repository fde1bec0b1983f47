#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: provider_key_revoke
short_description: Disable, delete or re-enable a provider API key, refusing to touch a protected key
version_added: 0.1.0
description:
  - Sets a provider API key to O(state=disabled) (reversible), O(state=deleted) (final) or back to O(state=active).
  - Anthropic - V(disabled) is the status C(inactive), V(deleted) is C(archived). OpenRouter - V(disabled) and
    V(deleted). OpenAI has no disable - O(state=disabled) fails and changes nothing; it never deletes instead.
  - Refuses, before any request, to revoke the key given by O(protect_fingerprint) or O(protect_key_id) - the key
    that serves now.
  - OpenAI - a key that is the only key of its service account (one the collection made for it, not
    O(openai_service_account_id)) is revoked by deleting that service account, which works whether or not OpenAI
    lets a service account's key be deleted alone. Any other key is deleted alone; where OpenAI refuses that
    (its published reference says it does for service-account keys), the key stays active and the task fails, or
    warns with O(on_refused=warn), naming the key, why, and what to do. A service account that holds other keys is
    never deleted.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.provider
  - apikeys.rotation.attributes
options:
  key_id:
    description:
      - Id of the key (Anthropic C(apikey_...), OpenAI C(key_...), OpenRouter hash).
    type: str
    required: true
  state:
    description:
      - V(disabled) - the key stops authenticating but can be enabled again (Anthropic, OpenRouter).
      - V(deleted) - the key is gone for good. A key the provider no longer knows counts as already deleted.
      - V(active) - re-enable a disabled key (rollback).
    type: str
    choices: [active, disabled, deleted]
    default: disabled
  fingerprint:
    description:
      - Fingerprint (C(sha256:) and 12 hex digits) of the key being revoked, compared with O(protect_fingerprint).
    type: str
  protect_fingerprint:
    description:
      - Fingerprint of the key that must stay usable. The task fails, changing nothing, when it equals O(fingerprint).
    type: str
  protect_key_id:
    description:
      - Id of the key that must stay usable. The task fails, changing nothing, when it equals O(key_id).
    type: str
  on_refused:
    description:
      - What to do when the provider refuses to delete the key for a reason that a re-run cannot fix (OpenAI
        - a key of a service account that holds other keys).
      - V(fail) - the task fails with the explanation.
      - V(warn) - the task succeeds unchanged with RV(kept_active=true), RV(status=active) and a warning.
    type: str
    choices: [fail, warn]
    default: fail
attributes:
  check_mode:
    support: full
    details:
      - Only reads the key's current status.
  diff_mode:
    support: full
    details:
      - The diff shows the key id and its status before and after.
  idempotent:
    support: full
    details:
      - A key already in the wanted state, or already gone when O(state=deleted), is reported unchanged.
  action_group:
    description: Use C(group/apikeys.rotation.provider) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - apikeys.rotation.provider
seealso:
  - module: apikeys.rotation.provider_key_create
  - module: apikeys.rotation.provider_key_info
"""

EXAMPLES = r"""
- name: Disable the previous key, never the one now serving
  apikeys.rotation.provider_key_revoke:
    provider: openrouter
    key_id: "{{ previous_key_id }}"
    fingerprint: "{{ previous_fingerprint }}"
    protect_fingerprint: "{{ current_fingerprint }}"
    protect_key_id: "{{ current_key_id }}"
    state: disabled

- name: Delete an old OpenAI key after the grace period (OpenAI cannot disable)
  apikeys.rotation.provider_key_revoke:
    provider: openai
    openai_project_id: proj_abc
    key_id: key_abc
    state: deleted

- name: Roll back - enable the previous Anthropic key again
  apikeys.rotation.provider_key_revoke:
    provider: anthropic
    key_id: apikey_01Rj2N8SVvo6BePZj99NhmiT
    state: active
"""

RETURN = r"""
key_id:
  description: The key id.
  returned: always
  type: str
  sample: key_abc
previous_status:
  description:
    - The provider's status of the key before the task (for example V(active), V(inactive), V(disabled)), or
      V(absent) when the provider does not know the key.
  returned: always
  type: str
  sample: active
status:
  description: The provider's status after the task (in check mode, the status it would have).
  returned: always
  type: str
  sample: inactive
state:
  description: The state asked for.
  returned: always
  type: str
  sample: disabled
kept_active:
  description: True when the provider refused to delete the key and it stays active (see O(on_refused)).
  returned: always
  type: bool
  sample: false
service_account_deleted:
  description: OpenAI - the service account deleted with the key (it held no other key); null otherwise.
  returned: always
  type: str
  sample: svc_acct_abc
http:
  description: Requests sent, retries made and seconds spent waiting between retries.
  returned: always
  type: dict
  sample: {"requests": 2, "retries": 0, "retry_wait": 0.0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, checked_fingerprint, fingerprints_match
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, run_module
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import provider_argument_spec


def refuse_protected(params):
    """Fail before any request when the key to revoke is the protected one."""
    key_id = (params["key_id"] or "").strip()
    if not key_id:
        raise RotationError("key_id must not be empty")
    if params["state"] == "active":
        return key_id
    fp = checked_fingerprint(params["fingerprint"], "fingerprint")
    protect_fp = checked_fingerprint(params["protect_fingerprint"], "protect_fingerprint")
    if fp and protect_fp and fingerprints_match(fp, protect_fp):
        raise RotationError("refusing to set key %s to %s: its fingerprint %s is protect_fingerprint, the key that must "
                            "stay usable. Nothing was changed" % (key_id, params["state"], fp), key_id=key_id)
    protect_id = (params["protect_key_id"] or "").strip()
    if protect_id and protect_id == key_id:
        raise RotationError("refusing to set key %s to %s: it is protect_key_id, the key that must stay usable. "
                            "Nothing was changed" % (key_id, params["state"]), key_id=key_id)
    return key_id


def revoke(module, provider):
    params = module.params
    key_id = refuse_protected(params)
    try:
        change = provider.set_status(key_id, params["state"], check_mode=module.check_mode)
    except RotationError as exc:
        if params["on_refused"] != "warn" or not exc.details.get("kept_active"):
            raise
        module.warn(str(exc))
        return {"changed": False, "key_id": key_id, "previous_status": "active", "status": "active",
                "state": params["state"], "kept_active": True, "service_account_deleted": None, "msg": str(exc),
                "diff": {"before": {"key_id": key_id, "status": "active"},
                         "after": {"key_id": key_id, "status": "active"}}}
    return {
        "changed": change.changed,
        "key_id": key_id,
        "previous_status": change.previous_status,
        "status": change.status,
        "state": params["state"],
        "kept_active": False,
        "service_account_deleted": change.extra.get("service_account_deleted"),
        "diff": {"before": {"key_id": key_id, "status": change.previous_status},
                 "after": {"key_id": key_id, "status": change.status}},
    }


def main():
    argument_spec = provider_argument_spec(PROVIDER_NAMES)
    argument_spec.update(
        key_id=dict(type="str", required=True, no_log=False),
        state=dict(type="str", choices=["active", "disabled", "deleted"], default="disabled"),
        fingerprint=dict(type="str", no_log=False),
        protect_fingerprint=dict(type="str", no_log=False),
        protect_key_id=dict(type="str", no_log=False),
        on_refused=dict(type="str", choices=["fail", "warn"], default="fail"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, revoke)


if __name__ == "__main__":
    main()
