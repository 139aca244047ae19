"""Triage: the judgement the service makes of every text it receives.

`judge(text)` is the one entry point (web-form accounts, forwards, SMS threads, call and
voicemail notes, `POST /api/v1/triage`); `classify` is the older keyword pass it builds on.
"""

from workflows.triage.judge import judge
from workflows.triage.judgement import NOT_A_CASE, Judgement
from workflows.triage.keywords import MAX_TEXT, Triage, classify
from workflows.triage.text import warm

__all__ = ["MAX_TEXT", "NOT_A_CASE", "Judgement", "Triage", "classify", "judge", "warm"]
