# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: appends each task result as a JSON line to $APIKEYS_TEST_EVENTS."""

from __future__ import annotations

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: Record task results as JSON lines for the test suite
description:
  - Writes every task result, as Ansible hands it to callbacks, to the file named by E(APIKEYS_TEST_EVENTS).
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, event, result):
        path = os.environ.get("APIKEYS_TEST_EVENTS")
        if not path:
            return
        task = result._task  # pylint: disable=protected-access
        record = {
            "event": event,
            "host": result._host.get_name(),  # pylint: disable=protected-access
            "task": task.get_name(),
            "action": task.action,
            "result": self._clean(result._result),  # pylint: disable=protected-access
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    @staticmethod
    def _clean(data):
        try:
            return json.loads(json.dumps(data, default=str))
        except (TypeError, ValueError):
            return {"unserializable": repr(data)}

    def v2_runner_on_ok(self, result):
        self._write("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write("failed", result)

    def v2_runner_on_skipped(self, result):
        self._write("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._write("unreachable", result)
