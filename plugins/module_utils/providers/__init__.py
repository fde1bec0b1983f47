# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider name -> provider class. Private to the apikeys.rotation collection.

Each provider lives in its own file and is imported only when asked for, so a
task pays for one provider's code. Adding a provider: one file in this package
and one line in ``PROVIDERS``.
"""

from __future__ import annotations

import typing as t

# name -> (file in this package, class name)
PROVIDERS: t.Dict[str, t.Tuple[str, str]] = {
    "anthropic": ("anthropic", "AnthropicProvider"),
    "openai": ("openai", "OpenAIProvider"),
    "openrouter": ("openrouter", "OpenRouterProvider"),
}

PROVIDER_NAMES: t.Tuple[str, ...] = tuple(sorted(PROVIDERS))


def provider_class(name: str) -> t.Any:
    """Return the class for ``name``; the import happens here, for that provider only."""
    # Static imports (not importlib) so that Ansible packs every provider file with the module.
    if name == "anthropic":
        from ansible_collections.apikeys.rotation.plugins.module_utils.providers import anthropic as mod
    elif name == "openai":
        from ansible_collections.apikeys.rotation.plugins.module_utils.providers import openai as mod
    elif name == "openrouter":
        from ansible_collections.apikeys.rotation.plugins.module_utils.providers import openrouter as mod
    else:
        from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
        raise RotationError("provider must be one of %s, got %r" % (", ".join(PROVIDER_NAMES), name))
    return getattr(mod, PROVIDERS[name][1])


def get_provider(params: t.Mapping[str, t.Any], environ: t.Optional[t.Mapping[str, str]] = None, **kwargs: t.Any) -> t.Any:
    """Build the provider named by ``params['provider']`` with options resolved from params and environment."""
    from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import resolve_options
    cls = provider_class(params.get("provider"))
    return cls(resolve_options(params, cls, environ), **kwargs)


def run_module(module: t.Any, action: t.Callable[[t.Any, t.Any], t.Dict[str, t.Any]], needs_provider: bool = True) -> None:
    """Call ``action(module, provider)`` and report: the one place where errors become ``fail_json``.

    The admin key, wherever it came from (option, environment, file), is added
    to the module's no_log values; every result carries ``http`` (requests,
    retries, seconds waited).
    """
    from ansible.module_utils.basic import missing_required_lib
    from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
    from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import HAS_HTTPX, HTTPX_IMPORT_ERROR

    if not HAS_HTTPX:
        module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)
    from ansible_collections.apikeys.rotation.plugins.module_utils.common import url_userinfo

    for name in ("base_url", "health_url"):
        # a user:password@ in a URL is masked wherever the result shows it (the invocation at -vvv too)
        userinfo = url_userinfo(module.params.get(name))
        if userinfo:
            module.no_log_values.add(userinfo)
    provider = None
    try:
        if needs_provider:
            provider = get_provider(module.params)
            if provider.options.admin_key:
                module.no_log_values.add(provider.options.admin_key)
        result = action(module, provider)
    except RotationError as exc:
        details = dict(exc.details)
        details.setdefault("changed", False)
        if provider is not None:
            details["http"] = provider.stats
        module.fail_json(msg=str(exc), **details)
    finally:
        if provider is not None:
            provider.close()
    if provider is not None and "http" not in result:
        result["http"] = provider.stats
    module.exit_json(**result)
