"""The staff consoles: server-rendered pages for operators, caseworkers, liaisons and
supervisors, on top of the same services, scope filters and audit as the staff API."""
