# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: concise
type: stdout
short_description: What a rotation changed, what failed, and the closing table; nothing else
version_added: 0.1.0
author:
  - apikeys.rotation maintainers (@apikeys)
description:
  - The default output with the noise of a key rotation left out, for a person at a terminal. It shows the play banners,
    every task that changed something (one line per key), every failure and warning, the retries of a probe that waits
    for a key to go live, the tables the playbooks end with (tasks named C(... | every key)) and the recap. It leaves
    out tasks that were skipped or only read, the includes of the role's stage files and the per-key summaries.
  - With C(-v) or more it shows everything, as the default output does.
  - AWX and Ansible Automation Platform show a job through their own callback, which replaces any stdout callback; the
    closing table is an ordinary task, so it shows there too.
  - 'Enable it with C(ANSIBLE_STDOUT_CALLBACK=apikeys.rotation.concise), or C(stdout_callback = apikeys.rotation.concise)
    in the C([defaults]) section of C(ansible.cfg).'
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - set as stdout callback in the configuration
"""

from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback.default import CallbackModule as DefaultCallback

# The tasks whose ok result is shown: the tables the playbooks end with.
TABLE_SUFFIX = "| every key"


class CallbackModule(DefaultCallback):
    """The default callback, quiet about skipped, unchanged and include results unless -v is given."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "apikeys.rotation.concise"

    def __init__(self) -> None:
        super().__init__()
        self._showing_table = False

    def _verbose(self) -> bool:
        return self._display.verbosity > 0

    def get_option(self, k):
        # unchanged and skipped results are hidden, and the task banners wait for a result shown
        if k in ("display_ok_hosts", "display_skipped_hosts") and not self._verbose():
            return self._showing_table
        return super().get_option(k)

    def v2_runner_on_ok(self, result) -> None:
        if not self._verbose() and isinstance(result.task, TaskInclude):
            return
        self._showing_table = result.task.get_name().strip().endswith(TABLE_SUFFIX)
        try:
            super().v2_runner_on_ok(result)
        finally:
            self._showing_table = False

    def v2_playbook_on_include(self, included_file) -> None:
        if self._verbose():
            super().v2_playbook_on_include(included_file)
