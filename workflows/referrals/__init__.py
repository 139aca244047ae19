"""Rules of a referral: its workflow, risk policy and deadlines."""
