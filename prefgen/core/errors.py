"""Errors meant for the user: the CLI prints their message as one line, without a traceback."""


class PrefgenError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class RecipeError(PrefgenError):
    """A recipe that cannot be read or does not validate."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "invalid recipe"
        more = f" (and {len(self.problems) - 1} more; run `prefgen validate {path}`)" if len(self.problems) > 1 else ""
        super().__init__(f"{path}: {first}{more}")


class StoreError(PrefgenError):
    """A missing, corrupt or locked store, or an unknown or invalid version."""


class QueryError(PrefgenError):
    """SQL that fails, or that tries to change the store."""
