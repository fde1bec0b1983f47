# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clients for the places applications read their key from (the rotate role's deploy targets)."""

from __future__ import annotations

import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint, fingerprints_match


def key_to_deliver(module: t.Any, expected: str, where: str) -> t.Tuple[str, str]:
    """The key ``api_key_from`` names and its fingerprint, refused when it is not the ``expected`` one.

    The value joins the module's no_log values at once, so no result or error can show it.
    ``where`` names what was left untouched (``the Worker``, ``/etc/app.env``).
    """
    from ansible_collections.apikeys.rotation.plugins.module_utils.vault import read_ref

    ref = module.params["api_key_from"]
    value = read_ref("api_key_from", ref)
    module.no_log_values.add(value)
    found = fingerprint(value) or ""
    if expected and not fingerprints_match(expected, found):
        raise RotationError("api_key_from: %s/%s%s holds the key %s, not the expected %s: another run may have "
                            "written Vault since. Nothing was written to %s"
                            % (ref["mount"], ref["path"], " version %d" % ref["version"] if ref.get("version") else "",
                               found, expected, where))
    return value, found


def run(module: t.Any, action: t.Callable[[t.Any], t.Dict[str, t.Any]]) -> None:
    """Exit the module with what ``action(module)`` returns, or fail with its RotationError (changed false)."""
    try:
        result = action(module)
    except RotationError as exc:
        details = dict(exc.details)
        details.setdefault("changed", False)
        module.fail_json(msg=str(exc), **details)
    module.exit_json(**result)
