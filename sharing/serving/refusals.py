"""Why a read cannot be served, with its HTTP status: raised by the read plan and by the
Arrow encoding of values, answered by every channel's view."""


class ReadRefused(Exception):
    """A read that cannot be served: `status` is the HTTP status (400, 403, 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
