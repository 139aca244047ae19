"""Phone numbers: one normal form (E.164) for matching, one masked form for lists and logs."""

import phonenumbers


def normalize_phone(raw: str, region: str = "CN") -> str | None:
    """E.164 for a valid number, else None. Mainland numbers may come without +86."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str | None) -> str | None:
    """Keep the first three and last four national digits: `138****8000`."""
    if not e164:
        return e164
    digits = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(value: str | None) -> str | None:
    """Resident ID numbers: keep the first six (region) and last four."""
    if not value or len(value) < 10:
        return "*" * len(value) if value else value
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
