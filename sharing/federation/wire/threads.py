"""Django calls made by the wire server: always in a worker thread (asyncio.to_thread),
never on the event loop, which would block every connection (and the ORM refuses to run
in async context). The threads are shared by every connection's work, so each call
closes the thread's database connections when it is done (with the pool configured,
they go back to it): nothing stays open in a thread that may not run again for hours."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")


def django_call(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, run with the thread's unusable connections dropped first and every
    connection closed after."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return call
