"""The service layer: what runs a tree as a process and lets people steer it.

`runner` (run/serve: signals, ordered shutdown, exit status); `control`
(the local control socket's public names), made of `control_protocol` (the
JSON requests and replies, validated), `control_server` (every request
answered, connections bounded) and `control_client`; `cli` (the
`supervised-loops` console command; its parser in `cli_parser`) with `target` (loading its TARGET),
`startup` (signals before the tree runs), `live_view` and `ctl_output`; and
`render` (a status snapshot drawn as a text tree). This layer sits on top
of everything else: it may import the actor core, loops, supervision and
the telemetry extras (served next to the metrics); nothing below imports it.
"""
