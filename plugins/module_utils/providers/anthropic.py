# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Anthropic: Admin API keys (list, get, rename, status) and the zero-token probe.

Private to the apikeys.rotation collection. Anthropic has no API that creates
or deletes an API key: a key made in the Console is *adopted* (found by its
``partial_key_hint`` and renamed), ``disabled`` is ``inactive`` and ``deleted``
is ``archived`` (final).
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import (
    Capabilities,
    CreatedKey,
    KeyRecord,
    Provider,
    StatusChange,
    hint_matches,
)

API_VERSION = "2023-06-01"
KEYS_PATH = "/v1/organizations/api_keys"
PAGE_LIMIT = 1000
FINAL_STATUSES = ("archived", "expired")


class AnthropicProvider(Provider):
    name = "anthropic"
    display_name = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    base_url_env = "ANTHROPIC_BASE_URL"
    admin_key_env = "ANTHROPIC_ADMIN_KEY"
    probe_path = "/v1/models?limit=1"
    key_pattern = re.compile(r"^sk-ant-api\d{2}-[A-Za-z0-9_\-]{20,}$")
    key_format = "sk-ant-api03- followed by 95 letters, digits, '-' or '_' (an API key made in the Anthropic Console)"
    capabilities = Capabilities(can_create=False, can_disable=True, can_delete=True)
    state_map = {"active": "active", "disabled": "inactive", "deleted": "archived"}

    def auth_headers(self, key: str) -> t.Dict[str, str]:
        return {"x-api-key": key, "anthropic-version": API_VERSION}

    def redact(self, api_key: str) -> str:
        match = re.match(r"^(sk-ant-[a-z]+\d{2}-)", api_key)
        prefix = match.group(1) if match else ""
        rest = api_key[len(prefix):]
        return "%s%s...%s" % (prefix, rest[:3], api_key[-4:])

    @staticmethod
    def record(data: t.Mapping[str, t.Any]) -> KeyRecord:
        """A key object. Keys of the Default Workspace have ``workspace_id: null``; organisation-scoped keys have no
        workspace; ``partial_key_hint``, ``created_by`` and ``expires_at`` may be null."""
        scope = data.get("scope") if isinstance(data.get("scope"), dict) else {}
        # ``scope.workspace_id`` names the workspace even for the Default Workspace, whose ``workspace_id`` is null.
        workspace = scope.get("workspace_id") or data.get("workspace_id")
        return KeyRecord(data.get("id"), data.get("name"), data.get("status") or "active", data.get("created_at"),
                         data.get("partial_key_hint") or None, workspace_id=workspace,
                         scope=scope.get("type"), expires_at=data.get("expires_at"))

    # -- reads --------------------------------------------------------------

    def _get(self, key_id: str) -> t.Optional[KeyRecord]:
        resp = self.admin("GET", "%s/%s" % (KEYS_PATH, key_id), "reading API key %s" % key_id, ok=(200, 404))
        if resp.status == 404:
            return None
        return self.record(resp.body)

    def list_keys(self) -> t.List[KeyRecord]:
        records: t.List[KeyRecord] = []
        params: t.Dict[str, t.Any] = {"limit": PAGE_LIMIT}
        workspace = self.options.get("anthropic_workspace_id")
        if workspace:
            params["workspace_id"] = workspace
        seen = set()
        while True:
            resp = self.admin("GET", KEYS_PATH, "listing API keys", collection=True, params=dict(params))
            body = resp.body if isinstance(resp.body, dict) else {}
            for item in body.get("data") or []:
                records.append(self.record(item))
            last_id = body.get("last_id")
            if not body.get("has_more") or not last_id or last_id in seen:
                return records
            seen.add(last_id)
            params["after_id"] = last_id

    def find(self, name: t.Optional[str] = None, key_id: t.Optional[str] = None) -> t.List[KeyRecord]:
        if key_id:
            found = self._get(key_id)
            records = [found] if found else []
        else:
            records = self.list_keys()
        if name is not None:
            records = [r for r in records if r.name == name]
        return records

    # -- adopt --------------------------------------------------------------

    def adopt(self, api_key: str, name: str, check_mode: bool = False) -> CreatedKey:
        """Find the Console-made ``api_key`` by its hint and give it ``name``; a key already so named is kept."""
        api_key = self.validate_key(api_key)
        fp = fingerprint(api_key)
        hint = self.redact(api_key)
        listed = self.list_keys()
        matching = [r for r in listed if hint_matches(r.redacted_hint, api_key)]
        usable = [r for r in matching if r.status not in FINAL_STATUSES]
        named = [r for r in usable if r.name == name]
        if len(named) == 1:
            return CreatedKey(named[0], api_key, changed=False)
        if len(named) > 1:
            raise RotationError(
                "%d Anthropic keys are named %r and match the hint %s of api_key (fingerprint %s): %s. Cannot tell "
                "which one is this key; archive or rename the others in the Anthropic Console"
                % (len(named), name, hint, fp, ", ".join(r.id for r in named)),
                provider=self.name, fingerprint=fp, key_ids=[r.id for r in named])
        if not usable:
            final = [r for r in matching if r.status in FINAL_STATUSES]
            if final:
                raise RotationError(
                    "the Anthropic key matching api_key (fingerprint %s, hint %s) is %s: it can no longer be used; "
                    "make a new key in the Anthropic Console" % (fp, hint, final[0].status),
                    provider=self.name, fingerprint=fp, key_ids=[r.id for r in final])
            where = " in workspace %s" % self.options.get("anthropic_workspace_id") \
                if self.options.get("anthropic_workspace_id") else ""
            hintless = [r.id for r in listed if not r.redacted_hint and r.status not in FINAL_STATUSES]
            unmatched = (" %d key%s listed carr%s no partial_key_hint and cannot be matched by hint (%s): a key "
                         "without a hint is known only by its id." % (
                             len(hintless), "" if len(hintless) == 1 else "s", "ies" if len(hintless) == 1 else "y",
                             ", ".join(hintless[:10]))) if hintless else ""
            raise RotationError(
                "no Anthropic API key%s has the hint %s of api_key (fingerprint %s): cannot tell which key it is.%s "
                "Check that the key was made in the organization of the admin key (and in anthropic_workspace_id, "
                "if set)" % (where, hint, fp, unmatched), provider=self.name, fingerprint=fp, hintless_key_ids=hintless)
        if len(usable) > 1:
            raise RotationError(
                "%d Anthropic API keys share the hint %s of api_key (fingerprint %s): %s. Cannot tell which one is "
                "this key; rename it to %r in the Anthropic Console and run again (a key with that name and hint is "
                "adopted as is)" % (len(usable), hint, fp, ", ".join("%s (%s)" % (r.id, r.name) for r in usable), name),
                provider=self.name, fingerprint=fp, key_ids=[r.id for r in usable])
        target = usable[0]
        if check_mode:
            renamed = KeyRecord(target.id, name, target.status, target.created_at, target.redacted_hint,
                                **target.extra)
            return CreatedKey(renamed, api_key, changed=True)
        resp = self.admin("POST", "%s/%s" % (KEYS_PATH, target.id), "renaming API key %s" % target.id,
                          json_body={"name": name})
        return CreatedKey(self.record(resp.body), api_key, changed=True)

    def create(self, name: str) -> CreatedKey:
        raise RotationError(
            "Anthropic has no API to create keys: make the key in the Anthropic Console and pass it as api_key "
            "(it is then renamed to %r so that a re-run finds it)" % name, provider=self.name)

    # -- status -------------------------------------------------------------

    def set_status(self, key_id: str, state: str, check_mode: bool = False) -> StatusChange:
        self.check_state(state)
        target = self.state_map[state]
        current = self._get(key_id)
        if current is None:
            if state == "deleted":
                return StatusChange(key_id, "absent", "absent", False)
            raise RotationError("no Anthropic API key has the id %s" % key_id, provider=self.name, key_id=key_id)
        if current.status == target:
            return StatusChange(key_id, current.status, current.status, False)
        if current.status in FINAL_STATUSES:
            raise RotationError("Anthropic key %s is %s, which is final: it cannot become %s"
                                % (key_id, current.status, target), provider=self.name, key_id=key_id,
                                previous_status=current.status)
        if check_mode:
            return StatusChange(key_id, current.status, target, True)
        resp = self.admin("POST", "%s/%s" % (KEYS_PATH, key_id), "setting API key %s to %s" % (key_id, target),
                          json_body={"status": target})
        status = resp.body.get("status") if isinstance(resp.body, dict) else None
        return StatusChange(key_id, current.status, status or target, True)
