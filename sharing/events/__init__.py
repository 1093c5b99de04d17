"""Following what happens in the portal: the outbox of events (portal.core.events) read
back through the replay API, Server-Sent Events and the NATS publisher."""
