# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotate role's settings, checked before anything is read or written.

:func:`check_settings` takes the role's ``rotate_*`` values (as the play templated them) and
the inventory's short names that are set (``provider``, ``max_age``, ...), and returns every
problem at once, each naming the variable the user set, plus the durations in seconds. It
is the only check of the settings: the role's argument spec documents them and does not
refuse any value, so that a typo gets one line naming the setting, not a dump of the spec.
"""

from __future__ import annotations

import re
import typing as t
from urllib.parse import urlsplit

from ansible_collections.apikeys.rotation.plugins.module_utils.common import shown_url

PROVIDERS = ("anthropic", "openai", "openrouter")
RETIRE_STATES = ("disabled", "deleted")

# rotate_* settings an inventory of keys sets by a short name (the role's defaults map one to the other).
SHORT_NAMES = {
    "rotate_provider": "provider",
    "rotate_vault_path": "vault_path",
    "rotate_vault_mount": "vault_mount",
    "rotate_openai_project_id": "openai_project_id",
    "rotate_openai_service_account_id": "openai_service_account_id",
    "rotate_anthropic_workspace_id": "anthropic_workspace_id",
    "rotate_openrouter_workspace_id": "openrouter_workspace_id",
    "rotate_current_key_id": "current_key_id",
    "rotate_key_name_prefix": "key_name_prefix",
    "rotate_max_age": "max_age",
    "rotate_grace_period": "grace_period",
    "rotate_new_api_key": "new_api_key",
    "rotate_new_api_key_vault_path": "new_api_key_vault_path",
    "rotate_deploy_tasks": "deploy_tasks",
    "rotate_health_url": "health_url",
    "rotate_allow_insecure_http": "allow_insecure_http",
    "rotate_allow_without_deploy": "allow_without_deploy",
    "rotate_console_key_wait": "console_key_wait",
    "rotate_deploy_target": "deploy_target",
    "rotate_cloudflare_account_id": "cloudflare_account_id",
    "rotate_cloudflare_script_name": "cloudflare_script_name",
    "rotate_cloudflare_secret_name": "cloudflare_secret_name",
    "rotate_cloudflare_api_base_url": "cloudflare_api_base_url",
    "rotate_key_file_path": "key_file_path",
    "rotate_key_file_format": "key_file_format",
    "rotate_key_file_key_name": "key_file_key_name",
    "rotate_key_file_mode": "key_file_mode",
    "rotate_key_file_owner": "key_file_owner",
    "rotate_key_file_group": "key_file_group",
    "rotate_key_file_reload_command": "key_file_reload_command",
    "rotate_key_file_reload_service": "key_file_reload_service",
    "rotate_key_file_reload_state": "key_file_reload_state",
    "rotate_kubernetes_namespace": "kubernetes_namespace",
    "rotate_kubernetes_secret_name": "kubernetes_secret_name",
    "rotate_kubernetes_secret_key": "kubernetes_secret_key",
    "rotate_kubernetes_rollout": "kubernetes_rollout",
    "rotate_kubernetes_wait_timeout": "kubernetes_wait_timeout",
}

# The deploy targets the role ships (tasks/deploy_targets/<name>.yml): each setting, the form its
# value must have, what that form is in words, and whether the target needs it.
DEPLOY_TARGETS: t.Dict[str, t.Tuple[t.Tuple[str, str, str, bool], ...]] = {
    "cloudflare_worker_secret": (
        ("rotate_cloudflare_account_id", r"^[0-9a-f]{32}$", "a Cloudflare account id (32 lowercase hex digits)", True),
        ("rotate_cloudflare_script_name", r"^[a-z0-9][a-z0-9_-]{0,62}$",
         "the Worker's name (lowercase letters, digits, - and _)", True),
        ("rotate_cloudflare_secret_name", r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
         "a secret binding name such as ANTHROPIC_API_KEY", True),
    ),
    "file": (
        ("rotate_key_file_path", r"^/[^\x00]*[^/]$", "an absolute path to a file, such as /etc/signer/anthropic.env", True),
        ("rotate_key_file_format", r"^(raw|env)$", "raw (the key alone) or env (NAME=key)", True),
        ("rotate_key_file_key_name", r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
         "an environment variable name such as ANTHROPIC_API_KEY", True),
        ("rotate_key_file_mode", r"^0?[0-7][0-7][0-7]$", "an octal mode without bits for other users, such as 0600 or 0640",
         True),
        ("rotate_key_file_owner", r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$", "a user name or number", False),
        ("rotate_key_file_group", r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$", "a group name or number", False),
        ("rotate_key_file_reload_service", r"^[A-Za-z0-9@_.:-]{1,255}$", "a service name such as signer.service", False),
        ("rotate_key_file_reload_state", r"^(restarted|reloaded)$", "restarted or reloaded", True),
    ),
    "kubernetes_secret": (
        ("rotate_kubernetes_namespace", r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
         "a namespace name (lowercase letters, digits and -)", True),
        ("rotate_kubernetes_secret_name", r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
         "a Secret's name (lowercase letters, digits, - and .)", True),
        ("rotate_kubernetes_secret_key", r"^[-._a-zA-Z0-9]{1,253}$", "a data key such as ANTHROPIC_API_KEY", True),
        ("rotate_kubernetes_rollout", r"^(deployment|statefulset|daemonset)/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
         "the workload to roll out, such as deployment/signer (deployment, statefulset or daemonset)", False),
        ("rotate_kubernetes_wait_timeout", r"^[1-9][0-9]{0,4}$", "seconds to wait for the rollout, such as 600", True),
    ),
}
# What a deploy target needs installed beside the collection: (Python import, what to install).
TARGET_NEEDS: t.Dict[str, t.Tuple[t.Tuple[str, str], ...]] = {
    "kubernetes_secret": (
        ("ansible_collections.kubernetes.core", "the collection kubernetes.core (ansible-galaxy collection install "
                                                "kubernetes.core)"),
        ("kubernetes", "the Python library kubernetes (pip install kubernetes) in the Python that runs Ansible"),
    ),
}

DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TRUE_WORDS = ("y", "yes", "on", "1", "true", "t")
FALSE_WORDS = ("n", "no", "off", "0", "false", "f", "")

# (setting, smallest, largest, how the bound reads) for the durations.
DURATIONS = (
    ("rotate_max_age", 1, 315360000, "between 1s and 3650d", "a duration such as 30d, 12h, 90m or a number of seconds"),
    ("rotate_grace_period", 0, 31622400, "at most 366d", "a duration such as 7d or 12h"),
    ("rotate_lease_ttl", 1, 86400, "between 1s and 24h", "a duration such as 15m or 1h"),
    ("rotate_console_key_wait", 0, 31622400, "at most 366d", "a duration such as 7d or 12h"),
)
# where check_settings returns each duration in seconds
DURATION_KEYS = {"rotate_max_age": "max_age_seconds", "rotate_grace_period": "grace_seconds",
                 "rotate_lease_ttl": "lease_seconds", "rotate_console_key_wait": "console_key_wait_seconds"}
# (setting, kind, smallest, largest) for the numbers.
NUMBERS = (
    ("rotate_probe_retries", int, 1, 1000),
    ("rotate_verify_successes", int, 1, 100),
    ("rotate_check_retries", int, 1, 1000),
    ("rotate_probe_delay", float, 0, 600),
    ("rotate_check_delay", float, 0, 600),
)
BOOLEANS = ("rotate_force", "rotate_restore_on_failure", "rotate_allow_insecure_http", "rotate_vault_login",
            "rotate_allow_without_deploy")


def setting_name(name: str, settings: t.Mapping[str, t.Any], short_set: t.Mapping[str, t.Any]) -> str:
    """The variable the user set for ``name``: its short inventory name when that one gave the value."""
    short = SHORT_NAMES.get(name)
    if short and short in short_set and _same(short_set[short], settings.get(name)):
        return short
    return name


def _same(a: t.Any, b: t.Any) -> bool:
    return a == b or str(a).strip() == str(b).strip()


def shown(value: t.Any) -> str:
    """A value as a message shows it: quoted, any user:password@ of a URL removed, at most 80 characters."""
    text = shown_url(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def duration_seconds(value: t.Any) -> t.Optional[int]:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a number of seconds; None when it is none of these."""
    if isinstance(value, bool):
        return None
    match = DURATION.match(str(value))
    if not match:
        return None
    return int(match.group(1)) * UNITS[match.group(2)]


