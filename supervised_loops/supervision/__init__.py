"""Supervision: OTP-style supervisors of any runnable actor.

The parts, lowest first: `specs` (the vocabulary and child specs),
`intensity` (the restart window), `child` (the record of one child and its
transitions), `policy` (what an exit means, pure), `run` (a supervisor's run
record and queue items), `core` (children, waiting, starting one child, exit
bookkeeping), `shutdown` (three-phase termination), `restarts` (carrying out
the policy), `engine` (the task, control messages, status), `verbs` (the OTP
verbs' bodies) and `face` (``Supervisor``, the public face).

May import: ``core`` and the pure top-level modules; never ``loops``,
``workers`` or ``service``.
"""
