"""Rules of a case: its workflow, intake, emergency, receipt codes."""