def as_bool(value: t.Any) -> t.Optional[bool]:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def as_number(value: t.Any, kind: t.Callable[[t.Any], t.Any]) -> t.Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if kind is int and number != int(number):
        return None
    return number


def deploy_target_problems(settings: t.Mapping[str, t.Any], name: t.Callable[[str], str]) -> t.List[str]:
    """What is wrong with ``deploy_target`` and the settings of the target it names."""
    target = str(settings.get("rotate_deploy_target") or "").strip()
    if "rotate_deploy_target" not in settings or not target:
        return []
    if target not in DEPLOY_TARGETS:
        return ["%s must be one of %s, got %s (for anything else, write deploy_tasks)"
                % (name("rotate_deploy_target"), ", ".join(sorted(DEPLOY_TARGETS)), shown(target))]
    problems = []
    for setting, pattern, meaning, required in DEPLOY_TARGETS[target]:
        value = str(settings.get(setting) or "").strip()
        if setting == "rotate_key_file_mode" and isinstance(settings.get(setting), int):
            problems.append("%s must be quoted, such as '0640': unquoted, YAML reads 0640 as the number 416, got %s"
                            % (name(setting), settings[setting]))
        elif not value:
            if required:
                problems.append("deploy_target %s needs %s (or %s): %s" % (target, SHORT_NAMES[setting], setting, meaning))
        elif not re.match(pattern, value):
            problems.append("%s must be %s, got %s" % (name(setting), meaning, shown(value)))
        elif setting == "rotate_key_file_mode" and int(value, 8) & 0o007:
            problems.append("%s %s lets every user of the host read or change the key: give the application's group "
                            "read access instead (key_file_group, key_file_mode 0640)" % (name(setting), value))
    if target == "file":
        problem = reload_command_problem(settings.get("rotate_key_file_reload_command"),
                                         name("rotate_key_file_reload_command"))
        if problem:
            problems.append(problem)
    if target == "cloudflare_worker_secret" and settings.get("rotate_cloudflare_api_base_url"):
        problem = health_url_problem(str(settings["rotate_cloudflare_api_base_url"]).strip(),
                                     bool(as_bool(settings.get("rotate_allow_insecure_http", False))),
                                     name("rotate_cloudflare_api_base_url"))
        if problem:
            problems.append(problem)
    return problems


