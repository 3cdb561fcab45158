"""``liveness serve``: the WebRTC bridge, interviewer console, candidate page and JSON API."""

from ._app import create_app, plugin_dir
from ._cli import add_serve_parser, run_serve
from ._options import ServeOptions
from ._protocol import PROTOCOL

__all__ = ["PROTOCOL", "ServeOptions", "add_serve_parser", "create_app", "plugin_dir", "run_serve"]
