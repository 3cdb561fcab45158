"""The OpenAPI 3.1 description of the server's JSON API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_spec"]

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_AUTH: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}, {"ConsoleCookie": []}]
_SID = {"name": "sid", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}


def _json(ref: str, desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def openapi_spec(version: str) -> dict[str, Any]:
    from liveness.apps.serve.openapi_platform import platform_paths, platform_schemas

    spec = _spec(version)
    spec["paths"].update(platform_paths())
    spec["components"]["schemas"].update(platform_schemas())
    return spec


def _spec(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "interview-liveness server",
            "version": version,
            "description": (
                "Create a session, stream video to it over WebRTC (SDP offer/answer, no trickle ICE), "
                "and read live results on the data channel (protocol liveness.dc/1, see docs/protocol.md), "
                "on the watch WebSocket, or through status/report."
            ),
        },
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
                "ConsoleCookie": {"type": "apiKey", "in": "cookie", "name": "liveness_console"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "SessionCreate": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string", "maxLength": 200},
                        "token_ttl_s": {"type": "number", "minimum": 10, "maximum": 604800},
                    },
                },
                "SessionCreated": {
                    "type": "object",
                    "required": ["id", "join_url", "token", "token_expires"],
                    "properties": {
                        "id": {"type": "string"},
                        "label": {"type": "string"},
                        "state": {"type": "string"},
                        "join_url": {"type": "string", "description": "single-use candidate link"},
                        "token": {"type": "string"},
                        "token_expires": {"type": "number", "description": "Unix time"},
                        "offer_url": {"type": "string"},
                        "candidate_offer_url": {"type": "string"},
                        "watch_url": {"type": "string"},
                        "watch_token": {"type": ["string", "null"], "description": (
                            "lets a page watch this one session without the API key (offered as the "
                            "WebSocket subprotocol 'liveness-watch.<token>' beside 'liveness'); null "
                            "when the server has no API key. Never give it to the candidate's page")},
                        "protocol": {"type": "string", "const": "liveness.dc/1"},
                    },
                },
                "Offer": {
                    "type": "object",
                    "required": ["sdp"],
                    "properties": {
                        "type": {"type": "string", "const": "offer"},
                        "sdp": {"type": "string", "description": "complete offer (ICE gathering finished), with one video track"},
                        "source": {"type": "string", "description": "camera | screen | ... (free text, stored)"},
                    },
                },
                "Answer": {
                    "type": "object",
                    "required": ["type", "sdp"],
                    "properties": {"type": {"type": "string", "const": "answer"}, "sdp": {"type": "string"}, "session": {"type": "string"}},
                },
                "Command": {
                    "type": "object",
                    "required": ["v", "type", "cmd"],
                    "properties": {
                        "v": {"type": "string", "const": "liveness.dc/1"},
                        "type": {"type": "string", "const": "command"},
                        "id": {"type": ["string", "integer"]},
                        "cmd": {"type": "string", "enum": ["start_challenges", "set_crop", "clear_crop", "stop", "ping"]},
                        "args": {"type": "object"},
                    },
                },
                "Ack": {
                    "type": "object",
                    "properties": {
                        "v": {"type": "string"}, "type": {"const": "ack"}, "id": {"type": ["string", "null"]},
                        "cmd": {"type": "string"}, "ok": {"type": "boolean"}, "error": {"type": ["string", "null"]},
                    },
                },
                "Status": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "label": {"type": "string"},
                        "state": {"type": "string", "enum": ["created", "connecting", "live", "ended", "expired"]},
                        "source": {"type": ["string", "null"]}, "created": {"type": "number"},
                        "started": {"type": ["number", "null"]}, "ended": {"type": ["number", "null"]},
                        "end_reason": {"type": ["string", "null"]},
                        "counters": {"type": ["object", "null"], "description": "received, analysed, dropped, skipped, errors, fps, latency p50/p95"},
                        "last_result": {"type": ["object", "null"], "description": "the latest result message body"},
                        "signals": {"type": "object"}, "verdict": {"type": ["object", "null"]},
                    },
                },
                "Report": {
                    "type": "object",
                    "properties": {
                        "schema": {"const": "liveness.serve-report/1"}, "version": {"type": "string"},
                        "session": {"type": "object"}, "events": {"type": "array", "items": {"type": "object"}},
                        "seconds": {"type": "array", "items": {"type": "object"}, "description": "per-second summaries: frames, face_fraction, mean yaw/pitch/roll, mean per-frame signal values"},
                        "thumbnails": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
        "paths": {
            "/api/health": {"get": {"summary": "liveness probe", "responses": {"200": {"description": "OK"}}}},
            "/api/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OK"}}}},
            "/api/sessions": {
                "post": {
                    "summary": "create a session and its single-use candidate link",
                    "security": _AUTH,
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionCreate"}}}},
                    "responses": {"201": _json("SessionCreated", "created"), "400": _ERR, "401": _ERR, "503": _ERR},
                },
                "get": {"summary": "recent sessions", "security": _AUTH, "responses": {"200": {"description": "OK"}, "401": _ERR}},
            },
            "/api/sessions/{sid}": {
                "get": {"summary": "session status", "security": _AUTH, "parameters": [_SID],
                        "responses": {"200": _json("Status"), "401": _ERR, "404": _ERR}},
            },
            "/api/sessions/{sid}/report": {
                "get": {"summary": "stored record: events, per-second summaries, signals, verdict", "security": _AUTH,
                        "parameters": [_SID], "responses": {"200": _json("Report"), "401": _ERR, "404": _ERR}},
            },
            "/api/sessions/{sid}/report.html": {
                "get": {"summary": "the stored record as the self-contained HTML evidence report", "security": _AUTH,
                        "parameters": [_SID],
                        "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}, "401": _ERR, "404": _ERR}},
            },
            "/api/sessions/{sid}/thumbnails/{tid}.jpg": {
                "get": {"summary": "an evidence thumbnail (only stored when the server runs with --thumbnails)",
                        "security": _AUTH,
                        "parameters": [_SID, {"name": "tid", "in": "path", "required": True, "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}}, "404": _ERR}},
            },
            "/api/sessions/{sid}/offer": {
                "post": {
                    "summary": "console peer: SDP offer in, answer out; the data channel 'liveness' gets results",
                    "security": _AUTH, "parameters": [_SID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Offer"}}}},
                    "responses": {"200": _json("Answer"), "400": _ERR, "401": _ERR, "404": _ERR, "409": _ERR},
                },
            },
            "/api/sessions/{sid}/commands": {
                "post": {
                    "summary": "send a protocol command (same JSON as on the data channel)", "security": _AUTH,
                    "parameters": [_SID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Command"}}}},
                    "responses": {"200": _json("Ack"), "400": _ERR, "401": _ERR, "404": _ERR, "409": _json("Ack", "refused")},
                },
            },
            "/api/sessions/{sid}/stop": {
                "post": {"summary": "end the session (the record is kept)", "security": _AUTH, "parameters": [_SID],
                         "responses": {"200": _json("Status"), "401": _ERR, "404": _ERR}},
            },
            "/api/sessions/{sid}/watch": {
                "get": {"summary": "WebSocket: every liveness.dc/1 message of the session; accepts commands",
                        "description": ("With the API key, or the session's watch_token as the subprotocol "
                                        "'liveness-watch.<token>' (offered with 'liveness', which the answer "
                                        "selects). A browser's Origin must be the server's own or a --cors-origin."),
                        "security": _AUTH, "parameters": [_SID],
                        "responses": {"101": {"description": "switching protocols"}, "401": _ERR, "403": _ERR,
                                      "404": _ERR}},
            },
            "/api/join/{token}/offer": {
                "post": {
                    "summary": "candidate peer: SDP offer with the single-use token (consumes it); CORS-enabled for configured origins",
                    "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Offer"}}}},
                    "responses": {"200": _json("Answer"), "400": _ERR, "404": _ERR, "409": _ERR},
                },
            },
        },
    }
