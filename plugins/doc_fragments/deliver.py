# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The key a deploy target delivers: read from Vault by the module, checked against its fingerprint.
    DOCUMENTATION = r"""
options:
  api_key_from:
    description:
      - The key to deliver - this field of a KV v2 secret. The module reads it from Vault itself.
      - Vault is reached as the environment says (E(VAULT_ADDR), E(VAULT_CACERT), E(VAULT_TOKEN), ...) or with the run's
        login (E(APIKEYS_VAULT_TOKEN_FILE), see M(apikeys.rotation.vault_login)). Needs the Python library hvac.
    type: dict
    required: true
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
  expected_fingerprint:
    description:
      - The fingerprint (C(sha256:) and 12 hex digits) the key read must have. Another key fails the task before
        anything is written.
    type: str
"""
