# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenRouter: keys managed with a management key (create, list, disable, delete) and the probe.

Private to the apikeys.rotation collection. A key is addressed by its ``hash``;
the probe is ``GET /key`` (``GET /models`` answers without any key and proves nothing).
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import (
    Capabilities,
    CreatedKey,
    KeyRecord,
    Provider,
    StatusChange,
)

PAGE_SIZE = 100
MAX_PAGES = 1000


class OpenRouterProvider(Provider):
    name = "openrouter"
    display_name = "OpenRouter"
    default_base_url = "https://openrouter.ai/api/v1"
    base_url_env = "OPENROUTER_BASE_URL"
    admin_key_env = "OPENROUTER_MANAGEMENT_KEY"
    probe_path = "/key"
    key_pattern = re.compile(r"^sk-or-v\d+-[0-9A-Za-z]{32,}$")
    key_format = "sk-or-v1- followed by 64 lowercase hex digits"
    capabilities = Capabilities(can_create=True, can_disable=True, can_delete=True)
    state_map = {"active": "active", "disabled": "disabled", "deleted": "deleted"}

    def redact(self, api_key: str) -> str:
        """OpenRouter's ``label``: the prefix, 3 characters, ``...`` and the last 4 (``sk-or-v1-0e6...1c96``)."""
        match = re.match(r"^(sk-or-v\d+-)", api_key)
        prefix = match.group(1) if match else ""
        rest = api_key[len(prefix):]
        return "%s%s...%s" % (prefix, rest[:3], api_key[-4:])

    @staticmethod
    def record(data: t.Mapping[str, t.Any]) -> KeyRecord:
        return KeyRecord(data.get("hash"), data.get("name"), "disabled" if data.get("disabled") else "active",
                         data.get("created_at"), data.get("label"), workspace_id=data.get("workspace_id"))

    def _workspace(self) -> t.Dict[str, str]:
        """``workspace_id`` for list and create: without it OpenRouter lists and creates in the default workspace."""
        workspace = self.options.get("openrouter_workspace_id")
        return {"workspace_id": workspace} if workspace else {}

    def _where(self) -> str:
        workspace = self.options.get("openrouter_workspace_id")
        return " in workspace %s" % workspace if workspace else ""

    # -- reads --------------------------------------------------------------

    def _get(self, key_id: str) -> t.Optional[KeyRecord]:
        resp = self.admin("GET", "/keys/%s" % key_id, "reading key %s" % key_id, ok=(200, 404))
        if resp.status == 404:
            return None
        body = resp.body if isinstance(resp.body, dict) else {}
        return self.record(body.get("data") or {})

    def list_keys(self) -> t.List[KeyRecord]:
        records: t.List[KeyRecord] = []
        offset = 0
        for _page in range(MAX_PAGES):
            params = {"include_disabled": "true"}
            params.update(self._workspace())
            if offset:
                params["offset"] = str(offset)
            resp = self.admin("GET", "/keys", "listing keys%s" % self._where(), collection=True, params=params)
            body = resp.body if isinstance(resp.body, dict) else {}
            data = body.get("data") or []
            records.extend(self.record(item) for item in data)
            if len(data) < PAGE_SIZE:
                break
            offset += len(data)
        return records

    def find(self, name: t.Optional[str] = None, key_id: t.Optional[str] = None) -> t.List[KeyRecord]:
        if key_id:
            found = self._get(key_id)
            records = [found] if found else []
        else:
            records = self.list_keys()
        if name is not None:
            records = [r for r in records if r.name == name]
        return records

    # -- create -------------------------------------------------------------

    def create(self, name: str) -> CreatedKey:
        body_in: t.Dict[str, t.Any] = {"name": name}
        body_in.update(self._workspace())
        resp = self.admin("POST", "/keys", "creating key %r%s" % (name, self._where()), collection=True, json_body=body_in,
                          ok=(200, 201))
        body = resp.body if isinstance(resp.body, dict) else {}
        value = body.get("key")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if not value or not data.get("hash"):
            raise RotationError("OpenRouter answered the create without a key hash or value", provider=self.name)
        self.client.add_secret(value)
        record = self.record(data)
        if not record.redacted_hint:
            record.redacted_hint = self.redact(value)
        return CreatedKey(record, value, changed=True)

    # -- status -------------------------------------------------------------

    def set_status(self, key_id: str, state: str, check_mode: bool = False) -> StatusChange:
        self.check_state(state)
        current = self._get(key_id)
        if current is None:
            if state == "deleted":
                return StatusChange(key_id, "absent", "absent", False)
            raise RotationError("no OpenRouter key has the hash %s: a deleted key cannot come back" % key_id,
                                provider=self.name, key_id=key_id)
        if current.status == state:
            return StatusChange(key_id, current.status, current.status, False)
        if check_mode:
            return StatusChange(key_id, current.status, state, True)
        if state == "deleted":
            self.admin("DELETE", "/keys/%s" % key_id, "deleting key %s" % key_id, ok=(200, 204, 404))
            return StatusChange(key_id, current.status, "deleted", True)
        resp = self.admin("PATCH", "/keys/%s" % key_id, "setting key %s to %s" % (key_id, state),
                          json_body={"disabled": state == "disabled"})
        body = resp.body if isinstance(resp.body, dict) else {}
        new = self.record(body.get("data") or {}).status if body.get("data") else state
        return StatusChange(key_id, current.status, new, True)
