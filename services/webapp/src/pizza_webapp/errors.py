"""Every error answers in the caller's language: JSON under /api/, a page elsewhere. Never a 500 for bad input."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from kafka_common.logging import get_logger

log = get_logger("webapp")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def wants_json() -> bool:
    return request.path.startswith("/api/")


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if wants_json():
            return jsonify(error=exc.description or exc.name), exc.code
        return render_template("error.html", code=exc.code, title=exc.name, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error", path=request.path)
        if wants_json():
            return jsonify(error="internal error"), 500
        return render_template(
            "error.html", code=500, title="Something went wrong", message="Our oven hiccupped. Please try again."
        ), 500
