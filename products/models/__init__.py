from products.models.domains import Domain, DomainMembership
from products.models.ports import Column, DataSource, OutputPort
from products.models.products import DataProduct, Tag
from products.models.runs import SchemaRefreshRun

__all__ = [
    "Column",
    "DataProduct",
    "DataSource",
    "Domain",
    "DomainMembership",
    "OutputPort",
    "SchemaRefreshRun",
    "Tag",
]
