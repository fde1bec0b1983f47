# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the in-process action plugins load in the controller's main process, before workers fork."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Run in a fresh interpreter: the plugin loader set up as ansible-playbook sets it up, then the
# in-process helper imported (as the strategy imports an action plugin), then what a worker does
# for the role's tasks. Every module that work imports, the worker would import again for itself.
WORKER = r"""
import importlib, json, sys
from ansible.plugins.loader import init_plugin_loader, test_loader
init_plugin_loader()
from ansible_collections.apikeys.rotation.plugins.plugin_utils import in_process
from ansible.module_utils.common.json import Direction, get_module_encoder
before = set(sys.modules)
found = test_loader.get(in_process.WORKER_PRELOAD_TEST) is not None
for direction in (Direction.CONTROLLER_TO_MODULE, Direction.MODULE_TO_CONTROLLER):
    get_module_encoder(in_process.PROFILE, direction)
for name in in_process.WORKER_PRELOADS:
    importlib.import_module(name)
print(json.dumps({"found": found, "new": sorted(set(sys.modules) - before)}))
"""


def test_a_worker_finds_the_tests_profiles_filters_and_providers_loaded():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["found"], "ansible.builtin.file is not a known test"
    assert result["new"] == [], "imported again after the preload: %s" % result["new"]
