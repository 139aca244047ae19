"""Masking phone and ID numbers that people typed into free text, for lists.

Structured fields are masked where they are shown (`workflows.phones`); a report's account
of what happened can carry numbers too, and a list of reports on a wall screen should not.
"""

import re

from workflows.phones import mask_id_number, mask_phone

# Resident ID numbers first (18 characters), then mainland mobiles with or without +86.
_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")


def mask_numbers(text: str | None) -> str:
    if not text:
        return ""
    text = _ID.sub(lambda m: mask_id_number(m.group(0)) or "", text)
    return _MOBILE.sub(lambda m: mask_phone(re.sub(r"[^\d]", "", m.group(0))[-11:]) or "", text)
