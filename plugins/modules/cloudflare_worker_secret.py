#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_worker_secret
short_description: Write an API key kept in Vault into a Cloudflare Worker's secret
version_added: 0.1.0
description:
  - Reads the key from a KV v2 secret (O(api_key_from)) and writes it as the secret O(secret_name) of the Worker script
    O(script_name) - C(PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets). Cloudflare deploys the Worker
    with the new secret at once; the Worker's key health endpoint then shows when its code serves it.
  - The value is never a task argument, a variable, a result or a message - only its fingerprint.
  - With O(expected_fingerprint), the module refuses to write a key other than the one meant (for example when another
    run wrote a newer version to Vault in the meantime).
  - The rotate role's deploy target V(cloudflare_worker_secret) runs this module after the new key is stored, after a
    restore and on rollback.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.attributes
  - apikeys.rotation.deliver
options:
  account_id:
    description: The Cloudflare account id (32 hex digits) the Worker belongs to.
    type: str
    required: true
  script_name:
    description: The Worker's name. The Worker must exist (its code deployed) before a secret can be written to it.
    type: str
    required: true
  secret_name:
    description: The name of the secret binding the Worker's code reads, for example V(ANTHROPIC_API_KEY).
    type: str
    required: true
  api_token:
    description:
      - A Cloudflare API token with the permission C(Workers Scripts - Edit) on the account.
      - Falls back to E(CLOUDFLARE_API_TOKEN), then to the file named by E(CLOUDFLARE_API_TOKEN_FILE) (an AWX
        credential's file, for example).
    type: str
  base_url:
    description:
      - The Cloudflare API's base URL. Falls back to E(CLOUDFLARE_API_BASE_URL), then
        V(https://api.cloudflare.com/client/v4).
      - Must be V(https://), except on this host's loopback address or with O(allow_insecure_http).
    type: str
  allow_insecure_http:
    description: Accept a plain V(http://) O(base_url) on another host than loopback. The token would travel in clear.
    type: bool
    default: false
  validate_certs:
    description: Verify the TLS certificate of O(base_url).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 30
  retries:
    description:
      - How often to retry a request that met a network error, 429 or 5xx. Writing a secret is idempotent, so a write
        is retried too.
    type: int
    default: 3
  max_retry_wait:
    description: The longest wait between two attempts, in seconds (a longer C(Retry-After) fails the task).
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    details:
      - Reads the key from Vault and lists the Worker's secrets (which proves the token, the account and the Worker), and
        writes nothing. Reports a change, as the real run would.
  diff_mode:
    support: full
    details:
      - Shows the secret's name, whether the Worker binds it already and the fingerprint it will hold.
  idempotent:
    support: partial
    details:
      - Cloudflare never returns a secret's value, so the module cannot tell whether the secret already holds this key
        and writes it on every run (reported as a change). Writing the same key again is harmless - the Worker serves the same
        key - but makes a new deployment of the Worker.
seealso:
  - module: apikeys.rotation.api_key_probe
  - name: Workers secrets API
    description: Cloudflare's API reference for Worker script secrets.
    link: https://developers.cloudflare.com/api/resources/workers/subresources/scripts/subresources/secrets/
"""

EXAMPLES = r"""
- name: Deliver the key Vault holds to the Worker
  apikeys.rotation.cloudflare_worker_secret:
    account_id: 023e105f4ecef8ad9ca31a8372d0c353
    script_name: signer
    secret_name: ANTHROPIC_API_KEY
    api_key_from:
      mount: secret
      path: apps/signer/anthropic
      version: 7
    expected_fingerprint: sha256:0a1b2c3d4e5f
  environment:
    CLOUDFLARE_API_TOKEN_FILE: /run/secrets/cloudflare-token

- name: Then wait until the Worker serves it
  apikeys.rotation.api_key_probe:
    health_url: https://signer.example.workers.dev/healthz/key
    expected_fingerprint: sha256:0a1b2c3d4e5f
  register: worker
  until: worker.live
  retries: 30
  delay: 2
"""

RETURN = r"""
fingerprint:
  description: The fingerprint of the key written (or, in check mode, that would be written).
  returned: always
  type: str
  sample: "sha256:0a1b2c3d4e5f"
secret_name:
  description: The secret written.
  returned: always
  type: str
  sample: ANTHROPIC_API_KEY
script_name:
  description: The Worker.
  returned: always
  type: str
  sample: signer
version:
  description: The KV version the key was read from; null when O(api_key_from.version) was not set.
  returned: always
  type: int
  sample: 7
bound_before:
  description: Whether the Worker bound a secret of that name before; null when not known (the write was not preceded
    by a listing).
  returned: always
  type: bool
  sample: true
http:
  description: Requests sent to Cloudflare, retries made and seconds spent waiting between retries.
  returned: always
  type: dict
  sample: {"requests": 1, "retries": 0, "retry_wait": 0.0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.common import checked_fingerprint, vault_ref_spec


def deliver(module):
    from ansible_collections.apikeys.rotation.plugins.module_utils import deploy
    from ansible_collections.apikeys.rotation.plugins.module_utils.deploy import cloudflare

    params = module.params
    expected = checked_fingerprint(params["expected_fingerprint"], "expected_fingerprint")
    workers = cloudflare.connect(params)
    try:
        ref = params["api_key_from"]
        value, found = deploy.key_to_deliver(module, expected, "the Worker")
        secret_name = params["secret_name"].strip()
        result = dict(changed=True, fingerprint=found, secret_name=secret_name, script_name=params["script_name"].strip(),
                      version=ref.get("version"), bound_before=None)
        if module.check_mode or module._diff:
            result["bound_before"] = secret_name in workers.names()
        if module._diff:
            before = "%s: %s\n" % (secret_name, "bound (Cloudflare never shows its value)" if result["bound_before"]
                                   else "not bound")
            result["diff"] = dict(before_header="worker %s" % result["script_name"], before=before,
                                  after_header="worker %s" % result["script_name"],
                                  after="%s: %s\n" % (secret_name, found))
        if not module.check_mode:
            workers.put(secret_name, value)
        result["http"] = dict(workers.client.stats)
        return result
    finally:
        workers.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            account_id=dict(type="str", required=True),
            script_name=dict(type="str", required=True),
            secret_name=dict(type="str", required=True, no_log=False),
            api_key_from=dict(vault_ref_spec(), required=True),
            expected_fingerprint=dict(type="str", no_log=False),
            api_token=dict(type="str", no_log=True),
            base_url=dict(type="str"),
            allow_insecure_http=dict(type="bool", default=False),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="float", default=30.0),
            retries=dict(type="int", default=3),
            max_retry_wait=dict(type="float", default=30.0),
        ),
        supports_check_mode=True,
    )
    from ansible.module_utils.basic import missing_required_lib
    from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import HAS_HTTPX, HTTPX_IMPORT_ERROR

    if not HAS_HTTPX:
        module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)
    from ansible_collections.apikeys.rotation.plugins.module_utils import deploy

    deploy.run(module, deliver)


if __name__ == "__main__":
    main()
