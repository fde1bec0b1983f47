#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_secret_info
short_description: Read a KV v2 secret's versions, metadata and key fingerprints from Vault or OpenBao
version_added: 0.1.0
description:
  - Reads a KV version 2 secret's metadata (versions, C(custom_metadata), times) and the key names and value
    fingerprints of its latest version, or of O(version).
  - Returns the values only with O(return_data=true), and then only to a task with C(no_log) set.
  - An absent secret is not an error; RV(exists) is V(false).
  - 'The token needs V(read) on V(<mount>/metadata/<path>) and V(<mount>/data/<path>).'
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.vault
  - apikeys.rotation.vault.secret
  - apikeys.rotation.vault.action_group
  - apikeys.rotation.attributes
  - apikeys.rotation.attributes.info_module
options:
  version:
    description:
      - The version to read the keys, fingerprints and data of. Defaults to the latest version.
      - A version that does not exist fails the task; a deleted or destroyed one returns no keys
        (see RV(versions)).
    type: int
  return_data:
    description:
      - Also return the secret's values in RV(data).
      - The task must set C(no_log) to V(true) (the module refuses otherwise), and the registered
        variable must then only be used by tasks that also set C(no_log).
    type: bool
    default: false
seealso:
  - module: apikeys.rotation.vault_secret_write
"""

EXAMPLES = r"""
- name: What is stored (fingerprints only)
  apikeys.rotation.vault_secret_info:
    url: https://vault.example.com:8200
    path: apps/web/openai
  register: stored

- name: Show the rotation record
  ansible.builtin.debug:
    msg: "version {{ stored.version }}, key {{ stored.custom_metadata.key_id | default('?') }}, {{ stored.fingerprints }}"
  when: stored.exists

- name: Require an api_key entry in the secret
  ansible.builtin.assert:
    that: "'api_key' in stored.data_keys"
  when: stored.exists

- name: Read the value (the task and every task that uses it must be no_log)
  apikeys.rotation.vault_secret_info:
    path: apps/web/openai
    return_data: true
  register: secret
  no_log: true
"""

RETURN = r"""
exists:
  description: Whether Vault knows the secret (it has metadata, usually at least one version).
  returned: always
  type: bool
  sample: true
version:
  description: The version whose keys and fingerprints are returned; V(null) if there is none.
  returned: always
  type: int
  sample: 5
current_version:
  description: The secret's latest version.
  returned: always
  type: int
  sample: 5
oldest_version:
  description: The oldest version Vault still holds.
  returned: always
  type: int
  sample: 1
versions:
  description: Each version Vault holds, keyed by version number.
  returned: always
  type: dict
  sample: {"4": {"created_time": "2025-01-01T00:00:00Z", "deletion_time": null, "destroyed": false}}
custom_metadata:
  description: The secret's C(custom_metadata) (for this collection, the rotation record).
  returned: always
  type: dict
  sample: {"provider": "openai", "key_id": "key_abc123", "fingerprint": "sha256:3f1d2a9c8b7e"}
data_keys:
  description: The names of the keys in the data of the version read; empty when it is deleted or destroyed.
  returned: always
  type: list
  elements: str
  sample: ["api_key"]
fingerprints:
  description: For each key of the version read, the fingerprint of its value.
  returned: always
  type: dict
  sample: {"api_key": "sha256:3f1d2a9c8b7e"}
created_time:
  description: When the secret was created.
  returned: always
  type: str
  sample: "2025-01-01T00:00:00.000000Z"
updated_time:
  description: When the secret's metadata or versions last changed.
  returned: always
  type: str
  sample: "2025-02-01T00:00:00.000000Z"
data:
  description:
    - The values of the version read (V(null) if it is deleted or destroyed, or the secret is absent).
    - Secret. Register it only in a task with C(no_log) set.
  returned: when O(return_data=true)
  type: dict
  sample: {"api_key": "(secret)"}
vault_error:
  description: On failure, what went wrong (see M(apikeys.rotation.vault_secret_write) for the list).
  returned: failure
  type: str
  sample: permission_denied
"""

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import VaultModule, describe_secret


def main() -> None:
    module = VaultModule(
        argument_spec=dict(
            version=dict(type="int"),
            return_data=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if module.params["return_data"] and not module.no_log:
        module.fail_json(msg="return_data=true returns secret values: set no_log: true on this task (and on every task "
                             "that uses its result), or leave return_data unset to get fingerprints only.",
                         vault_error="invalid_input")
    try:
        result = describe_secret(module.kv_secret(), version=module.params["version"],
                                 return_data=module.params["return_data"])
    except RotationError as exc:
        module.fail_from(exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
