"""``liveness serve``: the WebRTC bridge, interviewer console, candidate page and JSON API."""

from liveness.apps.serve.app import create_app, plugin_dir
from liveness.apps.serve.cli import add_serve_parser, run_serve
from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.protocol import PROTOCOL

__all__ = ["PROTOCOL", "ServeOptions", "add_serve_parser", "create_app", "plugin_dir", "run_serve"]
