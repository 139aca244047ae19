"""What callers hear and texters read, from `channels.toml`, filled with the hotline's facts.

Every text may use {name} and {hours}; the caller of `text` supplies the rest (a receipt
code, a voicemail's length). Deployments reword them without touching code.
"""

from workflows import config
from workflows.telephony import opening_hours


def text(channel: str, key: str, **values: object) -> str:
    """`channel` is "sms" or "voice". An empty configured text stays empty (no reply)."""
    template = config.channels().texts(channel)[key]
    if not template:
        return ""
    name = config.channels().hotline.name
    return template.format(name=name, hours=opening_hours.describe(), **values)
