# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: log task starts and SIGKILL ansible-playbook at a chosen moment (crash tests)."""

from __future__ import annotations

DOCUMENTATION = """
name: kill_at
type: aggregate
short_description: Kill ansible-playbook with SIGKILL at a chosen task or moment, for crash tests
description:
  - Appends one JSON line per task start and per runner start to the file named by E(APIKEYS_KILL_LOG), and one
    as the playbook starts (V(start), the moment a V(time:SECONDS) timer counts from) and as it ends (V(end)).
  - E(APIKEYS_KILL_AT) says when to kill. V(task:N) as the Nth task starts, before any host runs it (a task
    boundary); V(runner:N:SECONDS) that many seconds after the Nth runner started (inside a task);
    V(time:SECONDS) that many seconds after the playbook started. Counting starts at 1 and covers every task,
    skipped ones included.
  - E(APIKEYS_KILL_MODE) V(tree) (default) kills ansible-playbook's process group and the process group of every
    worker (ansible-core workers call setsid), so nothing of the run survives, as when the controller dies.
    V(group) kills only ansible-playbook's process group; a worker busy with a module finishes it, and its
    answer is lost. The pids left running are logged as RV(survivors) for the test to wait for.
  - E(APIKEYS_PAUSE_AT) V(name:TEXT) holds the run as the first task whose name contains TEXT starts, until the
    file named by E(APIKEYS_PAUSE_UNTIL) exists (at most 300 seconds), so a test can act in between.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import signal
import threading
import time

from ansible.plugins.callback import CallbackBase


def parse_spec(spec):
    """``task:N``, ``runner:N:SECONDS``, ``time:SECONDS`` -> (kind, N, seconds), ``name:TEXT`` -> (name, TEXT, 0.0)."""
    if not spec:
        return None, 0, 0.0
    if spec.startswith("name:"):
        return "name", spec[5:], 0.0
    parts = spec.split(":")
    if parts[0] == "task" and len(parts) == 2:
        return "task", int(parts[1]), 0.0
    if parts[0] == "runner" and len(parts) == 3:
        return "runner", int(parts[1]), float(parts[2])
    if parts[0] == "time" and len(parts) == 2:
        return "time", 0, float(parts[1])
    raise ValueError("APIKEYS_KILL_AT must be task:N, name:TEXT, runner:N:SECONDS or time:SECONDS, got %r" % spec)


def descendants(root):
    """Pids of every live descendant of ``root``, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kill_at"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._log_path = os.environ.get("APIKEYS_KILL_LOG")
        self._kind, self._at, self._delay = parse_spec(os.environ.get("APIKEYS_KILL_AT", ""))
        self._mode = os.environ.get("APIKEYS_KILL_MODE") or "tree"
        self._counts = {"task": 0, "runner": 0}
        self._last_task = None
        self._lock = threading.Lock()
        pause = os.environ.get("APIKEYS_PAUSE_AT", "")
        self._pause_at = pause[5:] if pause.startswith("name:") else None
        self._pause_until = os.environ.get("APIKEYS_PAUSE_UNTIL", "")

    def _log(self, record):
        if not self._log_path:
            return
        record = dict(record, at=round(time.monotonic(), 4))
        with self._lock:
            with open(self._log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    def _kill(self, reason):
        workers = descendants(os.getpid())
        self._log({"kill": True, "reason": reason, "mode": self._mode, "during": self._last_task,
                   "task_n": self._counts["task"], "survivors": [] if self._mode == "tree" else workers})
        if self._mode == "tree":
            # Workers live in process groups of their own; a module they run shares the worker's group.
            for _round in range(3):
                for pid in workers:
                    try:
                        group = os.getpgid(pid)
                        if group == os.getpgrp():
                            os.kill(pid, signal.SIGKILL)
                        else:
                            os.killpg(group, signal.SIGKILL)
                    except OSError:
                        pass
                workers = descendants(os.getpid())
        os.killpg(os.getpgrp(), signal.SIGKILL)

    def _arm(self, seconds, reason):
        timer = threading.Timer(seconds, self._kill, args=(reason,))
        timer.daemon = True
        timer.start()

    def _event(self, kind, task, host=None):
        self._counts[kind] += 1
        number = self._counts[kind]
        if kind == "task":
            self._last_task = task.get_name()
        self._log({"kind": kind, "n": number, "task": task.get_name(), "host": host})
        if self._kind == "name" and kind == "task" and self._at in task.get_name():
            self._kind = None
            self._kill("task %d (%s)" % (number, task.get_name()))
        if kind != self._kind or number != self._at:
            return
        if self._delay > 0:
            self._arm(self._delay, "%s %d + %.3fs" % (kind, number, self._delay))
        else:
            self._kill("%s %d" % (kind, number))

    def v2_playbook_on_start(self, playbook):
        self._log({"kind": "start"})
        if self._kind == "time":
            self._arm(self._delay, "time %.3fs" % self._delay)

    def v2_playbook_on_stats(self, stats):
        self._log({"kind": "end"})

    def _pause(self, task):
        self._pause_at = None
        self._log({"paused": True, "task": task.get_name()})
        deadline = time.monotonic() + 300
        while not os.path.exists(self._pause_until) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._log({"resumed": True, "task": task.get_name()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._pause_at and self._pause_at in task.get_name():
            self._pause(task)
        self._event("task", task)

    def v2_runner_on_start(self, host, task):
        self._event("runner", task, host.get_name())
