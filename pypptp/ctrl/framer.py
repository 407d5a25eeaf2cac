"""Split the TCP 1723 byte stream into control messages (RFC 2637 section 1.4).

The stream carries messages back to back, each framed by its own Length.  A
message may arrive split across TCP segments, and several may arrive in one
segment.  The header is validated as soon as its first bytes are present
(Length range, PPTP Message Type, Magic Cookie, exact Length for the type),
so a lying Length is refused at once instead of waiting for bytes that will
never come.  After an error the stream has lost synchronisation and RFC 2637
section 1.4 says to close the connection; the framer then refuses all input.
"""

from __future__ import annotations

from pypptp.ctrl.messages import ControlMessage, ControlMessageError, check_header_prefix, decode_message


class ControlStreamFramer:
    """Reassemble and decode control messages from arbitrary TCP segments."""

    def __init__(self, *, strict: bool = True) -> None:
        self._buffer = bytearray()
        self._strict = strict
        self._failed: ControlMessageError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[ControlMessage]:
        """Add received bytes; return every message they complete, in order.

        Raises :class:`ControlMessageError` at the first invalid message; the
        messages this call decoded before it are on the error's ``messages``.
        Every later call raises a fresh error naming the original reason.
        """
        failed = self._failed
        if failed is not None:
            raise ControlMessageError(f"stream already failed: {failed.reason}", failed.error_code, failed.message_type)
        self._buffer += data
        messages: list[ControlMessage] = []
        buffer = self._buffer
        offset = 0
        try:
            while True:
                length = check_header_prefix(buffer[offset : offset + 10])
                if length is None or len(buffer) - offset < length:
                    break
                messages.append(decode_message(buffer[offset : offset + length], strict=self._strict))
                offset += length
        except ControlMessageError as exc:
            self._failed = exc
            self._buffer = bytearray()
            exc.messages = messages
            raise
        del buffer[:offset]
        return messages
