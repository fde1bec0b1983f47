# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Descriptions of the attributes every module of the collection documents.

    Modules add C(support) and C(details) for each attribute; read-only modules can use
    the C(INFO_MODULE) variant, which fills them in.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in check mode (C(--check)) and then reports whether it would change something, without changing anything.
  diff_mode:
    description:
      - Returns details on what has changed (or would change, in check mode) when run in diff mode (C(--diff)).
      - Diffs show key names, fingerprints, identifiers and versions, never secret values.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change and changes nothing.
      - This assumes the systems the module talks to have not changed in a relevant way in between.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""
