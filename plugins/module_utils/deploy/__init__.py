# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clients for the places applications read their key from (the rotate role's deploy targets)."""
