# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark-only: run ansible-playbook with every task's worker process timed in parts.

    python benchmarks/worker_times.py <path of ansible-playbook> <its arguments>...

Appends one JSON line per task and host to the file named by APIKEYS_BENCH_WORKER_TIMES:
the task's name, the seconds from the main process starting the worker to the worker running
(``fork``), the worker's whole time (``total``), and the parts of it spent

- ``conditions``: evaluating the task's ``when`` (its own and its blocks'),
- ``templating``: ``Task.post_validate``, which templates the task's arguments and keywords,
- ``action``: the action plugin's ``run`` (a module in the controller's process, ``set_fact``, ...).

What is left of ``total`` is ansible-core's own work in the worker (the task's variables, the
connection, the result). Used by make bench's rotation section for one extra run per side,
never for the runs it times: the wrapper patches ansible-core's classes in this process only,
by names that ansible-core 2.19 to 2.21 have; a part whose name is missing is left out.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time

from ansible.executor import task_executor
from ansible.executor.process import worker
from ansible.playbook.task import Task

OUT = os.environ["APIKEYS_BENCH_WORKER_TIMES"]
PARTS: dict = {}
ACTIVE: list = []


def _timed(method, part):
    def timed(*args, **kwargs):
        if ACTIVE:  # inside another part (a condition an action evaluates): counted there, once
            return method(*args, **kwargs)
        ACTIVE.append(part)
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            PARTS[part] = PARTS.get(part, 0.0) + time.perf_counter() - started
            ACTIVE.pop()
    return timed


def _patch(cls, name, part):
    method = getattr(cls, name, None)
    if method is not None:
        setattr(cls, name, _timed(method, part))


def _patch_action_handler():
    # ansible-core 2.19 to 2.21 make the task's action plugin here (_get_action_handler calls it)
    name = "_get_action_handler_with_module_context"
    get_handler = getattr(task_executor.TaskExecutor, name, None)
    if get_handler is None:
        return

    def get_timed_handler(self, *args, **kwargs):
        handler, context = get_handler(self, *args, **kwargs)
        handler.run = _timed(handler.run, "action")
        return handler, context
    setattr(task_executor.TaskExecutor, name, get_timed_handler)


def _patch_worker():
    start, run = worker.WorkerProcess.start, worker.WorkerProcess._run

    def timed_start(self):
        self.apikeys_started = time.time()
        return start(self)

    def timed_run(self):
        entered = time.time()
        PARTS.clear()
        del ACTIVE[:]
        try:
            return run(self)
        finally:
            row = dict(PARTS, task=self._task.get_name(), fork=entered - getattr(self, "apikeys_started", entered),
                       total=time.time() - entered)
            with open(OUT, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
    worker.WorkerProcess.start = timed_start
    worker.WorkerProcess._run = timed_run


_patch(Task, "_resolve_conditional", "conditions")
_patch(Task, "post_validate", "templating")
_patch_action_handler()
_patch_worker()

if __name__ == "__main__":
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
