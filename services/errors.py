"""The service layer's typed errors: one small hierarchy every entry point maps.

Each error carries an English message (logs, CLI, API `detail`) and a Simplified-Chinese one
for the editor UI. Routes map them to HTTP statuses; the CLI prints the English line and
exits non-zero.
"""

from __future__ import annotations


class FanoutError(Exception):
    http_status = 400
    exit_code = 1  # what the CLI exits with

    def __init__(self, message: str, message_zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message


class ValidationError(FanoutError):
    http_status = 422


class NotFound(FanoutError):
    http_status = 404


class PermissionDenied(FanoutError):
    http_status = 403


class Conflict(FanoutError):
    http_status = 409


class AuthenticationFailed(FanoutError):
    http_status = 401


class NotApproved(FanoutError):
    """Publishing what has not passed 三审 (the CLI exits 3, as the review issue asks)."""

    http_status = 409
    exit_code = 3
