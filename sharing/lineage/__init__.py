"""OpenLineage run events for check runs and export runs, from the outbox."""
