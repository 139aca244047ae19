"""Staff: sign-in, roles, scope, audit and notifications."""
