"""Pure rules of casework: the help plan's needs and departments, re-planning, the assessment
form's proposal, wrap-up types. Read from the deployment's casework.toml."""
