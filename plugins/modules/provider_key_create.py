#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: provider_key_create
short_description: Create a provider API key by name, or adopt a key made in the Anthropic Console
version_added: 0.1.0
description:
  - Makes a new API key named O(name) at OpenAI or OpenRouter and returns its value once, or, for Anthropic (which
    has no API to create keys), adopts the key given in O(api_key) by finding it through the Admin API and renaming it
    to O(name).
  - The name makes a re-run safe. A re-run that finds a key named O(name) never makes a second one. For Anthropic,
    the key named O(name) whose hint matches O(api_key) is simply kept. For OpenAI and OpenRouter the value of an
    existing key cannot be read back (it is shown once), so such a key is an orphan of an interrupted run - the task
    fails, or with O(on_existing=revoke) deletes it and makes a fresh key.
  - Register the result under C(no_log) - RV(api_key) holds the new key value.
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.provider
  - apikeys.rotation.attributes
options:
  name:
    description:
      - Name of the key at the provider. A rotation names its keys C(<prefix>-<rotation_id>).
    type: str
    required: true
  api_key:
    description:
      - With O(provider=anthropic) only, and required there (or O(api_key_from)) - the API key made in the Anthropic Console
        to adopt.
      - It is found through the Admin API by its redacted hint (C(partial_key_hint)) and renamed to O(name).
      - If several keys share the hint, rename the right one to O(name) in the Console first.
    type: str
  api_key_from:
    description:
      - With O(provider=anthropic), instead of O(api_key) - the field of a KV v2 secret that holds the Console-made key
        (for example where it was staged). The module reads it from Vault itself; the value is never a task argument.
      - Vault is reached as for O(stage_in).
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
  stage_in:
    description:
      - Keep the new key's value in this KV v2 secret (a new version holding only the field) instead of returning it
        in RV(api_key). RV(staged_version) names the version. Nothing is staged in check mode.
      - The value then goes from the provider to Vault inside the module and is never a result or a variable; the
        C(apikeys.rotation.rotate) role stages each new key next to its secret (C(<vault_path>.next)).
      - Vault is reached as the environment says (E(VAULT_ADDR), E(VAULT_CACERT), E(VAULT_TOKEN), ...) or with the run's
        login (E(APIKEYS_VAULT_TOKEN_FILE), see M(apikeys.rotation.vault_login)). Needs the Python library hvac.
      - If the key was made but cannot be staged, the task fails with RV(key_id); the key keeps its name, so a run with
        O(on_existing=revoke) deletes it.
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
        description: The field to write the key to.
        type: str
        default: api_key
  record_in:
    description:
      - Keep the rotation record of a KV v2 secret (its C(custom_metadata)) in step with the create, in this one task.
        Needs O(stage_in).
      - Before anything is asked of the provider, O(record_in.custom_metadata) is merged into the secret's
        C(custom_metadata) (keys set to null are removed). If that write fails, nothing is made.
      - Once the key is made and staged, C(pending_key_id) and C(pending_fingerprint) name it there. If that write
        fails, the task fails with RV(key_id); the key keeps its name, so a run with O(on_existing=revoke) deletes it.
      - Vault is reached as for O(stage_in). Nothing is written in check mode.
      - The C(apikeys.rotation.rotate) role records C(stage=creating) and the rotation's id here, so that a run that
        dies after the provider made the key leaves a name the next run finds.
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
      custom_metadata:
        description:
          - The keys to merge into the secret's C(custom_metadata) before the provider is asked (strings, or null to
            remove a key). Unset, nothing is written before.
        type: dict
  on_existing:
    description:
      - What to do when a key named O(name) already exists at OpenAI or OpenRouter.
      - V(fail) stops with a message naming the existing key ids; nothing is changed.
      - V(revoke) deletes the existing keys (their values are lost anyway) and makes a new key. With OpenAI, a service
        account that was created for the orphan (same name, no O(openai_service_account_id)) is deleted with it.
      - Ignored with O(provider=anthropic).
    type: str
    choices: [fail, revoke]
    default: fail
