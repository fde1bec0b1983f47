#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_lease
short_description: Take, renew or release a key's lease in Vault or OpenBao, with check-and-set
version_added: 0.1.0
description:
  - One run at a time changes a key. The lease is a KV version 2 secret of its own (O(mount)/O(path)) whose data
    names the run holding it and when it expires. It never holds a key value, so this module's results carry it.
  - O(state=taken) reads the lease, decides whether this run may take it, takes it with check-and-set against the
    version read (V(0) when there is none), then reads the secret O(secret_mount)/O(secret_path) again and compares
    it with what the plan read (O(planned)). Of two runs that find the lease free exactly one gets it.
  - A lease is free (none, or released), V(expired) (past its expiry), V(broken) (O(break_owner) names its owner),
    V(dead_holder) (held by a run on this same controller, since its last boot, whose process is gone) or held. The
    task fails when it is held, when another run took it at the same moment, and when the secret changed since the
    plan read it; the message says who holds the lease and how to go on. Nothing is written then.
  - O(state=renewed) writes the lease O(held) again with a new expiry, with check-and-set against the version it
    holds, and fails when another run took it over meanwhile.
  - O(state=released) gives the lease O(held) back, with check-and-set. With O(dead_only=true) and no O(held), it
    releases the lease only when its holder is provably dead (a run with nothing to do clears a dead run's lease).
  - Whether a holder is dead is decided only where the module runs on the controller that O(holder) names; anywhere
    else every holder counts as alive and its lease is waited for until it expires.
  - 'The token needs V(read), V(create) and V(update) on V(<mount>/data/<path>) and V(read) on
    V(<mount>/metadata/<path>); with O(state=taken), V(read) on the data and metadata of O(secret_path).'
author:
  - apikeys.rotation maintainers (@apikeys)
extends_documentation_fragment:
  - apikeys.rotation.vault
  - apikeys.rotation.vault.secret
  - apikeys.rotation.vault.action_group
  - apikeys.rotation.attributes
options:
  state:
    description: What to do with the lease.
    type: str
    required: true
    choices: [taken, renewed, released]
  owner:
    description: This run's id, written into the lease (O(state=taken)).
    type: str
  host:
    description: The key the lease guards (the inventory host), written into the lease and named in messages.
    type: str
    required: true
  job:
    description: The AWX / Automation Platform job id, written into the lease (O(state=taken)).
    type: str
    default: ''
  holder:
    description:
      - This run's identity, written into the lease so that a later run on the same controller can prove it dead.
      - C(controller) (host name), C(boot_id), C(pid) (the C(ansible-playbook) process) and C(pid_start) (its start
        time in clock ticks), as the C(apikeys.rotation.lease_holder) filter gives them on the controller.
    type: dict
    default: {}
  ttl_seconds:
    description: How long the lease lasts after each write, in seconds (O(state=taken) and O(state=renewed)).
    type: int
    default: 900
  ttl:
    description: The lease's length as the user set it (for example V(15m)), named in messages.
    type: str
    default: ''
  break_owner:
    description: Take the lease over at once when this run id holds it (O(state=taken)).
    type: str
    default: ''
  secret_mount:
    description: The mount of the secret the lease guards (O(state=taken)).
    type: str
    default: secret
  secret_path:
    description: The path of the secret the lease guards, read again once the lease is held (O(state=taken)).
    type: str
  planned:
    description:
      - What the plan read of that secret, as M(apikeys.rotation.vault_secret_info) returned it (O(state=taken)).
      - The current version, the record's C(stage) and C(rotation_id) and the key's fingerprint must still be the
        same, or the task fails.
    type: dict
    default: {}
  accept_rotated:
    description:
      - With O(state=taken), a secret that another run finished rotating meanwhile (no stage, a new
        C(rotated_at)) is not a failure; RV(outcome) is then V(already_rotated).
    type: bool
    default: false
  held:
    description:
      - The lease this run holds, as the last O(state=taken) or O(state=renewed) task of this module returned it
        (O(state=renewed) and O(state=released)).
    type: dict
  step:
    description: The step the lease is renewed before, written into the lease and named in messages (O(state=renewed)).
    type: str
    default: ''
  rotation_id:
    description: The rotation's id, named in messages (O(state=renewed)).
    type: str
    default: ''
  note:
    description: Appended to the message of a renewal that fails (O(state=renewed)).
    type: str
    default: ''
  dead_only:
    description:
      - With O(state=released) and no O(held), release the lease only when its holder is provably dead, whoever
        owns it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details:
      - Does the same reads and makes the same decision (a held lease still fails), but writes nothing; RV(version)
        is then V(null) for O(state=taken).
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - A lease this run holds is not taken twice; each renewal writes a new version.
notes:
  - The C(apikeys.rotation.rotate) role takes the lease after its read-only plan and holds it to the end of the run.
seealso:
  - module: apikeys.rotation.vault_secret_write
"""

EXAMPLES = r"""
- name: Take the key's lease (fails when another run holds it)
  apikeys.rotation.vault_lease:
    state: taken
    path: apps/web/openai.lock
    owner: "{{ run_id }}"
    host: "{{ inventory_hostname }}"
    holder: "{{ none | apikeys.rotation.lease_holder }}"
    ttl_seconds: 900
    secret_path: apps/web/openai
    planned: "{{ planned_secret }}"
  register: lease

- name: Renew it before a step that must not run twice at once
  apikeys.rotation.vault_lease:
    state: renewed
    path: apps/web/openai.lock
    host: "{{ inventory_hostname }}"
    held: "{{ lease }}"
    step: retire
  register: lease

- name: Give it back
  apikeys.rotation.vault_lease:
    state: released
    path: apps/web/openai.lock
    host: "{{ inventory_hostname }}"
    held: "{{ lease }}"
"""

RETURN = r"""
outcome:
  description: With O(state=taken), V(taken) or V(already_rotated) (see O(accept_rotated)).
  returned: success, with O(state=taken) and O(state=renewed)
  type: str
  sample: taken
version:
  description: The lease's version this run holds (after a release, the released version); V(null) in check mode.
  returned: success
  type: int
  sample: 7
lease:
  description: The lease's data as written (or, when nothing was released, as read). Never a key value.
  returned: success
  type: dict
  sample: {"state": "held", "owner": "20260101T000000Z-1a2b3c4d", "expires_epoch": "1767226500"}
written_epoch:
  description: The time the lease's expiry is counted from (seconds since the epoch), noted before the write.
  returned: success, with O(state=taken) and O(state=renewed)
  type: float
  sample: 1767225600.5
owner:
  description: This run's id.
  returned: success, with O(state=taken) and O(state=renewed)
  type: str
  sample: 20260101T000000Z-1a2b3c4d
taken_over_from:
  description: The run whose lease was taken over (expired, broken or its holder dead); empty when it was free.
  returned: success, with O(state=taken) and O(state=renewed)
  type: str
  sample: ''
decision:
  description: The decision, with C(outcome) (V(free), V(expired), V(broken), V(dead_holder)), C(take) and C(holder).
  returned: success, with O(state=taken) and O(state=renewed)
  type: dict
seen:
  description: The lease as read before it was taken, with its C(version).
  returned: success, with O(state=taken) and O(state=renewed)
  type: dict
secret:
  description: The guarded secret read again under the lease, as M(apikeys.rotation.vault_secret_info) returns it.
  returned: success, with O(state=taken) and O(state=renewed)
  type: dict
released:
  description: Whether the lease was released.
  returned: success, with O(state=released)
  type: bool
  sample: true
lease_error:
  description:
    - On failure, why the lease was not taken or kept. V(held) (another run holds it), V(cas_conflict) (another run
      took it at the same moment), V(changed) (the secret changed since the plan read it), V(already_rotated),
      V(lost) (another run took a renewal's lease over), V(not_held) or V(vault) (the write failed).
  returned: failure
  type: str
  sample: held
vault_error:
  description: On failure, what went wrong (see M(apikeys.rotation.vault_secret_write) for the list).
  returned: failure
  type: str
  sample: permission_denied
"""

from ansible_collections.apikeys.rotation.plugins.module_utils import lease, rotation
from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import (
    KV2Secret, VaultModule, normalize_mount, normalize_path)


def run(module: VaultModule) -> dict:
    params = module.params
    kv = module.kv_secret()
    holder = rotation.Holder.from_lease(params["holder"])
    if params["state"] == "taken":
        secret = KV2Secret(kv.connection, normalize_mount(params["secret_mount"]), normalize_path(params["secret_path"]))
        return lease.take(kv, secret, params["planned"], params["owner"], params["host"], params["job"], holder,
                          params["ttl_seconds"], params["break_owner"], params["accept_rotated"], module.check_mode)
    if params["state"] == "renewed":
        return lease.renew(kv, params["held"], params["host"], params["ttl_seconds"], params["ttl"], params["step"],
                           params["rotation_id"], params["note"], module.check_mode)
    if params["held"] is None:
        return lease.release_dead(kv, params["host"], holder, module.check_mode)
    return lease.release(kv, params["held"], params["host"], module.check_mode)


def main() -> None:
    module = VaultModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["taken", "renewed", "released"]),
            owner=dict(type="str"),
            host=dict(type="str", required=True),
            job=dict(type="str", default=""),
            holder=dict(type="dict", default={}),
            ttl_seconds=dict(type="int", default=900),
            ttl=dict(type="str", default=""),
            break_owner=dict(type="str", default="", no_log=False),
            secret_mount=dict(type="str", default="secret", no_log=False),
            secret_path=dict(type="str", no_log=False),
            planned=dict(type="dict", default={}),
            accept_rotated=dict(type="bool", default=False),
            held=dict(type="dict"),
            step=dict(type="str", default=""),
            rotation_id=dict(type="str", default=""),
            note=dict(type="str", default=""),
            dead_only=dict(type="bool", default=False),
        ),
        required_if=[("state", "taken", ("owner", "secret_path")), ("state", "renewed", ("held",))],
        supports_check_mode=True,
    )
    if module.params["state"] == "released" and module.params["held"] is None and not module.params["dead_only"]:
        module.fail_json(msg="state=released needs held (the lease this run holds), or dead_only=true to release only "
                             "a lease whose holder is provably dead.", vault_error="invalid_input")
    try:
        result = run(module)
    except RotationError as exc:  # a LeaseError too: lease_error says why
        module.fail_from(exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
