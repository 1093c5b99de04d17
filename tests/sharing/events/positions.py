"""An event's position as the event tests read it."""

from portal.core.events import events_sequence
from portal.models import Event


def event_position(event: Event) -> int:
    """The event's position: given after its commit, in commit order, by the first reader
    (each runs `events_sequence` before it reads, as this does). What readers follow."""
    events_sequence()
    return Event.objects.get(pk=event.pk).position