attributes:
  check_mode:
    support: full
    details:
      - Only reads (HTTP GET) are sent; the result tells whether a key would be made or renamed and which orphans would
        be deleted. No key id or value is returned for a key that would be made.
  diff_mode:
    support: full
    details:
      - The diff lists the ids of the keys named O(name) before and after; never a value. With O(record_in), it also shows
        the record's C(custom_metadata) before the task and after it.
  idempotent:
    support: partial
    details:
      - Idempotent per O(name) - a key is never made twice under one name.
      - For Anthropic the second run finds the adopted key and reports no change.
      - For OpenAI and OpenRouter the second run finds the first key, whose value cannot be read again - it fails
        (O(on_existing=fail)) or replaces the key (O(on_existing=revoke)); the rotation gives each attempt a new name.
  action_group:
    description: Use C(group/apikeys.rotation.provider) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - apikeys.rotation.provider
seealso:
  - module: apikeys.rotation.api_key_probe
  - module: apikeys.rotation.provider_key_revoke
  - module: apikeys.rotation.provider_key_info
"""

EXAMPLES = r"""
- name: Create a new OpenRouter key
  apikeys.rotation.provider_key_create:
    provider: openrouter
    name: "chat-{{ rotation_id }}"
  register: new_key
  no_log: true

- name: Create a key for an OpenAI service account; replace a leftover of an interrupted run
  apikeys.rotation.provider_key_create:
    provider: openai
    openai_project_id: proj_abc
    openai_service_account_id: svc_acct_abc
    name: "search-{{ rotation_id }}"
    on_existing: revoke
  register: new_key
  no_log: true

- name: Adopt a key made in the Anthropic Console (admin key from ANTHROPIC_ADMIN_KEY)
  apikeys.rotation.provider_key_create:
    provider: anthropic
    name: "wishlist-{{ rotation_id }}"
    api_key: "{{ console_key }}"
  register: adopted
  no_log: true

- name: Show what was made, without the value
  ansible.builtin.debug:
    msg: "{{ new_key.key_id }} {{ new_key.fingerprint }} {{ new_key.redacted_hint }}"
"""

RETURN = r"""
key_id:
  description: Id of the key (Anthropic C(apikey_...), OpenAI C(key_...), OpenRouter hash). Null in check mode for a key
    that would be made.
  returned: always
  type: str
  sample: key_abc123
name:
  description: The key name at the provider.
  returned: always
  type: str
  sample: search-20260101T000000
fingerprint:
  description: C(sha256:) and the first 12 hex digits of the SHA-256 of the key value.
  returned: always
  type: str
  sample: "sha256:0a1b2c3d4e5f"
redacted_hint:
  description: The provider's redacted form of the key.
  returned: always
  type: str
  sample: sk-or-v1-0a1...f9e
api_key:
  description:
    - The new key value. Register the task under C(no_log).
    - Only when OpenAI or OpenRouter made a key (not in check mode) and O(stage_in) is not set; never for Anthropic,
      where the value is the O(api_key) given.
  returned: when a key was made without O(stage_in)
  type: str
staged_in:
  description: Where the key value was kept (C(<mount>/<path>)).
  returned: when O(stage_in) is set, not in check mode
  type: str
  sample: secret/apps/web/openai.next
staged_version:
  description: The version of O(stage_in) that holds the key.
  returned: when O(stage_in) is set, not in check mode
  type: int
  sample: 3
created_at:
  description: Creation time (RFC 3339).
  returned: always
  type: str
  sample: "2026-01-01T00:00:00Z"
status:
  description: Provider status of the key (V(active), or for an adopted Anthropic key V(inactive) if so).
  returned: always
  type: str
  sample: active
service_account_id:
  description: The OpenAI service account that owns the key.
  returned: with O(provider=openai)
  type: str
  sample: svc_acct_abc
