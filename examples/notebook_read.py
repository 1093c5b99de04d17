"""Read a data product into pandas with the notebook client.

    export PORTAL_URL=https://portal.example.com
    export PORTAL_TOKEN=...   # from "API tokens" in the user menu (/my/tokens/)
    python examples/notebook_read.py sales.orders

The same lines work in a notebook cell. No password here: the token comes from the
environment.
"""

import sys
import warnings

from portal_client import (
    Portal,
    PortalError,
    PortalLimitClamped,
    PortalNotFound,
    PortalPermissionError,
)


def main(key: str) -> int:
    portal = Portal()
    print("Products you can see:")
    for product in portal.products()[:10]:
        print(f"  {product['key']:<30} {product['name']}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", PortalLimitClamped)
            frame = portal.read(key, limit=1000)
    except PortalNotFound as exc:
        print(f"{key}: {exc.detail}")
        return 1
    except PortalPermissionError as exc:
        print(f"{key}: {exc.detail} (ask for access on the product's page)")
        return 1
    except PortalError as exc:
        print(exc)
        return 1
    print(f"\n{key}: {len(frame):,} rows, columns {list(frame.columns)}")
    print(frame.dtypes.to_string())
    print(frame.head(10).to_string())
    # Only some columns, only some rows: the portal pushes both down to the source.
    first = frame.columns[0]
    subset = portal.read(key, columns=[first], filters=[(first, "is not null")], limit=5)
    print(f"\nThe first 5 non-null values of {first}:\n{subset.to_string()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "sales.orders"))
