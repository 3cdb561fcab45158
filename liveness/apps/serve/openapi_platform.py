"""The OpenAPI paths and schemas of recordings over REST, webhook deliveries and the face
gallery (merged into :func:`liveness.apps.serve.openapi.openapi_spec`)."""

from __future__ import annotations

from typing import Any

__all__ = ["platform_paths", "platform_schemas"]

_AUTH: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}, {"ConsoleCookie": []}]
_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_RID = {"name": "rid", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}


def _json(ref: str, desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def platform_schemas() -> dict[str, Any]:
    verdict = {"type": ["object", "null"], "properties": {
        "label": {"type": "string"}, "risk": {"type": ["number", "null"]},
        "reasons": {"type": "array", "items": {"type": "string"}}}}
    match = {"type": "object", "properties": {
        "candidate": {"type": "string"}, "distance": {"type": "number"}, "source": {"type": "string"},
        "created": {"type": "number"}, "note": {"type": "string", "const": "possible match — for human review"}}}
    return {
        "ReviewUpload": {
            "type": "object", "required": ["video"],
            "properties": {
                "video": {"type": "string", "format": "binary", "description": "the recording (streamed to disk, "
                          "size-limited by --max-upload-mb, deleted after analysis)"},
                "reference": {"type": "array", "maxItems": 5, "items": {"type": "string", "format": "binary"},
                              "description": "reference photos or liveness.enrollment/1 files of the expected person"},
                "metadata": {"type": "string", "description": "a JSON object (at most 64 KiB), echoed back; "
                             "'candidate' names the candidate for the face gallery"},
            },
        },
        "ReviewQueued": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"}, "status": {"const": "queued"}, "metadata": {"type": "object"}}},
        "ReviewStatus": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "created": {"type": "number"}, "started": {"type": ["number", "null"]},
            "finished": {"type": ["number", "null"]}, "metadata": {"type": "object"},
            "file": {"type": "object", "properties": {"name": {"type": "string"}, "bytes": {"type": "integer"}}},
            "review": {"type": ["object", "null"], "description": "the liveness.review/1 document once done"},
            "matches": {"type": "array", "items": match,
                        "description": "other candidates with this face (only with --face-gallery)"},
            "error": {"type": ["string", "null"]}, "report": {"type": "string"}}},
        "WebhookBody": {"type": "object", "required": ["event", "id", "verdict", "created"], "properties": {
            "event": {"type": "string", "enum": ["review.completed", "review.failed", "session.ended",
                                                 "verdict.changed"]},
            "id": {"type": "string", "description": "the review or live session"},
            "verdict": verdict, "created": {"type": "number", "description": "Unix time"},
            "metadata": {"type": "object"}, "matches": {"type": "array", "items": match},
            "error": {"type": "string"}, "previous": {"type": ["string", "null"]}},
            "description": "POSTed to --webhook with X-Liveness-Event, X-Liveness-Delivery, X-Liveness-Attempt "
                           "and X-Liveness-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>"},
        "Deliveries": {"type": "object", "properties": {
            "enabled": {"type": "boolean"}, "url": {"type": ["string", "null"]},
            "deliveries": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "event": {"type": "string"}, "subject": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "attempts": {"type": "integer"}, "next_attempt": {"type": "number"},
                "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
                "created": {"type": "number"}, "delivered": {"type": ["number", "null"]}}}}}},
        "GalleryCandidates": {"type": "object", "properties": {
            "threshold": {"type": "number"}, "retention_days": {"type": "number"},
            "candidates": {"type": "array", "items": {"type": "object", "properties": {
                "candidate": {"type": "string"}, "entries": {"type": "integer"}, "first": {"type": "number"},
                "last": {"type": "number"}, "expires": {"type": "number"}}}}}},
    }


def platform_paths() -> dict[str, Any]:
    return {
        "/api/reviews": {"post": {
            "summary": "send a recording for review; the answer comes at once, the result by polling or webhook",
            "security": _AUTH,
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": {"$ref": "#/components/schemas/ReviewUpload"}}}},
            "responses": {"202": _json("ReviewQueued", "queued"), "400": _ERR, "401": _ERR,
                          "413": _ERR, "415": _ERR, "503": _ERR}}},
        "/api/reviews/{rid}": {
            "get": {"summary": "status of a recording, its review once done", "security": _AUTH,
                    "parameters": [_RID], "responses": {"200": _json("ReviewStatus"), "401": _ERR, "404": _ERR}},
            "delete": {"summary": "delete the review, its upload and its gallery entries", "security": _AUTH,
                       "parameters": [_RID], "responses": {"204": {"description": "deleted"}, "401": _ERR,
                                                           "404": _ERR}}},
        "/api/reviews/{rid}/report.html": {"get": {
            "summary": "the self-contained HTML evidence report of a done review", "security": _AUTH,
            "parameters": [_RID],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}, "401": _ERR, "404": _ERR,
                          "409": _ERR}}},
        "/api/webhooks/deliveries": {"get": {
            "summary": "recent webhook deliveries and their attempts", "security": _AUTH,
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string",
                                                             "enum": ["pending", "delivered", "failed"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": _json("Deliveries"), "400": _ERR, "401": _ERR}}},
        "/api/gallery/candidates": {"get": {
            "summary": "candidates in the face gallery (only with --face-gallery): names, entries, expiry",
            "security": _AUTH, "responses": {"200": _json("GalleryCandidates"), "401": _ERR, "404": _ERR}}},
        "/api/gallery/candidates/{name}": {"delete": {
            "summary": "delete every face gallery entry of one candidate now", "security": _AUTH,
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "deleted"}, "400": _ERR, "401": _ERR, "404": _ERR}}},
    }
