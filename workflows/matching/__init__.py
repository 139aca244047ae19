"""Matching reports and child records that are about the same child: normalization,
blocking keys and the scored signals (pure rules; the service is dispatch.children)."""

from workflows.matching.keys import keys
from workflows.matching.score import Match, Profile, score, thresholds

__all__ = ["Match", "Profile", "keys", "score", "thresholds"]
