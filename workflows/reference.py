"""Reference data as the code sees it: labels and valid codes, read from the project's config
(reference.toml, checked: `workflows.config.schema.ReferenceConfig`)."""

from functools import cache

from workflows import config


@cache
def reference() -> dict:
    """The file as read, for the schema's upsert of the reference rows (dispatch.ops.schema);
    the labels below read the checked model."""
    return config.load("reference")


def category_labels() -> dict[str, str]:
    return {code: row[0] for code, row in config.reference().categories.items()}


def allowed(labels: dict) -> str:
    """The codes a field takes, with their labels, for a message saying what is allowed."""
    return "、".join(f"{code}（{name}）" for code, name in labels.items())


def department_labels() -> dict[str, str]:
    return dict(config.reference().departments)


def situation_labels() -> dict[int, str]:
    return {int(k): v for k, v in config.reference().situations.items()}


def reporter_role_labels() -> dict[str, str]:
    return dict(config.reference().reporter_roles)


def gender_labels() -> dict[str, str]:
    return dict(config.reference().genders)


def jurisdictions() -> list[tuple[str, str, int, str | None]]:
    """(code, name, level, parent code) in the config's order, parents first."""
    return [(c, n, lvl, p or None) for c, n, lvl, p in config.reference().network.jurisdictions]


def jurisdiction_labels() -> dict[str, str]:
    return {code: name for code, name, _, _ in jurisdictions()}
