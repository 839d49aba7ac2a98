"""Per-user home directories: which login names can name one, and making it on first login."""

from __future__ import annotations

import os


def safe_user(username: str) -> bool:
    """Whether ``username`` can name a directory: no separator, no dot names, no NUL."""
    return bool(username) and username not in (".", "..") and not set(username) & {"/", "\0"}


def home_of(template: str, username: str) -> str:
    """``template`` with ``{user}`` replaced (literally: no other braces are interpreted)."""
    return os.path.abspath(template.replace("{user}", username))


def make_home(home: str, mode: int) -> None:
    """Make ``home`` with exactly ``mode`` if it is missing; its parents with the umask's."""
    if os.path.isdir(home):
        return
    os.makedirs(os.path.dirname(home), exist_ok=True)
    try:
        os.mkdir(home, 0o700)
    except FileExistsError:
        return  # a concurrent first login made it
    # Exactly the configured mode, whatever the umask says.
    os.chmod(home, mode)
