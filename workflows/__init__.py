"""The rules of the work: state machines, risk and deadline policy, intake normalization, triage.

Pure where possible; imports only `db`.
"""