def reload_command_problem(command: t.Any, name: str) -> t.Optional[str]:
    """Why the file target's reload command cannot run, or None: an argv list of words or a command line."""
    if command is None or command == "" or command == []:
        return None
    if isinstance(command, (list, tuple)):
        if command and all(isinstance(word, str) and word for word in command):
            return None
        return "%s must be a list of words (an argv) or a command line, got %s" % (name, shown(command))
    if not isinstance(command, str):
        return "%s must be a list of words (an argv) or a command line, got %s" % (name, shown(command))
    import shlex

    try:
        words = shlex.split(command)
    except ValueError as exc:
        return "%s is not a command line (%s): %s" % (name, exc, shown(command))
    return None if words else "%s is empty" % name


def target_needs(target: str) -> t.List[str]:
    """What the deploy target ``target`` needs that is not installed for the Python running Ansible."""
    import importlib.util

    missing = []
    for module, what in TARGET_NEEDS.get(target, ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append("deploy_target %s needs %s" % (target, what))
    return missing


def health_url_problem(url: str, insecure_ok: bool, name: str) -> t.Optional[str]:
    """Why ``health_url`` cannot be used, or None.

    A credential must not go anywhere but the application, and an application's answer must not
    come from a cloud metadata service: https only (plain http on this host's loopback, or when
    allowed), never a link-local address.
    """
    if not url:
        return None
    safe = shown_url(url)
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        host = ""
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host or re.search(r"\s", url):
        return "%s must be an https:// URL, got %s" % (name, shown(safe))
    if host.startswith("169.254.") or re.match(r"^fe[89ab]", host) or host in ("metadata.google.internal", "metadata"):
        return ("%s points at a link-local address (%s), where cloud metadata services answer: refused"
                % (name, shown(safe)))
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if parts.scheme.lower() == "http" and not insecure_ok and not loopback:
        return ("%s must be https:// (got %s): plain http:// is accepted only on the loopback address of this host, "
                "or with allow_insecure_http=true" % (name, shown(safe)))
    return None


def check_settings(settings: t.Mapping[str, t.Any], short_set: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """Every problem with the role's settings, and the durations in seconds.

    ``settings`` maps each ``rotate_*`` name to its value; ``short_set`` maps the short inventory
    names that are set to their values (to name the variable the user set). Returns
    ``{"problems": [...], "max_age_seconds": .., "grace_seconds": .., "lease_seconds": .., "console_key_wait_seconds": ..}``;
    a duration that is not valid is 0 there.
    """
    short_set = short_set or {}
    problems: t.List[str] = []

    def name(setting: str) -> str:
        return setting_name(setting, settings, short_set)

    provider = str(settings.get("rotate_provider") or "").strip()
    if not provider:
        problems.append("set provider (or rotate_provider) to one of %s" % ", ".join(PROVIDERS))
    elif provider not in PROVIDERS:
        problems.append("%s must be one of %s, got %s" % (name("rotate_provider"), ", ".join(PROVIDERS), shown(provider)))

    vault_path = str(settings.get("rotate_vault_path") or "").strip()
    if not vault_path:
        problems.append("set vault_path (or rotate_vault_path) to the KV v2 path of the key")

    seconds: t.Dict[str, int] = {}
    for setting, low, high, bound, example in DURATIONS:
        value = settings.get(setting)
        got = duration_seconds(value)
        seconds[DURATION_KEYS[setting]] = got or 0
        if got is None:
            problems.append("%s must be %s, got %s" % (name(setting), example, shown(value)))
        elif not low <= got <= high:
            problems.append("%s must be %s, got %s" % (name(setting), bound, shown(value)))

    for setting, kind, low, high in NUMBERS:
        value = settings.get(setting)
        number = as_number(value, kind)
        what = "a whole number" if kind is int else "a number of seconds"
        if number is None:
            problems.append("%s must be %s from %s to %s, got %s" % (setting, what, low, high, shown(value)))
        elif not low <= number <= high:
            problems.append("%s must be %s from %s to %s, got %s" % (setting, what, low, high, shown(value)))

    for setting in BOOLEANS:
        if setting in settings and as_bool(settings[setting]) is None:
            problems.append("%s must be true or false, got %s" % (name(setting), shown(settings[setting])))

    retire = str(settings.get("rotate_retire_state") or "")
    if retire not in RETIRE_STATES:
        problems.append("rotate_retire_state must be one of %s, got %s" % (", ".join(RETIRE_STATES), shown(retire)))

    lease_path = str(settings.get("rotate_lease_path") or "").strip()
    if not lease_path or (lease_path == vault_path
                          and str(settings.get("rotate_lease_mount") or "") == str(settings.get("rotate_vault_mount") or "")):
        problems.append("rotate_lease_path must be a KV v2 path of its own (default: the path of the key followed by .lock)")

    if provider == "openai" and not str(settings.get("rotate_openai_project_id") or "").strip():
        problems.append("an OpenAI key needs openai_project_id (or rotate_openai_project_id): keys are listed and revoked "
                        "per project")

    problems.extend(deploy_target_problems(settings, name))

    insecure_ok = bool(as_bool(settings.get("rotate_allow_insecure_http", False)))
    problem = health_url_problem(str(settings.get("rotate_health_url") or "").strip(), insecure_ok,
                                 name("rotate_health_url"))
    if problem:
        problems.append(problem)

    result: t.Dict[str, t.Any] = {"problems": problems}
    result.update(seconds)
    return result


def preflight(resume: str, deploy_tasks: str, deploy_file_found: bool, has_health_url: bool,
              allow_without_deploy: t.Any, short_set: t.Optional[t.Mapping[str, t.Any]] = None,
              deploy_target: str = "") -> t.List[str]:
    """What stops a rotation before anything is written, beyond the settings and the provider's answer.

    ``resume`` is where the run starts (:func:`rotation.resume_from`): only a new rotation
    (``create``) is held to the consumer check, a started one is always finished.
    ``deploy_file_found`` tells whether an absolute ``deploy_tasks`` path is a file.
    """
    given = {"rotate_deploy_tasks": deploy_tasks, "rotate_allow_without_deploy": allow_without_deploy}
    short_set = short_set or {}
    problems: t.List[str] = []
    if deploy_tasks and deploy_tasks.startswith("/") and not deploy_file_found:
        problems.append("%s names %s, which is not a file on this controller"
                        % (setting_name("rotate_deploy_tasks", given, short_set), deploy_tasks))
    if deploy_target and resume != "none":
        problems.extend(target_needs(deploy_target))
    if resume == "create" and deploy_target and not has_health_url:
        problems.append(
            "deploy_target %s needs health_url, the application's key health endpoint (docs/key-health-endpoint.md): "
            "without it nothing shows that the application serves the new key before the old one is disabled"
            % deploy_target)
    if resume == "create" and not deploy_tasks and not deploy_target and not has_health_url \
            and not as_bool(allow_without_deploy):
        problems.append(
            "this key has neither deploy_target, deploy_tasks nor health_url: the old key would be disabled as soon as the new one is "
            "live at the provider, while applications may still hold the old one. Set deploy_tasks (tasks that make them "
            "pick the new key up) or deploy_target, and health_url (their key health endpoint), or set allow_without_deploy: true when every "
            "application reads its key from Vault on each use")
    return problems
