# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run this collection's modules in the controller's worker process.

Every module of the collection has an action plugin of the same name built on
:class:`InProcessModuleAction`. When the task runs on the controller (local connection,
no become, no async, no other Python named by ``ansible_python_interpreter``), the
action calls the module file's ``main()`` right here, with the arguments
Ansible would have sent it (``_update_module_args``: check mode, diff, no_log,
verbosity), the task's ``environment:`` applied to ``os.environ`` for the call, and the
module's output taken from the same ``AnsibleModule`` hook it prints through and parsed
as a module's output is (``_parse_returned_data``). So argument validation, its
messages, the scrubbing of ``no_log`` values, check mode and diff are AnsibleModule's
own: one code path serves both ways of running. Anywhere else, the module is executed
on the target as usual. ``apikeys_in_process: false`` (a variable) or
``APIKEYS_IN_PROCESS=false`` (the controller's environment) always executes the module.

Workers are forked for each task, so what a module imports or changes in the process
dies with the worker; the environment, the temporary directory and the module globals
touched here are restored anyway.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import traceback
import typing as t

from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction, get_module_encoder
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

COLLECTION = "apikeys.rotation"
PROFILE = "legacy"  # the serialization profile Ansible uses for these modules
SWITCH_VAR = "apikeys_in_process"
SWITCH_ENV = "APIKEYS_IN_PROCESS"
LOCAL_TRANSPORTS = ("local", "ansible.builtin.local")
AUTO_INTERPRETERS = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")


# What a worker would otherwise import for itself, for each task, only to lose it when the
# worker exits: the collection's filters; the provider files (a provider module imports only
# its own, at run time); ansible-core's JSON profile of module results, which every in-process
# module task encodes and decodes with; and netrc, which requests and httpx import on their
# first request. Imported here, in the controller's main process (where the strategy loads the
# action plugins before it forks the first worker), every worker finds them in sys.modules.
WORKER_PRELOADS = (
    "ansible_collections.apikeys.rotation.plugins.filter.rotation",
    "ansible_collections.apikeys.rotation.plugins.filter.report",
    "ansible_collections.apikeys.rotation.plugins.module_utils.providers.anthropic",
    "ansible_collections.apikeys.rotation.plugins.module_utils.providers.openai",
    "ansible_collections.apikeys.rotation.plugins.module_utils.providers.openrouter",
    "netrc",
)
# ansible-core's Jinja tests (``is file``, ``is none``): the test loader reads every one of its
# files the first time a template uses any test, under names of its own, so importing the files
# by their module names does not help. Asking the loader for one test in the main process fills
# its cache, which the workers inherit.
WORKER_PRELOAD_TEST = "ansible.builtin.file"


def preload_for_workers() -> None:
    """Load :data:`WORKER_PRELOADS`, ansible-core's tests and the module result profile once.

    Nothing here may fail a run: what fails to load is left to fail where it is used.
    """
    for name in WORKER_PRELOADS:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # pylint: disable=broad-except
                pass
    try:
        from ansible.plugins.loader import test_loader  # pylint: disable=import-outside-toplevel

        test_loader.get(WORKER_PRELOAD_TEST)
        for direction in (Direction.CONTROLLER_TO_MODULE, Direction.MODULE_TO_CONTROLLER):
            get_module_encoder(PROFILE, direction)
    except Exception:  # pylint: disable=broad-except
        pass


def _same_python(interpreter: str) -> bool:
    path = shutil.which(interpreter) or interpreter
    return os.path.abspath(path) == os.path.abspath(sys.executable)


def _as_env(values: t.Mapping[str, t.Any]) -> t.Dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


@contextlib.contextmanager
def module_context(payload: bytes, environment: t.Mapping[str, str], captured: t.List[str]) -> t.Iterator[None]:
    """What a module process would have: its arguments, its environment, its own output."""
    from ansible.module_utils.common import warnings as module_warnings  # pylint: disable=import-outside-toplevel

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_args = basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE  # pylint: disable=protected-access
    saved_tempdir = tempfile.tempdir
    saved_record = basic.AnsibleModule.__dict__.get("_record_module_result")
    encoder = get_module_encoder(PROFILE, Direction.MODULE_TO_CONTROLLER)

    def record(_module: t.Any, result: t.Dict[str, t.Any]) -> None:
        captured.append(json.dumps(result, cls=encoder))

    module_warnings._global_warnings.clear()  # pylint: disable=protected-access
    module_warnings._global_deprecations.clear()  # pylint: disable=protected-access
    os.environ.update(environment)
    tempfile.tempdir = None  # TMPDIR may come from the task's environment
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = payload, PROFILE  # pylint: disable=protected-access
    basic.AnsibleModule._record_module_result = record  # pylint: disable=protected-access
    try:
        yield
    finally:
        if saved_record is None:
            del basic.AnsibleModule._record_module_result  # pylint: disable=protected-access
        else:
            basic.AnsibleModule._record_module_result = saved_record  # pylint: disable=protected-access
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved_args  # pylint: disable=protected-access
        tempfile.tempdir = saved_tempdir
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        module_warnings._global_warnings.clear()  # pylint: disable=protected-access
        module_warnings._global_deprecations.clear()  # pylint: disable=protected-access


class InProcessModuleAction(ActionBase):
    """The action plugin of a module of this collection: in-process on the controller.

    A subclass names its module file as ``MODULE``. Importing it where the action plugin is
    imported matters: Ansible's strategy loads an action's class in the main process before
    it forks the task's worker, so the module and what it imports (hvac for the Vault
    modules, httpx for the provider ones) are imported once per run, not once per task.
    """

    MODULE: t.Any = None
    _supports_check_mode = True
    _supports_async = True

    @property
    def module_short_name(self) -> str:
        return str(self.MODULE.__name__).rsplit(".", 1)[-1]

    def why_not_in_process(self, task_vars: t.Mapping[str, t.Any]) -> t.Optional[str]:
        """None when the module may run here, otherwise why it runs as a module."""
        switch = task_vars.get(SWITCH_VAR)
        if switch is not None and not boolean(self._templar.template(switch), strict=False):
            return f"{SWITCH_VAR} is false"
        if switch is None and os.environ.get(SWITCH_ENV, "").strip().lower() in ("0", "false", "no", "off"):
            return f"{SWITCH_ENV} is false"
        if self._connection.transport not in LOCAL_TRANSPORTS:
            return f"the connection is {self._connection.transport}"
        if self._play_context.become:
            return "become is set"
        if self._task.async_val:
            return "the task is async"
        interpreter = task_vars.get("ansible_python_interpreter")
        if interpreter:
            interpreter = str(self._templar.template(interpreter))
            if interpreter not in AUTO_INTERPRETERS and not _same_python(interpreter):
                return f"ansible_python_interpreter is {interpreter}, not the controller's Python"
        if "_record_module_result" not in basic.AnsibleModule.__dict__:
            return "this ansible-core has no in-process module hook"
        return None

    def run(self, tmp: t.Optional[str] = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        fqcn = f"{COLLECTION}.{self.module_short_name}"
        reason = self.why_not_in_process(task_vars)
        if reason is None:
            return merge_hash(result, self.run_in_process(fqcn, task_vars))
        display.vvv(f"{fqcn}: executed as a module ({reason})", host=self._play_context.remote_addr)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(module_name=fqcn, task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)  # pylint: disable=protected-access
        return result

    def run_in_process(self, fqcn: str, task_vars: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        module_args = dict(self._task.args)
        self._update_module_args(fqcn, module_args, task_vars)
        environment: t.Dict[str, t.Any] = {}
        self._compute_environment_string(environment)
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": module_args},
                             cls=get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)).encode()
        captured: t.List[str] = []
        rc, crash = 0, None
        with module_context(payload, _as_env(environment), captured):
            try:
                self.MODULE.main()
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # pylint: disable=broad-except
                rc, crash = 1, traceback.format_exc()
        if not captured:
            # What a module process that died without a result gives: MODULE FAILURE.
            return {"failed": True, "rc": rc, "msg": "MODULE FAILURE: the module ended without a result",
                    "module_stderr": crash or "", "module_stdout": ""}
        stdout = "\n" + captured[-1]
        res = {"rc": rc, "stdout": stdout, "stdout_lines": stdout.splitlines(), "stderr": "", "stderr_lines": []}
        parsed = self._parse_returned_data(res, PROFILE)  # type: ignore[arg-type]
        if hasattr(parsed, "as_result_dict"):  # ansible-core 2.20+
            parsed.remove_internal_keys()
            return parsed.as_result_dict(for_round_trip=True)
        from ansible.vars.clean import remove_internal_keys  # pylint: disable=import-outside-toplevel

        parsed.pop("_ansible_suppress_tmpdir_delete", None)
        remove_internal_keys(parsed)
        return parsed


preload_for_workers()
