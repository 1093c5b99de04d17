"""What a reader is told when a data source cannot be read.

A driver's error names the source's host, database, schema, tables and sometimes values;
it is technical detail for the product's domain members and admins (who can act on it),
never for a grantee, a share-link recipient or a Delta Sharing recipient, who get a
fixed message instead. The same rule for every read channel (API, pages, metrics).
"""

from __future__ import annotations

from products.connectors import SourceAccessRefused
from products.models import DataProduct
from sharing.access.decision import reads_everything

SOURCE_UNREADABLE = (
    "The data source could not be read. Try again later; if it keeps failing, tell the "
    "product's team (its members see the technical detail)."
)
SOURCE_REFUSED = (
    "The data source refused the portal's access to this data. Tell the product's team: "
    "its operators must grant the portal's account read access."
)
DATA_MISSING = (
    "The product's data could not be found at its source. The product's owners and "
    "stewards can point the port at an existing table or file and refresh its schema."
)


def source_error_message(*, user, product: DataProduct, exc: Exception) -> str:
    """The message of a 502 (or of a 403 when the source refused the portal's account:
    SourceAccessRefused, its `status`) for `user`: the technical detail (the source's
    address, the driver's error: ConnectorError.technical) for members and admins, else a
    fixed message."""
    refused = isinstance(exc, SourceAccessRefused)
    if reads_everything(user=user, product=product):
        what = "refused the portal's access" if refused else "could not be read"
        return f"The data source {what}: {getattr(exc, 'technical', exc)}"
    return SOURCE_REFUSED if refused else SOURCE_UNREADABLE


def shows_source_detail(*, user, product: DataProduct) -> bool:
    """Whether `user` may be shown a source's own error text (members and admins)."""
    return reads_everything(user=user, product=product)
