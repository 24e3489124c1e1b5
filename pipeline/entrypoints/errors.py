"""The API's error answers: a 404 byte for byte as an unmatched route's, 403, 401 with ``WWW-Authenticate``,
422 as ``{errors: [{field, message}]}``, and a 500 that logs the exception's type and route only (an
exception's text can carry personal data). Error bodies name fields, never values."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)
NOT_FOUND = {"detail": "Not Found"}  # byte for byte what an unmatched route answers


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def forbidden() -> ApiError:
    return ApiError(403, {"detail": "forbidden"})


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, {"errors": [{"field": field, "message": message}]})


def conflict(error: Exception) -> ApiError:
    return ApiError(409, {"detail": str(error)})


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def _api_error(_: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body, status_code=error.status, headers=headers)

    @app.exception_handler(Exception)
    def _unexpected(request: Request, error: Exception) -> JSONResponse:
        route = request.scope.get("route")
        log.error("unexpected %s on %s %s", type(error).__name__, request.method, getattr(route, "path", "?"))
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg", "invalid")}
                  for e in error.errors()]
        return JSONResponse({"errors": errors}, status_code=422)
