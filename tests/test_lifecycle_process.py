"""A real ``supervised-loops run`` of the demo, steered by ``supervised-loops ctl``.

``ctl stop demo/ingest`` then ``ctl restart demo/ingest/writer`` is refused
(no loop runs under a stopped supervisor), ``ctl pause demo/ingest`` is
refused with a reason for an operator, ``ctl restart demo/ingest`` brings
the subtree back, and the service still shuts down cleanly (status 0, no
traceback). A loop's restart line says when its first iteration is due.
"""

from __future__ import annotations

from pathlib import Path

from test_cli import ask_socket, demo_service, run_ctl
from test_control import short_dir

__all__ = ["short_dir"]  # the fixture, shared with test_control


def test_real_process_stop_and_restart_of_a_sub_supervisor(tmp_path: Path, short_dir: Path) -> None:
    sock = short_dir / "demo.sock"
    with demo_service(tmp_path, sock):
        stopped = run_ctl(sock, "stop", "demo/ingest")
        assert stopped.returncode == 0, stopped.stderr

        orphan = run_ctl(sock, "restart", "demo/ingest/writer")
        assert orphan.returncode == 1
        assert orphan.stdout == ""
        assert orphan.stderr.startswith("error: ActorNotRunning: actor 'demo/ingest/writer'")
        assert orphan.stderr.endswith(": demo/ingest is stopped: restart it first\n")
        writer = ask_socket(sock, "ingest/writer")
        assert writer is not None
        assert writer["state"] == "stopped"

        paused = run_ctl(sock, "pause", "demo/ingest")
        assert paused.returncode == 1
        assert paused.stderr.startswith(
            "error: UnhandledMessage: actor 'demo/ingest' does not take Pause: "
        )
        assert "handle_message" not in paused.stderr

        restarted = run_ctl(sock, "restart", "demo/ingest")
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout == "demo/ingest: Restart done at iteration 0, a new run has begun\n"
        ingest = ask_socket(sock, "ingest")
        assert ingest is not None
        assert ingest["state"] == "running"
        assert {c["name"]: c["state"] != "stopped" for c in ingest["children"]} == {
            "writer": True,
            "poller": True,
        }

        beat = run_ctl(sock, "restart", "demo/heartbeat")
        assert beat.returncode == 0, beat.stderr
        assert beat.stdout.startswith("demo/heartbeat: Restart done at iteration 0, next run ")
