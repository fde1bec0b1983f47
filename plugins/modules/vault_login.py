#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_login
short_description: Log in to Vault or OpenBao once for a run, and revoke that login at its end
version_added: 0.1.0
description:
  - With O(state=present), logs in with the configured O(auth_method) (AppRole or JWT) and keeps the token in a new
    private file (directory mode 0700, file mode 0600) on the host the task runs on. RV(token_file) names it; the token
    itself is never returned.
  - Every Vault module of the collection run with the environment variable E(APIKEYS_VAULT_TOKEN_FILE) set to that
    file uses the token and does not log in again. The C(apikeys.rotation.rotate) role does this for each key, so a
    run uses the C(secret_id) (or JWT) once per key.
  - With O(state=absent), revokes the token of O(token_file) (C(auth/token/revoke-self)) and removes the file. A
    token that cannot be revoked (server gone, no C(default) policy) is reported as a warning, not a failure; it then
    lives until its TTL ends.
  - With O(auth_method=token), the token given is used as it is, never revoked; O(state=present) returns
    RV(logged_in=false) and keeps it in the same kind of private file, so that modules given no Vault options (the
    provider modules that read a key from Vault) reach Vault with the settings given to this task, for example
    through C(module_defaults). O(state=absent) then only removes the file. A token this module did not make is
    never revoked.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.vault
  - apikeys.rotation.vault.action_group
  - apikeys.rotation.attributes
options:
  state:
    description:
      - V(present) logs in; V(absent) revokes the login of O(token_file).
    type: str
    choices: [present, absent]
    default: present
  token_file:
    description:
      - With O(state=absent), the RV(token_file) of the login to close. Only a file written by this module is
        accepted.
      - With O(state=present), the directory to make the private login directory in; defaults to the system's
        temporary directory.
    type: path
attributes:
  check_mode:
    support: full
    details:
      - Logs in and revokes in check mode too, so that a check run can read what it plans with. Neither changes a
        secret or a setting.
  diff_mode:
    support: N/A
    details:
      - Changes no secret or setting.
  idempotent:
    support: partial
    details:
      - O(state=present) makes a new token at each call. O(state=absent) on a login already closed does nothing.
notes:
  - The task never reports a change; a login is the run's own and ends with it.
  - A run killed before its O(state=absent) leaves its token file behind, and the token lives until its TTL
    ends. Keep the AppRole's C(token_ttl) short (see the collection's docs/vault.md).
seealso:
  - module: apikeys.rotation.vault_secret_info
  - module: apikeys.rotation.vault_secret_write
"""

EXAMPLES = r"""
- name: Log in once (AppRole from VAULT_ROLE_ID and VAULT_SECRET_ID_FILE)
  apikeys.rotation.vault_login:
    url: https://vault.example.com:8200
    auth_method: approle
  register: login

- name: Read with that login
  apikeys.rotation.vault_secret_info:
    url: https://vault.example.com:8200
    path: apps/web/openai
  environment:
    APIKEYS_VAULT_TOKEN_FILE: "{{ login.token_file }}"

- name: Revoke the login
  apikeys.rotation.vault_login:
    url: https://vault.example.com:8200
    state: absent
    token_file: "{{ login.token_file }}"
  when: login.logged_in
"""

RETURN = r"""
logged_in:
  description: Whether this task logged in (V(false) for O(auth_method=token), whose token is used as it is).
  returned: O(state=present)
  type: bool
  sample: true
token_file:
  description: The file holding the token, to set as E(APIKEYS_VAULT_TOKEN_FILE).
  returned: O(state=present)
  type: str
  sample: /tmp/apikeys-vault-k2j4x1/token
auth_method:
  description: The auth method that was used.
  returned: O(state=present)
  type: str
  sample: approle
ttl:
  description: The token's time to live in seconds, as the login answered; V(null) for a given token.
  returned: O(state=present)
  type: int
  sample: 3600
renewable:
  description: Whether the token can be renewed.
  returned: O(state=present)
  type: bool
  sample: true
revoked:
  description: Whether the token was revoked.
  returned: O(state=absent)
  type: bool
  sample: true
removed:
  description: Whether the token file was removed.
  returned: O(state=absent)
  type: bool
  sample: true
vault_error:
  description: On failure, what went wrong (see M(apikeys.rotation.vault_secret_write) for the list).
  returned: failure
  type: str
  sample: login_failed
"""

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import (
    VaultConnection, VaultModule, close_login, open_login)


def main() -> None:
    module = VaultModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            token_file=dict(type="path"),
        ),
        secret=False,
        supports_check_mode=True,
    )
    try:
        if module.params["state"] == "absent":
            result = close_login(module.params, module.params["token_file"] or "")
            warning = result.pop("warning")
            if warning:
                module.warn(warning)
        else:
            connection = VaultConnection(module.params, use_session=False)
            for value in connection.auth.secret_values():
                module.register_secret(value)
            result = open_login(connection, module.params["token_file"])
            module.register_secret(getattr(connection.client, "token", None))
    except RotationError as exc:
        module.fail_from(exc)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
