# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the vault_lease module in the controller's process when the task runs on the controller."""

from __future__ import annotations

from ansible_collections.apikeys.rotation.plugins.modules import vault_lease
from ansible_collections.apikeys.rotation.plugins.plugin_utils.in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    """See plugins/plugin_utils/in_process.py."""

    MODULE = vault_lease
