"""SMS keywords (退订 / STOP, 开始 / START, 帮助 / HELP): only a whole message counts.

A tip that merely contains "取消" or "stop" is a tip. Case, full-width forms and the
punctuation and spaces around the word are ignored, so "ＳＴＯＰ", "stop!" and " 退订。"
are all STOP.
"""

import unicodedata
from typing import Literal

from workflows import config

Keyword = Literal["stop", "start", "help"]
_EDGES = " \t\r\n.,!?;:'\"()[]<>-~。，！？；：、“”‘’（）【】《》…～"


def _canonical(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(_EDGES).upper()


def keyword(text: str) -> Keyword | None:
    word = _canonical(text)
    if not word or len(word) > 20:
        return None
    sms = config.channels().sms
    for name in ("stop", "start", "help"):
        if word in {_canonical(k) for k in getattr(sms, f"{name}_keywords")}:
            return name
    return None
