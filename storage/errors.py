"""Typed storage errors. Messages never contain connection URLs or passwords."""

from __future__ import annotations


class StorageError(Exception):
    """Base class for everything the storage layer raises on purpose."""


class DatabaseUnavailableError(StorageError):
    """The database could not be reached or refused the operation (closed, locked, gone)."""


class DatabaseURLError(StorageError, ValueError):
    """The database URL names a driver we do not support."""


class InvalidFieldError(StorageError, ValueError):
    """A field name, status or value passed to the repository is not acceptable."""


class InvalidAmountError(InvalidFieldError):
    """A money amount is not an integer, has the wrong sign, or is absurdly large."""


class UnknownUserError(StorageError, LookupError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"unknown user {user_id}")
        self.user_id = user_id


class InsufficientBalanceError(StorageError):
    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"insufficient balance: have {balance}, need {cost}")
        self.balance = balance
        self.cost = cost


class InFlightLimitError(StorageError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"too many generations in progress (limit {limit})")
        self.limit = limit


class DuplicateError(StorageError):
    """The operation was already done once and must not be repeated (e.g. a second refund)."""


class StaleTransitionError(StorageError):
    """For callers that treat a refused compare-and-set as an error; the repository returns False."""
