# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The Vault / OpenBao connection and authentication options, shared by every Vault module."""

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Address of the Vault or OpenBao server, for example V(https://vault.example.com:8200).
      - Required, here or through the environment.
      - If not set, the environment variable E(VAULT_ADDR) is used.
    type: str
  token:
    description:
      - Vault token used when O(auth_method=token).
      - If not set, the environment variable E(VAULT_TOKEN) is used, then the content of the file named by E(VAULT_TOKEN_FILE).
      - When the environment variable E(APIKEYS_VAULT_TOKEN_FILE) names a file, the token in it is used whatever
        O(auth_method) says, and the module does not log in. M(apikeys.rotation.vault_login) writes that file, once per
        key and run, and the C(apikeys.rotation.rotate) role sets the variable for its tasks.
      - The token is not looked up before use (a token without the C(default) policy cannot look itself up although it
        works); an invalid token shows as a permission error on the first request.
    type: str
  namespace:
    description:
      - Vault Enterprise or OpenBao namespace to work in.
      - If not set, the environment variable E(VAULT_NAMESPACE) is used.
    type: str
  ca_cert:
    description:
      - Path of a PEM file with the CA certificate(s) that signed the server's TLS certificate.
      - If not set, the environment variable E(VAULT_CACERT) is used.
    type: path
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate. Set to V(false) only for throw-away test servers.
      - Ignored when O(ca_cert) is set (the certificate is then verified against that CA).
    type: bool
    default: true
  auth_method:
    description:
      - How to log in.
      - V(token) uses O(token) as it is.
      - V(approle) logs in with O(role_id) and O(secret_id) at the AppRole auth method mounted at O(auth_mount_point).
      - V(jwt) logs in with O(jwt) as role O(role) at the JWT auth method mounted at O(auth_mount_point)
        (for example a CI job's identity token).
      - If not set, the environment variable E(VAULT_AUTH_METHOD) is used, else V(token).
    type: str
    choices: [token, approle, jwt]
    default: token
  auth_mount_point:
    description:
      - Path where the auth method is mounted, without the C(auth/) prefix.
      - Defaults to V(approle) for O(auth_method=approle) and V(jwt) for O(auth_method=jwt).
      - If not set, the environment variable E(VAULT_AUTH_MOUNT_POINT) is used.
    type: str
  role_id:
    description:
      - AppRole role ID, for O(auth_method=approle). Not a secret.
      - If not set, the environment variable E(VAULT_ROLE_ID) is used.
    type: str
  secret_id:
    description:
      - AppRole secret ID, for O(auth_method=approle).
      - If not set, the environment variable E(VAULT_SECRET_ID) is used, then the content of the file named by E(VAULT_SECRET_ID_FILE).
    type: str
  jwt:
    description:
      - The JSON Web Token to log in with, for O(auth_method=jwt).
      - If not set, the environment variable E(VAULT_JWT) is used, then the content of the file named by E(VAULT_JWT_FILE).
    type: str
  role:
    description:
      - Name of the JWT auth role to log in as, for O(auth_method=jwt).
      - If not set, the environment variable E(VAULT_JWT_ROLE) is used.
    type: str
  timeout:
    description:
      - Seconds to wait for each answer from the server.
    type: float
    default: 30
  retries:
    description:
      - How many more times to send a request that got HTTP 412 (a replica not yet consistent), 429, 500, 502,
        503 (except a sealed server) or 504, or whose connection was refused or reset.
      - Waits 0.25, 0.5, 1, then 2 seconds between attempts. V(0) disables retries.
      - A request that timed out is not sent again.
    type: int
    default: 3
notes:
  - Connection options can be set once for all Vault modules of a play with
    C(module_defaults) and the action group C(group/apikeys.rotation.vault).
  - Every failure (unreachable server, sealed server, permission denied, missing or KV version 1 mount,
    check-and-set conflict, failed login) ends the task with a message that says what failed and what to do,
    without a traceback and without any secret value.
requirements:
  - hvac (Python library; tested with 2.4)
"""

    # The secret a module reads or writes (every Vault module but vault_login).
    SECRET = r"""
options:
  mount:
    description:
      - Path where the KV version 2 secrets engine is mounted.
      - A KV version 1 mount is refused with a clear message.
    type: str
    default: secret
  path:
    description:
      - Path of the secret below O(mount), for example V(apps/web/openai).
    type: str
    required: true
"""

    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/apikeys.rotation.vault) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - apikeys.rotation.vault
"""
