# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark-only callback: the wall time of every task on every host, as JSON lines."""

from __future__ import annotations

DOCUMENTATION = """
name: task_timer
type: aggregate
short_description: Write each task's wall time per host as JSON lines
description:
  - Appends one JSON line per finished task and host to the file named by E(APIKEYS_BENCH_TIMINGS)
    with the task name, action, status and the seconds from the task's start on that host to its result,
    and how many loop items and C(until) retries it ran (each one a run of the action).
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("APIKEYS_BENCH_TIMINGS")
        self._started = {}
        self._items = {}
        self._retries = {}

    @staticmethod
    def _key(result):
        return (result._host.get_name(), result._task._uuid)  # pylint: disable=protected-access

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()  # pylint: disable=protected-access

    def v2_runner_retry(self, result):
        key = self._key(result)
        self._retries[key] = self._retries.get(key, 0) + 1

    def _item(self, result):
        key = self._key(result)
        self._items[key] = self._items.get(key, 0) + 1

    def v2_runner_item_on_ok(self, result):
        self._item(result)

    def v2_runner_item_on_failed(self, result):
        self._item(result)

    def _done(self, status, result):
        end = time.monotonic()
        host = result._host.get_name()  # pylint: disable=protected-access
        task = result._task  # pylint: disable=protected-access
        key = (host, task._uuid)  # pylint: disable=protected-access
        start = self._started.pop(key, None)
        items, retries = self._items.pop(key, 0), self._retries.pop(key, 0)
        if not self._path or start is None:
            return
        record = {"host": host, "task": task.get_name(), "action": task.action, "status": status,
                  "seconds": round(end - start, 6), "start": round(start, 6), "items": items, "retries": retries}
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def v2_runner_on_ok(self, result):
        self._done("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done("failed", result)

    def v2_runner_on_skipped(self, result):
        self._done("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._done("unreachable", result)