recorded_in:
  description: The secret whose C(custom_metadata) names the new key as C(pending_key_id) (C(<mount>/<path>)).
  returned: when O(record_in) is set, not in check mode
  type: str
  sample: secret/apps/web/openai
orphans_revoked:
  description: Ids of keys named O(name) that were deleted first (O(on_existing=revoke)), or would be in check mode.
  returned: always
  type: list
  elements: str
  sample: []
answered_at:
  description:
    - When the provider's answer that made (or, for Anthropic, renamed) the key came, in seconds since the epoch, by the
      clock of the host that ran the module (the controller for a task on it, which is how the C(rotate) role times how
      long a new key took to authenticate). Null in check mode.
  returned: always
  type: float
  sample: 1767225600.25
http:
  description: Requests sent, retries made and seconds spent waiting between retries.
  returned: always
  type: dict
  sample: {"requests": 2, "retries": 0, "retry_wait": 0.0}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, vault_ref_spec
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, run_module
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import provider_argument_spec

GONE = ("deleted", "archived", "expired")


def create(module, provider):
    params = module.params
    name = (params["name"] or "").strip()
    if not name:
        raise RotationError("name must not be empty")
    check = module.check_mode
    orphans = []
    staging = recording = None
    if params["record_in"] is not None and params["stage_in"] is None:
        raise RotationError("record_in needs stage_in: a key is recorded as pending only once its value is kept in Vault")
    if params["stage_in"] is not None and not check:
        # Vault is reached (and its mount checked) before anything is made at the provider
        from ansible_collections.apikeys.rotation.plugins.module_utils.vault import open_ref

        staging = open_ref("stage_in", params["stage_in"])
        if params["record_in"] is not None:
            recording = record_before(staging, params["record_in"])
    if params["api_key_from"] is not None:
        if provider.capabilities.can_create:
            raise RotationError("api_key_from is only for providers that cannot create keys by API (anthropic); "
                                "provider=%s makes the key itself: leave api_key_from unset" % provider.name)
        from ansible_collections.apikeys.rotation.plugins.module_utils.vault import read_ref

        params["api_key"] = read_ref("api_key_from", params["api_key_from"])
        module.no_log_values.add(params["api_key"])
    if provider.capabilities.can_create:
        if params["api_key"] is not None:
            raise RotationError("api_key is only for providers that cannot create keys by API (anthropic); "
                                "provider=%s makes the key itself: leave api_key unset" % provider.name)
        existing = [r for r in provider.find(name=name) if r.status not in GONE]
        if existing and params["on_existing"] == "fail":
            raise RotationError(
                "%d key(s) named %r already exist at %s (%s). Their value was shown only once and cannot be returned: "
                "they are left over from an interrupted run. Set on_existing=revoke to delete them and make a new key, "
                "or use another name" % (len(existing), name, provider.display_name, ", ".join(r.id for r in existing)),
                key_ids=[r.id for r in existing])
        for record in existing:
            if not check:
                provider.remove_orphan(record, name)
            orphans.append(record.id)
        if check:
            return {"changed": True, "key_id": None, "name": name, "fingerprint": None, "redacted_hint": None,
                    "created_at": None, "status": None, "orphans_revoked": orphans, "answered_at": None,
                    "diff": {"before": {"name": name, "key_ids": orphans}, "after": {"name": name, "key_ids": ["(new key)"]}}}
        created = provider.create(name)
    else:
        if not params["api_key"]:
            raise RotationError("provider=%s cannot create keys by API: make the key in the %s Console and pass it as "
                                "api_key; it is then renamed to %r" % (provider.name, provider.display_name, name))
        created = provider.adopt(params["api_key"], name, check_mode=check)
    answered_at = None if check else time.time()
    record = created.record
    result = {
        "changed": created.changed or bool(orphans),
        "key_id": record.id,
        "name": record.name,
        "fingerprint": created.fingerprint,
        "redacted_hint": record.redacted_hint,
        "created_at": record.created_at,
        "status": record.status,
        "orphans_revoked": orphans,
        "answered_at": answered_at,
        "diff": {"before": {"name": name, "key_ids": orphans if provider.capabilities.can_create
                            else ([] if created.changed else [record.id])},
                 "after": {"name": name, "key_ids": [record.id]}},
    }
    value = created.value if provider.capabilities.can_create else params["api_key"]
    if staging is not None:
        result.update(stage(module, staging, params["stage_in"], value, record, name, provider))
        if recording is not None:
            kv, before = recording
            between, after = record_after(kv, record, created.fingerprint, name, provider)
            result["recorded_in"] = kv.name
            # the record's custom_metadata before this task and after it (ids, fingerprints, stage; never a value)
            result["diff"]["before"]["record"] = between if before is None else before
            result["diff"]["after"]["record"] = after
    elif provider.capabilities.can_create:
        result["api_key"] = created.value
    if "service_account_id" in record.extra:
        result["service_account_id"] = record.extra["service_account_id"]
    return result


