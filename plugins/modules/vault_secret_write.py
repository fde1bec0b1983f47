#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_secret_write
short_description: Write a KV v2 secret in Vault or OpenBao with check-and-set, only when it differs
version_added: 0.1.0
description:
  - Writes O(data) as a new version of a KV version 2 secret, or copies an older version's data as the new
    newest version (O(data_from_version), for rollback), and merges O(custom_metadata) into the secret's metadata.
  - Reads first and compares. Identical data writes no new version, identical metadata is not rewritten.
  - Every data write uses check-and-set, against O(cas) or else against the version read at the start, so a
    concurrent writer makes the task fail instead of being overwritten.
  - Results and diffs show key names, fingerprints (V(sha256:) followed by 12 hex characters), versions and
    custom_metadata, never the values.
  - 'The token needs, on V(<mount>/data/<path>): V(read), and V(create) (new secret) or V(update) (existing secret).
    With O(custom_metadata) it also needs V(read) and V(create) or V(update) on V(<mount>/metadata/<path>).'
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.vault
  - apikeys.rotation.vault.secret
  - apikeys.rotation.vault.action_group
  - apikeys.rotation.attributes
options:
  data:
    description:
      - The secret's data, a dictionary of key names to string values.
      - Written as a new version only when it differs from the latest version.
      - Mutually exclusive with O(data_from_version).
    type: dict
  data_from_version:
    description:
      - Copy the data of this version of the secret as the new newest version, inside the module, so the value
        never passes through the playbook. Used for rollback.
      - Refused, with nothing written, when that version does not exist, is deleted or is destroyed.
      - When the latest version already holds the same data, nothing is written.
      - Mutually exclusive with O(data).
    type: int
  data_from_path:
    description:
      - With O(data_from_version), copy that version of this other secret of the same O(mount) instead (the
        C(apikeys.rotation.rotate) role stores a new key this way from where it was staged).
      - The token needs V(read) on its data and metadata too.
    type: str
  custom_metadata:
    description:
      - Keys to set in the secret's C(custom_metadata), merged into the existing ones. A key whose value is V(null)
        is removed. Values must be strings (Vault stores only strings there).
      - Given alone, only the metadata is updated and no new version is written.
    type: dict
  cas:
    description:
      - Check-and-set version the secret must be at for the write to happen. V(0) means the secret must not exist.
      - When it differs from the current version the task fails, writing nothing, and says which version was
        expected and which one Vault holds.
      - Defaults to the version read at the start of the task (V(0) if the secret does not exist).
    type: int
  require_fingerprint:
    description:
      - Write only while the latest version's field O(require_field) holds the value with this fingerprint
        (V(sha256:) followed by 12 hex characters, or the full SHA-256; case does not matter). Otherwise the task fails
        with RV(fingerprint_conflict), writing nothing, and says which key Vault holds. A value of another form is
        refused before anything is read.
      - The C(apikeys.rotation.rotate) role closes a rotation's record this way, so that a key someone else wrote
        after the rotation proved its own does not go unnoticed.
    type: str
  require_field:
    description: The field of the latest version that O(require_fingerprint) is about.
    type: str
    default: api_key
attributes:
  check_mode:
    support: full
    details:
      - Does the same reads and reports the real plan (and the diff), including the version that would be written.
  diff_mode:
    support: full
    details:
      - Before and after show the version, key names, value fingerprints and C(custom_metadata), never values.
  idempotent:
    support: full
    details:
      - Writing identical data creates no new version and reports no change; identical C(custom_metadata) is not rewritten.
      - With an explicit O(cas), a second run fails once the first one moved the version on; leave O(cas) unset
        (or set it from a fresh read) for repeatable tasks.
notes:
  - O(data) is a no_log option, so its values are masked in Ansible's output; still set C(no_log) on tasks
    whose variables hold secrets.
  - Writing both data and C(custom_metadata) is two requests; the data (with check-and-set) is written first.
seealso:
  - module: apikeys.rotation.vault_secret_info
"""

EXAMPLES = r"""
- name: Store a new API key (fails if someone else changed the secret since version 4)
  apikeys.rotation.vault_secret_write:
    url: https://vault.example.com:8200
    path: apps/web/openai
    data:
      api_key: "{{ new_api_key }}"
    cas: 4
    custom_metadata:
      provider: openai
      key_id: "{{ new_key_id }}"
      stage: null
  no_log: true

