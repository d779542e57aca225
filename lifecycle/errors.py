"""The errors the engine raises on purpose; all derive from one base."""


class LifecycleError(Exception):
    """Base class of every error the engine raises on purpose."""


class ContractError(LifecycleError):
    """An inbound message breaks the wire contract; it names the field and the reason."""

    def __init__(self, reason: str, *, field: str = "$") -> None:
        super().__init__(f"{reason} (at {field})" if field != "$" else reason)
        self.reason = reason
        self.field = field


class RulebookError(LifecycleError):
    """A rulebook file cannot be read or does not make sense."""


class TransientError(LifecycleError):
    """A failure that goes away by itself (other writers, a busy resource): try again later."""


class LeadNotFoundError(LifecycleError):
    """No lead has the given id or identity."""


class ConfigurationError(LifecycleError):
    """A setting (environment variable or option) has an unusable value."""