def stage(module, staging, ref, value, record, name, provider):
    """Keep the key value in Vault at ``stage_in``: it never becomes a result or a variable."""
    from ansible_collections.apikeys.rotation.plugins.module_utils.vault import write_ref

    module.no_log_values.add(value)
    try:
        version = write_ref(staging, ref, value)
    except RotationError as exc:
        raise RotationError("The key %s was made at %s, but keeping it in Vault at stage_in failed: %s The key stays "
                            "named %r, so a run with on_existing=revoke deletes it before making another."
                            % (record.id, provider.display_name, exc, name), key_id=record.id, changed=True)
    return {"staged_in": "%s/%s" % ((ref.get("mount") or "secret").strip("/"), ref["path"].strip("/")),
            "staged_version": version}


def record_before(staging, ref):
    """The secret that keeps the rotation record (on staging's connection), ``custom_metadata`` merged in first."""
    from ansible_collections.apikeys.rotation.plugins.module_utils.vault import KV2Secret, write_secret

    before = None
    try:
        kv = KV2Secret(staging.connection, ref.get("mount") or "secret", ref["path"])
        kv.ensure_kv2()
        if ref.get("custom_metadata") is not None:
            before = write_secret(kv, custom_metadata=ref["custom_metadata"])["diff"]["before"]["custom_metadata"]
    except RotationError as exc:
        raise RotationError("record_in: %s Nothing was made at the provider." % exc, **exc.details)
    return kv, before


def record_after(kv, record, fingerprint, name, provider):
    """Name the new key (id and fingerprint, never its value) as pending in the record."""
    from ansible_collections.apikeys.rotation.plugins.module_utils.vault import write_secret

    try:
        written = write_secret(kv, custom_metadata={"pending_key_id": record.id, "pending_fingerprint": fingerprint})
    except RotationError as exc:
        raise RotationError("The key %s was made at %s and kept in Vault, but recording it in %s failed: %s The key "
                            "stays named %r, so a run with on_existing=revoke deletes it before making another."
                            % (record.id, provider.display_name, kv.name, exc, name), key_id=record.id, changed=True)
    return written["diff"]["before"]["custom_metadata"], written["diff"]["after"]["custom_metadata"]


def main():
    argument_spec = provider_argument_spec(PROVIDER_NAMES)
    argument_spec.update(
        name=dict(type="str", required=True),
        api_key=dict(type="str", no_log=True),
        api_key_from=vault_ref_spec(),
        stage_in=vault_ref_spec(version=False),
        record_in=dict(type="dict", no_log=False, options=dict(
            mount=dict(type="str", default="secret"),
            path=dict(type="str", required=True),
            custom_metadata=dict(type="dict"),
        )),
        on_existing=dict(type="str", choices=["fail", "revoke"], default="fail"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("api_key", "api_key_from")])
    run_module(module, create)


if __name__ == "__main__":
    main()
