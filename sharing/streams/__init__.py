"""Streaming data products: output ports on NATS JetStream streams, served governed."""
