"""Pieces the domain packages of dispatch share: one endpoint preamble, one row-to-view copy."""
