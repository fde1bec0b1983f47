# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""provider_key_info's require_usable: which key of key_id can be the key in use, and what is said when not."""

from __future__ import annotations

import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils.common import fingerprint
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import KeyRecord
from ansible_collections.apikeys.rotation.plugins.modules.provider_key_info import usable_problem

KEY = "sk-ant-api03-" + "R2D2" * 20 + "igAA"
HINT = "sk-ant-api03-R2D...igAA"


class Listing:
    """A provider whose listing is read once to tell a wrong base_url from a missing key."""

    name = "anthropic"

    def __init__(self):
        self.listed = 0

    def list_keys(self):
        self.listed += 1
        return []


@pytest.mark.parametrize("records, value, matching, expected", [
    ([KeyRecord("k1", "in-use", "active", redacted_hint=HINT)], KEY, ["k1"], None),
    ([KeyRecord("k1", "in-use", "active", redacted_hint=None)], KEY, [], None),  # no hint: nothing to compare
    ([KeyRecord("k1", "in-use", "active", redacted_hint=HINT)], None, None, None),  # no match_api_key_from
    ([], KEY, [], ("missing", "no anthropic key has that id (k1)")),
    ([KeyRecord("k1", "old", "archived", redacted_hint=HINT)], KEY, [], ("unusable", "that key (k1) is archived")),
    ([KeyRecord("k1", "old", "expired", redacted_hint=HINT)], KEY, [], ("unusable", "that key (k1) is expired")),
    ([KeyRecord("k1", "other", "active", redacted_hint="sk-ant-api03-XXX...zzzz")], KEY, [],
     ("hint_mismatch", "its redacted hint sk-ant-api03-XXX...zzzz does not fit the key in Vault (%s)" % fingerprint(KEY))),
])
def test_usable_problem(records, value, matching, expected):
    provider = Listing()
    assert usable_problem(provider, "k1", records, value, matching) == expected
    # the listing is read only where no key has the id (a wrong base_url raises there)
    assert provider.listed == (1 if not records else 0)
    assert KEY not in repr(expected)