- name: Roll back to version 3 (the module copies the data; it never passes through the playbook)
  apikeys.rotation.vault_secret_write:
    path: apps/web/openai
    data_from_version: 3

- name: Record a rotation stage only (no new version)
  apikeys.rotation.vault_secret_write:
    path: apps/web/openai
    custom_metadata:
      stage: creating
      rotation_id: "20250101T000000"

- name: Connection options set once for every Vault task of a block (or a play)
  module_defaults:
    group/apikeys.rotation.vault:
      url: https://vault.example.com:8200
      auth_method: approle
      role_id: "{{ vault_role_id }}"
      secret_id: "{{ vault_secret_id }}"
  block:
    - name: Write
      apikeys.rotation.vault_secret_write:
        path: apps/web/openai
        data:
          api_key: "{{ new_api_key }}"
      no_log: true
"""

RETURN = r"""
version:
  description:
    - The secret's latest version after the task (in check mode, the version that would be written).
    - V(null) when the secret has no version (only metadata).
  returned: success
  type: int
  sample: 5
previous_version:
  description: The latest version before the task, V(null) if the secret did not exist.
  returned: success
  type: int
  sample: 4
created:
  description: Whether the secret did not exist before and this task wrote (or would write) its first version.
  returned: success
  type: bool
  sample: false
fingerprints:
  description:
    - For each key of the latest data after the task, the fingerprint of its value.
    - On a fingerprint conflict (RV(fingerprint_conflict)), those of the latest data Vault holds.
  returned: success, and on a fingerprint conflict
  type: dict
  sample: {"api_key": "sha256:3f1d2a9c8b7e"}
custom_metadata:
  description: The secret's C(custom_metadata) after the merge.
  returned: success
  type: dict
  sample: {"provider": "openai", "key_id": "key_abc123"}
vault_error:
  description:
    - On failure, what went wrong, one of V(unreachable), V(timeout), V(tls), V(sealed), V(not_initialized),
      V(permission_denied), V(auth_failed), V(mount_missing), V(not_kv2), V(cas_conflict), V(fingerprint_conflict),
      V(version_missing), V(version_deleted), V(version_destroyed), V(invalid_input), V(invalid_request), V(rate_limited),
      V(not_consistent), V(server_error), V(vault_error).
  returned: failure
  type: str
  sample: cas_conflict
cas_conflict:
  description: V(true) when the task failed on a check-and-set conflict (nothing was written).
  returned: failure
  type: bool
  sample: true
fingerprint_conflict:
  description: V(true) when the task failed because the latest version does not hold O(require_fingerprint) (nothing
    was written). RV(current_version) and RV(fingerprints) then describe what Vault holds.
  returned: failure
  type: bool
  sample: true
current_version:
  description: On a check-and-set or fingerprint conflict, the version Vault holds.
  returned: failure
  type: int
  sample: 5
expected_version:
  description: On a check-and-set conflict, the version the write expected.
  returned: failure
  type: int
  sample: 4
"""

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import VaultModule, write_secret


def main() -> None:
    module = VaultModule(
        argument_spec=dict(
            data=dict(type="dict", no_log=True),
            data_from_version=dict(type="int"),
            data_from_path=dict(type="str"),
            custom_metadata=dict(type="dict"),
            cas=dict(type="int"),
            require_fingerprint=dict(type="str"),
            require_field=dict(type="str", default="api_key", no_log=False),
        ),
        mutually_exclusive=[("data", "data_from_version")],
        required_by={"data_from_path": "data_from_version"},
        required_one_of=[("data", "data_from_version", "custom_metadata")],
        supports_check_mode=True,
    )
    try:
        result = write_secret(
            module.kv_secret(),
            data=module.params["data"],
            data_from_version=module.params["data_from_version"],
            data_from_path=module.params["data_from_path"],
            custom_metadata=module.params["custom_metadata"],
            cas=module.params["cas"],
            require_fingerprint=module.params["require_fingerprint"],
            require_field=module.params["require_field"],
            check_mode=module.check_mode,
            register_secret=module.register_secret,
        )
    except RotationError as exc:
        module.fail_from(exc)
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
