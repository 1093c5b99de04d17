"""The refusal of a federated query, in a module of its own so that the API's views
import it without loading sqlglot (see docs/architecture.md, the import order)."""


class QueryRefused(ValueError):
    """A query the portal will not run; `status` is the HTTP status that says why (400
    bad SQL, 403 outside the reader's access, 404 an unknown product, 429/503 a
    guardrail) and the message names the construct, column or product."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
