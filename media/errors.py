"""Typed errors of the media package.

Every failure the media code can predict (bad upload, decompression bomb, ffmpeg failure,
timeout) is raised as `MediaError`: `.reason` is a short English reason for logs and the CLI,
`.message_zh` a Simplified-Chinese sentence the editor UI shows as is, and `.code` a stable
machine-readable slug (for metrics, tests and callers that branch on the kind of failure).
`str(err)` is the English reason. Nothing here does work at import time.
"""

from __future__ import annotations

# Stable codes. Callers may branch on these; the English reason text may be reworded.
NOT_FOUND = "not_found"            # missing or unreadable path
EMPTY = "empty"                    # zero-length file
TOO_LARGE = "too_large"            # over the byte cap for its kind
UNSUPPORTED = "unsupported_type"   # content is not an accepted image/video type
CORRUPT = "corrupt"                # truncated or undecodable
BOMB = "decompression_bomb"        # pixel count over the cap
AUDIO_ONLY = "audio_only"          # a container with audio but no video stream
ENCODE_FAILED = "encode_failed"    # ffmpeg/Pillow failed while making a rendition
TIMEOUT = "timeout"                # the encoder ran past its time limit
TOO_BIG_OUTPUT = "output_too_big"  # a profile's max_bytes cannot be met
INVALID = "invalid"                # anything else (bad arguments, bad profile)


class MediaError(Exception):
    """A media file was refused or could not be processed.

    `reason` — short English text for logs/CLI (also `str(err)`);
    `message_zh` — a clear Simplified-Chinese message for editors;
    `code` — one of the module-level code constants above.
    """

    def __init__(self, reason: str, message_zh: str, *, code: str = INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_zh = message_zh
        self.code = code

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"MediaError(code={self.code!r}, reason={self.reason!r})"

    def __reduce__(self):  # keep the Chinese message and code across pickling (Celery results)
        return (_rebuild, (self.reason, self.message_zh, self.code))


def _rebuild(reason: str, message_zh: str, code: str) -> MediaError:
    return MediaError(reason, message_zh, code=code)
