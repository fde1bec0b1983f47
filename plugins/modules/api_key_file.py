#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: api_key_file
short_description: Write an API key kept in Vault into a file an application reads
version_added: 0.1.0
description:
  - Reads the key from a KV v2 secret (O(api_key_from)) and writes it to the file O(path) on the host the task runs on -
    the key alone, an environment file (C(NAME=key)) or a Kubernetes Secret manifest.
  - The file is replaced atomically (a private temporary file in the same directory, then a rename), with its final
    O(mode), O(owner) and O(group) set before the key is written to it. A reader sees the old file or the new one, never
    a part of one. A mode that lets every user of the host read the file is refused.
  - The value is never a task argument, a variable, a result, a message or a diff - only its fingerprint.
  - With O(expected_fingerprint), the module refuses to write a key other than the one meant (for example when another
    run wrote a newer version to Vault in the meantime).
  - The rotate role's deploy target V(file) runs this module after the new key is stored, after a restore and on
    rollback, then the reload command or service restart that makes the application read the file again.
  - The module reads Vault from the host it runs on. The rotate role runs it on the controller (a local connection);
    on another host that host needs hvac, the Vault address and a token.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.attributes
  - apikeys.rotation.deliver
options:
  path:
    description:
      - The file's absolute path. Its directory must exist. A link or a directory there is refused.
    type: path
    required: true
  format:
    description:
      - V(raw) - the key alone, no newline.
      - V(env) - one line C(KEY_NAME=key) (systemd's C(EnvironmentFile=), C(docker run --env-file)). The file holds
        that line only.
      - V(kubernetes_secret) - a Secret manifest (JSON, which any YAML reader reads) with the key under C(data.KEY_NAME)
        and its fingerprint in the annotation C(apikeys.rotation/key-fingerprint), for C(kubectl apply -f) or
        M(kubernetes.core.k8s) O(kubernetes.core.k8s#module:src).
    type: str
    choices: [raw, env, kubernetes_secret]
    default: raw
  key_name:
    description:
      - The variable name (O(format=env)) or the Secret's data key (O(format=kubernetes_secret)), for example
        V(ANTHROPIC_API_KEY).
    type: str
  kubernetes:
    description: The Secret a O(format=kubernetes_secret) manifest describes.
    type: dict
    suboptions:
      name:
        description: The Secret's name.
        type: str
        required: true
      namespace:
        description: The Secret's namespace.
        type: str
        required: true
  mode:
    description:
      - The file's permissions, as a quoted octal string such as V('0640'). A number (an unquoted C(0640) reads as 416)
        is refused. Bits for other users are refused.
    type: raw
    default: "0600"
  owner:
    description: The file's owner (a name or a number); when not set, the owner of the file there, else the user running the task.
    type: str
  group:
    description: The file's group (a name or a number); when not set, the group of the file there, else the user's group.
    type: str
attributes:
  check_mode:
    support: full
    details:
      - Reads the key from Vault and the file, and reports whether the file would change. Writes nothing.
  diff_mode:
    support: full
    details:
      - Shows the fingerprint of the key the file holds and its mode, owner and group, before and after.
  idempotent:
    support: full
    details:
      - A file that holds the same content with the same mode, owner and group is left alone and reported unchanged.
notes:
  - No backup of the former file is kept - a copy of an old key on disk is what a rotation removes. The way back is
    Vault's previous version (the rotate role's rollback).
seealso:
  - module: apikeys.rotation.cloudflare_worker_secret
  - module: apikeys.rotation.api_key_probe
"""

EXAMPLES = r"""
- name: Write the key for a systemd service (EnvironmentFile=/etc/signer/anthropic.env)
  apikeys.rotation.api_key_file:
    path: /etc/signer/anthropic.env
    format: env
    key_name: ANTHROPIC_API_KEY
    owner: root
    group: signer
    mode: "0640"
    api_key_from:
      mount: secret
      path: apps/signer/anthropic
    expected_fingerprint: sha256:0a1b2c3d4e5f
  register: key_file

- name: Make the service read it again
  ansible.builtin.service:
    name: signer
    state: restarted
  when: key_file.changed

- name: A Kubernetes Secret manifest, for kubernetes.core.k8s src
  apikeys.rotation.api_key_file:
    path: /run/apikeys/signer-secret.json
    format: kubernetes_secret
    key_name: ANTHROPIC_API_KEY
    kubernetes:
      name: signer-anthropic
      namespace: signer
    api_key_from:
      path: apps/signer/anthropic
"""

RETURN = r"""
path:
  description: The file written (or, in check mode, that would be written).
  returned: always
  type: str
  sample: /etc/signer/anthropic.env
fingerprint:
  description: The fingerprint of the key the file holds now (or would hold, in check mode).
  returned: always
  type: str
  sample: "sha256:0a1b2c3d4e5f"
previous_fingerprint:
  description: The fingerprint of the key the file held before; null when there was no file or no key in that format.
  returned: always
  type: str
  sample: "sha256:9f8e7d6c5b4a"
version:
  description: The KV version the key was read from; null when O(api_key_from.version) was not set.
  returned: always
  type: int
  sample: 7
mode:
  description: The file's mode now.
  returned: always
  type: str
  sample: "0640"
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.common import checked_fingerprint, fingerprint, vault_ref_spec


def describe(key_fp, attributes):
    if attributes is None:
        return "absent\n"
    mode, uid, gid = attributes
    return "key: %s\nmode: %04o\nowner: %d\ngroup: %d\n" % (key_fp or "(none)", mode, uid, gid)


def write_key(module):
    from ansible_collections.apikeys.rotation.plugins.module_utils import deploy
    from ansible_collections.apikeys.rotation.plugins.module_utils.deploy import files

    params = module.params
    expected = checked_fingerprint(params["expected_fingerprint"], "expected_fingerprint")
    mode = files.parse_mode(params["mode"])
    target = files.KeyFile(params["path"])
    uid, gid = files.owner_ids((params["owner"] or "").strip(), (params["group"] or "").strip())
    key_name = (params["key_name"] or "").strip() or None
    files.content("-", params["format"], key_name, params["kubernetes"], "-")  # the settings, before Vault is read
    ref = params["api_key_from"]
    value, found = deploy.key_to_deliver(module, expected, target.path)
    data = files.content(value, params["format"], key_name, params["kubernetes"], found)
    before = target.current()
    before_key = files.key_in(before, params["format"], key_name) if before is not None else None
    before_fp = fingerprint(before_key) if before_key else None
    if before_key:
        module.no_log_values.add(before_key)
    attributes = target.attributes()
    keep = attributes[1:] if attributes else (os.geteuid(), os.getegid())
    wanted = (mode, keep[0] if uid == -1 else uid, keep[1] if gid == -1 else gid)
    changed = before != data or attributes != wanted
    result = dict(changed=changed, path=target.path, fingerprint=found, previous_fingerprint=before_fp,
                  version=ref.get("version"), mode="%04o" % mode)
    if changed and not module.check_mode:
        target.write(data, *wanted)
    if module._diff:
        result["diff"] = dict(before_header=target.path, before=describe(before_fp, attributes),
                              after_header=target.path, after=describe(found, wanted))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            format=dict(type="str", choices=["raw", "env", "kubernetes_secret"], default="raw"),
            key_name=dict(type="str", no_log=False),
            kubernetes=dict(type="dict", options=dict(name=dict(type="str", required=True),
                                                      namespace=dict(type="str", required=True))),
            mode=dict(type="raw", default="0600"),
            owner=dict(type="str"),
            group=dict(type="str"),
            api_key_from=dict(vault_ref_spec(), required=True),
            expected_fingerprint=dict(type="str", no_log=False),
        ),
        required_if=[("format", "env", ("key_name",)), ("format", "kubernetes_secret", ("key_name", "kubernetes"))],
        supports_check_mode=True,
    )
    from ansible_collections.apikeys.rotation.plugins.module_utils import deploy

    deploy.run(module, write_key)


if __name__ == "__main__":
    main()
