"""Errors a user can act on: the CLI prints their message as one line, without a traceback."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message alone tells the user what went wrong and what to check."""

    exit_code: int = 2


class ConfigurationError(UserFacingError):
    """A setting or URL is malformed."""


class DatabaseUnavailable(UserFacingError):
    """The PostgreSQL server cannot be reached or refuses us."""


class PoolExhausted(UserFacingError):
    """No pooled connection could be had within acquire_timeout_s, or the wait queue is full."""


class BudgetExceeded(UserFacingError):
    """The configured worst-case number of connections does not fit the server."""

    exit_code = 3  # as `budget --check`


class BadDumpError(UserFacingError):
    """A file that is not a register dump at all: truncated, HTML, wrong shape."""


class FeedError(UserFacingError):
    """The register's change feed, or a unit it names, could not be read: that page is not applied."""
