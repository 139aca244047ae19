"""Path parameters the voice API and the operator's pages share."""

from typing import Annotated

from fastapi import Path

# Twilio's call ids: letters and digits, nothing a path could be bent with.
CallSid = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
