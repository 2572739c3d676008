"""User-facing errors: one line that says what went wrong, where, and what to do."""


class RagortuneError(Exception):
    """A mistake the user can fix; the CLI prints it in one line and exits 2."""


class InputError(RagortuneError):
    """A file, line or field the user supplied is wrong."""


class ConfigError(RagortuneError):
    """Settings are inconsistent or missing."""


class KnowledgeBaseError(RagortuneError):
    """The knowledge base is missing, or was built with other settings."""
