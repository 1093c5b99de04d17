"""Webhook subscriptions: signed, ordered, retried deliveries of the outbox events."""
