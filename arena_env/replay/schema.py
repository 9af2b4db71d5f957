"""The canonical event schema of replayed logs (a pyarrow schema) and the names every module shares.

One row is one event of one case (a lead, a ticket, an impression: whatever the manifest's
``case.id_field`` names).  Columns:

==================  ===========================  ========  =============================================
column              type                         required  meaning
==================  ===========================  ========  =============================================
``case_id``         string                       yes       the case the event belongs to
``event_id``        string                       yes       unique over the log
``timestamp``       timestamp[us, tz=UTC]        yes       when it happened (aware; see :mod:`.log`)
``seq``             int64                        no        order within the case among equal timestamps
``event_type``      string                       yes       one of :data:`EVENT_TYPES`
``actor_type``      string                       no        who acted (``agent``, ``system``, ``user``...)
``actor_id``        string                       no
``channel``         string                       no        email, phone, web...
``state_before``    string                       no        the case's state before the event
``state_after``     string                       no        ... and after it (``state.changed``)
``outcome``         string                       no        the label of an ``outcome.recorded`` event
``action``          string                       no        the logged action of a decision event
``propensity``      double                       no        the logging policy's probability of ``action``
``source_system``   string                       no
``correlation_id``  string                       no        links a ``decision.requested`` to its execution
``payload``         string (JSON)                no        free-form, kept verbatim, never a feature
``metadata``        string (JSON)                no        free-form, kept verbatim, never a feature
``object_refs``     list<struct<object_type,     no        object-centric references (see
                    object_id, role>>                      :meth:`~.log.EventLog.filter_by_object`)
==================  ===========================  ========  =============================================

Any other column of the input is an *attribute*: numeric, boolean or string columns become snapshot
features (last value known at the snapshot's time) unless the manifest lists them as ``labels``
(outcome labels and back-filled state, never shown to a policy).  A loaded log also carries ``row``
(int64): the event's 1-based row in its source file, so that every later message can point there.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "entity.created", "entity.closed", "entity.reopened", "state.changed", "interaction.occurred",
    "decision.requested", "decision.executed", "outcome.recorded", "timer.elapsed", "escalation.triggered",
    "assignment.changed",
)
"""The event types of the canonical schema, in the order of their integer codes."""

TYPE_CODE: dict[str, int] = {t: i for i, t in enumerate(EVENT_TYPES)}

REQUIRED: tuple[str, ...] = ("case_id", "event_id", "timestamp", "event_type")
STRING_FIELDS: tuple[str, ...] = (
    "actor_type", "actor_id", "channel", "state_before", "state_after", "outcome", "action", "source_system",
    "correlation_id", "payload", "metadata",
)
CANONICAL: tuple[str, ...] = (*REQUIRED[:3], "seq", REQUIRED[3], *STRING_FIELDS[:7], "propensity",
                              *STRING_FIELDS[7:], "object_refs")
"""Every canonical column, in the schema's order (attributes follow, then ``row``)."""


def object_ref_type():
    import pyarrow as pa

    return pa.list_(pa.struct([("object_type", pa.string()), ("object_id", pa.string()), ("role", pa.string())]))


def canonical_schema():
    """The pyarrow schema of the canonical columns (without attributes and ``row``)."""
    import pyarrow as pa

    types = {"case_id": pa.string(), "event_id": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"),
             "seq": pa.int64(), "event_type": pa.string(), "propensity": pa.float64(),
             "object_refs": object_ref_type()}
    return pa.schema([pa.field(name, types.get(name, pa.string()), nullable=name not in REQUIRED)
                      for name in CANONICAL])
