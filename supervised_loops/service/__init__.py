"""The service layer: what runs a tree as a process and lets people steer it.

`runner` (run/serve: signals, ordered shutdown, exit status), `control`
(the local control socket: JSON protocol, server, client), `cli` (the
`supervised-loops` console command) and `render` (a status snapshot drawn
as a text tree). This layer sits on top of everything else: it may import
the actor core, loops and supervision; nothing below imports it.
"""
