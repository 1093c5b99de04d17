"""How people are named to other people: one rule for pages, notifications and messages."""


def display_name(user, *, nobody: str = "") -> str:
    """A person's full name, else their username; `nobody` for no person."""
    if user is None:
        return nobody
    full_name = (user.get_full_name() or "").strip() if hasattr(user, "get_full_name") else ""
    return full_name or getattr(user, "username", "") or nobody
