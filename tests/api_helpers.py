"""Helpers for the JSON API tests: tokens, posting JSON, photos."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

from PIL import Image

from regbackoffice.api_auth import hash_token
from regbackoffice.extensions import db
from regbackoffice.models import ApiClient, ApiToken, utcnow

# Every path of DESIGN 8, in its order.
API_PATHS = (
    "/api/v1/auth/token",
    "/api/v1/cylinders/query",
    "/api/v1/tags/bind",
    "/api/v1/fillings/check",
    "/api/v1/fillings",
    "/api/v1/inspections",
    "/api/v1/traces",
    "/api/v1/cylinders/trail",
    "/api/v1/cylinders/changes",
)


def token_for(client: ApiClient, *, lifetime: timedelta = timedelta(hours=2)) -> str:
    """A live bearer token for ``client``, stored as the token endpoint would."""
    import secrets

    token = secrets.token_urlsafe(16)
    db.session.add(
        ApiToken(client_id=client.id, token_hash=hash_token(token), expires_at=utcnow() + lifetime)
    )
    db.session.flush()
    return token


def post_json(http, path: str, body, token: str | None = None, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return http.post(path, json=body, headers=headers)


def assert_envelope(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert set(payload) == {"code", "message", "data"}
    assert payload["code"] == str(status)
    assert isinstance(payload["message"], str) and payload["message"]
    return payload


def png_base64(size=(64, 48)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()
