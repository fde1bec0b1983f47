#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: provider_key_info
short_description: List provider API keys by id or name, without their values
version_added: 0.1.0
description:
  - Lists the API keys a provider knows, all of them or those with a given O(key_id) or O(name).
  - Returns ids, names, statuses, creation times and the provider's redacted hints; never a key value.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.provider
  - apikeys.rotation.attributes
  - apikeys.rotation.attributes.info_module
options:
  key_id:
    description:
      - Only the key with this id (Anthropic C(apikey_...), OpenAI C(key_...), OpenRouter hash).
      - A key the provider does not know gives an empty RV(api_keys), not an error.
    type: str
  name:
    description:
      - Only keys with this name. With OpenAI, a key whose service account has this name also matches.
    type: str
  match_api_key_from:
    description:
      - Also tell which of the keys found the key kept in this field of a KV v2 secret is, by the provider's redacted
        hint (RV(matching_key_ids)). The module reads the value from Vault itself; only ids are returned.
      - Vault is reached as the environment says (E(VAULT_ADDR), E(VAULT_CACERT), E(VAULT_TOKEN), ...) or with the run's
        login (E(APIKEYS_VAULT_TOKEN_FILE), see M(apikeys.rotation.vault_login)). Needs the Python library hvac.
    type: dict
    suboptions:
      mount:
        description: The KV v2 mount.
        type: str
        default: secret
      path:
        description: The secret's path below the mount.
        type: str
        required: true
      field:
        description: The field that holds the key.
        type: str
        default: api_key
      version:
        description: The version to read; the latest when not set.
        type: int
  require_usable:
    description:
      - With O(key_id), fail unless the provider knows a key with that id, it is usable (not deleted, archived, expired
        or absent) and, with O(match_api_key_from), its redacted hint (when the provider gives one) fits the key kept
        in Vault. The failure names what is wrong (RV(problem)); nothing is changed either way.
      - When no key has that id, the provider's listing is read once more, so that a wrong O(base_url) (which answers
        404 to every request) is named as such instead of as a missing key.
    type: bool
    default: false
attributes:
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
- name: Find the key a rotation made
  apikeys.rotation.provider_key_info:
    provider: openrouter
    name: "chat-{{ rotation_id }}"
  register: found

- name: Show each key found with its status
  ansible.builtin.debug:
    msg: "{{ found.api_keys | items2dict(key_name='id', value_name='status') }}"

- name: Read one OpenAI key by id
  apikeys.rotation.provider_key_info:
    provider: openai
    openai_project_id: proj_abc
    key_id: key_abc
  register: found
"""

RETURN = r"""
api_keys:
  description: The keys found (ids, names, statuses; never a key value).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Key id (OpenRouter - the key hash).
      type: str
      sample: apikey_01Rj2N8SVvo6BePZj99NhmiT
    name:
      description: Key name.
      type: str
      sample: wishlist-20260101T000000
    status:
      description:
        - V(active), V(inactive) or V(archived) (Anthropic), V(active) (OpenAI lists only live keys),
          V(active) or V(disabled) (OpenRouter).
      type: str
      sample: active
    created_at:
      description: Creation time (RFC 3339).
      type: str
      sample: "2026-01-01T00:00:00Z"
    redacted_hint:
      description: The provider's redacted form of the key.
      type: str
      sample: sk-ant-api03-R2D...igAA
    workspace_id:
      description: Anthropic workspace of the key.
      type: str
      returned: with O(provider=anthropic), when the key is in a workspace
    project_id:
      description: OpenAI project of the key.
      type: str
      returned: with O(provider=openai)
    service_account_id:
      description: OpenAI service account that owns the key.
      type: str
      returned: with O(provider=openai), for service-account keys
    service_account_name:
      description: Name of that service account.
      type: str
      returned: with O(provider=openai), for service-account keys
    user_id:
      description: OpenAI user that owns the key.
      type: str
      returned: with O(provider=openai), for user keys
matching_key_ids:
  description:
    - Ids of the usable keys found (not deleted, archived or expired) whose redacted hint fits the key of
      O(match_api_key_from). A key without a hint never matches.
  returned: when O(match_api_key_from) is set
  type: list
  elements: str
  sample: ["key_abc123"]
problem:
  description:
    - Why the key of O(key_id) failed O(require_usable) - V(missing) (no key has that id), V(unusable) (deleted,
      archived, expired or absent) or V(hint_mismatch) (its redacted hint does not fit the key in Vault).
  returned: when O(require_usable) fails
  type: str
  sample: missing
http:
  description: Requests sent, retries made and seconds spent waiting between retries.
  returned: always
  type: dict
  sample: {"requests": 1, "retries": 0, "retry_wait": 0.0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, run_module
from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint, vault_ref_spec
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import hint_matches, provider_argument_spec


UNUSABLE = ("deleted", "archived", "expired", "absent")


def info(module, provider):
    key_id = module.params["key_id"]
    if module.params["require_usable"] and not key_id:
        raise RotationError("require_usable needs key_id: it checks the one key that id names")
    records = provider.find(name=module.params["name"], key_id=key_id)
    result = {"changed": False, "api_keys": [r.as_dict() for r in records]}
    value = None
    if module.params["match_api_key_from"] is not None:
        # the key is read here, from Vault, and compared with each hint; only ids come out
        from ansible_collections.apikeys.rotation.plugins.module_utils.vault import read_ref

        value = read_ref("match_api_key_from", module.params["match_api_key_from"])
        module.no_log_values.add(value)
        result["matching_key_ids"] = [r.id for r in records
                                      if r.status not in UNUSABLE and hint_matches(r.redacted_hint, value)]
    if module.params["require_usable"]:
        problem = usable_problem(provider, key_id, records, value, result.get("matching_key_ids"))
        if problem is not None:
            kind, text = problem
            raise RotationError(text, problem=kind, api_keys=result["api_keys"])
    return result


def usable_problem(provider, key_id, records, value, matching):
    """``(problem, message)`` when the key of ``key_id`` cannot be the key in use, else None."""
    if len(records) != 1:
        # a wrong base_url answers 404 to a key's URL too: the listing (which exists) tells it apart,
        # raising the provider's own "base_url does not answer as ..." error
        provider.list_keys()
        return "missing", "no %s key has that id (%s)" % (provider.name, key_id)
    record = records[0]
    if record.status in UNUSABLE:
        return "unusable", "that key (%s) is %s" % (key_id, record.status)
    if value is not None and record.redacted_hint and key_id not in (matching or []):
        return "hint_mismatch", ("its redacted hint %s does not fit the key in Vault (%s)"
                                 % (record.redacted_hint, fingerprint(value)))
    return None


def main():
    argument_spec = provider_argument_spec(PROVIDER_NAMES)
    argument_spec.update(
        key_id=dict(type="str", no_log=False),
        name=dict(type="str"),
        match_api_key_from=vault_ref_spec(),
        require_usable=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, info)


if __name__ == "__main__":
    main()
