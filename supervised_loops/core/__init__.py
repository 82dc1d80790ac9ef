"""The actor core: what every actor kind shares, and nothing of any kind in particular.

* `core.actor` - the mailbox: tell/ask, the control and user lanes, dead
  letters, events, the link to a parent.
* `core.parent` - the parent protocol: what a supervising actor offers its
  children (exit reports, readiness, the retry say, the backoff).
* `core.exit` - how a run's end becomes an `Exit` (one pure function).
* `core.run_record` - the run record every kind extends (run id, flags, task).
* `core.replies` - the pending replies of a run and how they are answered.
* `core.runnable` - the runnable base: launch, cancellation absorption,
  readiness, the exit report from the run's last step.
* `core.deadlines` - the deadlines of pending asks: one heap and one timer
  per event loop.

May import: the pure top-level modules. Never ``loops``, ``workers``,
``supervision`` or ``service``.
"""
