"""Reverse ETL: syncs from data products into operational systems (docs/syncs.md)."""
