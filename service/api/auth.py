"""The API-key check: a dependency on the keyed routers, declared in the OpenAPI as two security schemes."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import Unauthorized
from ..keys import ApiKeys
from ..logs import key_name
from .common import ErrorBody

log = logging.getLogger("service.api")

WHEN = "Needed when the server has API keys (SALIENCY_API_KEYS or SALIENCY_API_KEY_HASHES)."
# auto_error=False: either header will do, and a server without keys needs neither.
bearer = HTTPBearer(scheme_name="bearer", description=WHEN, auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", scheme_name="apiKey", description=WHEN, auto_error=False)

RESPONSES: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody, "description": "Missing or unknown API key."}}


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> None:
    """Lets the request through with a configured key (or when none are configured), else 401."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys:
        return
    presented = credentials.credentials if credentials else header_key
    name = keys.name_of(presented) if presented else None
    if name is None:
        log.info("refused %s %s: %s API key", request.method, request.url.path, "unknown" if presented else "no")
        raise Unauthorized(
            "missing or unknown API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The name, never the key: for this request's log lines and its metrics label.
    key_name.set(name)
    request.state.key_name = name
