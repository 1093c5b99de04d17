"""Writes and workflows of the catalog. Pages, API views, tasks and commands call these."""

from products.services.domains import domain_create, domain_member_set
from products.services.ports import (
    column_update,
    data_source_create,
    output_port_create,
    output_port_update,
)
from products.services.products import (
    product_create,
    product_deprecate,
    product_publish,
    product_retire,
    product_update,
)
from products.services.schema_refresh import (
    schema_refresh_execute,
    schema_refresh_reap,
    schema_refresh_request,
)
from products.services.search_index import product_search_index_update

__all__ = [
    "column_update",
    "data_source_create",
    "domain_create",
    "domain_member_set",
    "output_port_create",
    "output_port_update",
    "product_create",
    "product_deprecate",
    "product_publish",
    "product_retire",
    "product_search_index_update",
    "product_update",
    "schema_refresh_execute",
    "schema_refresh_reap",
    "schema_refresh_request",
]
