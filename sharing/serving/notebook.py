"""What the Data tab's "Use in Python" card shows: the notebook client's read of this
product with this reader's access (their columns, their port), as code to copy.

String literals are written with json.dumps, as the metric page's notebook call is: a JSON
string is a valid Python string literal. The grant's row filter is not repeated as a
filter (the portal applies it to every read; a filter naming a column outside the grant
would be refused): the snippet says it in words, as a comment.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Sequence

DEFAULT_FRAME_NAME = "frame"


def frame_name(product_slug: str) -> str:
    """A Python name for the product's DataFrame: `orders`, `daily_revenue`."""
    name = re.sub(r"\W+", "_", product_slug).strip("_").lower()
    if not name.isidentifier() or keyword.iskeyword(name) or name in ("portal", "pd"):
        return DEFAULT_FRAME_NAME
    return name


def notebook_read_snippet(
    *,
    base_url: str,
    product_key: str,
    product_slug: str,
    columns: Sequence[str] | None,
    port_slug: str | None,
    row_filter_words: Sequence[str] = (),
    masked: Sequence[str] = (),
) -> str:
    """Python that reads the product into pandas with `portal_client`. `columns`: the
    reader's columns when their access names some (None: every column, left out);
    `port_slug`: only when the product has several ports."""
    lines = [
        "from portal_client import Portal",
        "",
        f"portal = Portal({json.dumps(base_url)})  # your token from PORTAL_TOKEN",
    ]
    if row_filter_words:
        lines.append(f"# Your grant serves only rows where {' and '.join(row_filter_words)}.")
    if masked:
        lines.append(f"# Served masked (****): {', '.join(masked)}.")
    arguments = [json.dumps(product_key)]
    if columns:
        arguments.append(f"columns={json.dumps(list(columns), ensure_ascii=False)}")
    if port_slug:
        arguments.append(f"port={json.dumps(port_slug)}")
    call = f"{frame_name(product_slug)} = portal.read("
    if len(arguments) == 1:
        lines.append(f"{call}{arguments[0]})")
    else:
        lines.append(call)
        lines.extend(f"    {argument}," for argument in arguments)
        lines.append(")")
    return "\n".join(lines)
