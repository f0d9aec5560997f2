"""``Content-Encoding: aws-chunked`` bodies: read them as clients send them, re-frame them for the store.

SDKs stream uploads whose length or checksum they do not know up front as aws-chunked: each
chunk is ``<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``, a zero-size chunk ends the data,
and trailing headers (``x-amz-checksum-crc32:...``, ``x-amz-trailer-signature:...``) may follow.
Chunk signatures chain from the request's own signature, so once the edge re-signs a request
for the store they cannot be forwarded. The proxy therefore

* forwards a body **without trailers** as the plain payload (``x-amz-decoded-content-length``
  bytes, ``UNSIGNED-PAYLOAD``), and
* forwards a body **with a checksum trailer** as unsigned aws-chunked
  (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``) in chunks of its own, so the store still verifies
  and records the client's checksum. Every checksum algorithm S3 knows has a fixed-length
  base64 value, so the re-framed length is known before the first byte is sent.

Nothing is buffered beyond one chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

CHUNK = 256 * 1024
"""Size of the chunks the proxy writes (the last one is shorter)."""

CHECKSUM_VALUE_LENGTHS = {
    "x-amz-checksum-crc32": 8,
    "x-amz-checksum-crc32c": 8,
    "x-amz-checksum-crc64nvme": 12,
    "x-amz-checksum-sha1": 28,
    "x-amz-checksum-sha256": 44,
}
"""Base64 length of each trailing checksum S3 accepts (4, 4, 8, 20 and 32 bytes)."""

MAX_LINE = 4096


class ChunkedBodyError(ValueError):
    """The aws-chunked body does not follow the format (answered as 400 IncompleteBody/InvalidRequest)."""


class ChunkedReader:
    """Decodes an aws-chunked body from ``read(n)``; :meth:`chunks` yields the payload, then ``trailers`` is set."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buffer = b""
        self.trailers: dict[str, str] = {}
        """Trailing headers by lower-cased name, once :meth:`chunks` is exhausted (signature excluded)."""
        self.decoded = 0

    def _fill(self, wanted: int) -> bool:
        while len(self._buffer) < wanted:
            more = self._read(max(wanted - len(self._buffer), 65536))
            if not more:
                return False
            self._buffer += more
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise ChunkedBodyError("an aws-chunked header line is too long")
            more = self._read(65536)
            if not more:
                raise ChunkedBodyError("the aws-chunked body ended inside a chunk header")
            self._buffer += more
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def chunks(self) -> Iterator[bytes]:
        """The decoded payload, piece by piece."""
        while True:
            header = self._line()
            size_text = header.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ChunkedBodyError(f"bad aws-chunked chunk size {size_text[:32]!r}") from None
            if size == 0:
                break
            left = size
            while left:
                if not self._buffer and not self._fill(1):
                    raise ChunkedBodyError("the aws-chunked body ended inside a chunk")
                piece, self._buffer = self._buffer[:left], self._buffer[left:]
                left -= len(piece)
                self.decoded += len(piece)
                yield piece
            if not self._fill(2) or self._buffer[:2] != b"\r\n":
                raise ChunkedBodyError("an aws-chunked chunk is not followed by CRLF")
            self._buffer = self._buffer[2:]
        while True:  # trailers, up to the empty line (or the end of the body)
            try:
                line = self._line()
            except ChunkedBodyError:
                if self._buffer.strip():
                    raise
                return
            if not line.strip():
                return
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ChunkedBodyError(f"bad aws-chunked trailer line {line[:64]!r}")
            name = name.strip().lower()
            if name != "x-amz-trailer-signature":
                self.trailers[name] = value.strip()


def trailer_names(header: str | None) -> list[str]:
    """The names an ``x-amz-trailer`` header announces, lower-cased; checked against S3's checksums."""
    names = [n.strip().lower() for n in (header or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKSUM_VALUE_LENGTHS]
    if unknown:
        raise ChunkedBodyError(f"unsupported x-amz-trailer {', '.join(unknown)} (S3 accepts "
                               f"{', '.join(sorted(CHECKSUM_VALUE_LENGTHS))})")
    return names


def framed_length(decoded_length: int, trailers: list[str], chunk: int = CHUNK) -> int:
    """Bytes :func:`frame` will produce for ``decoded_length`` payload bytes and these trailers."""
    full, rest = divmod(decoded_length, chunk)
    total = full * (len(f"{chunk:x}") + 2 + chunk + 2)
    if rest:
        total += len(f"{rest:x}") + 2 + rest + 2
    total += 3  # "0\r\n"
    total += sum(len(name) + 1 + CHECKSUM_VALUE_LENGTHS[name] + 2 for name in trailers)
    return total + 2


def frame(payload: Iterator[bytes], trailers: list[str], trailer_values: Callable[[], dict[str, str]],
          chunk: int = CHUNK) -> Iterator[bytes]:
    """Unsigned aws-chunked framing of ``payload`` with the trailers read once the payload is done.

    Raises :class:`ChunkedBodyError` (after the data, before the trailers) when a trailer is missing
    or its value does not have the length of its algorithm: the caller must then abandon the
    upstream request, whose announced length cannot be met.
    """
    pending = b""
    for piece in payload:
        pending += piece
        while len(pending) >= chunk:
            block, pending = pending[:chunk], pending[chunk:]
            yield b"%x\r\n" % len(block) + block + b"\r\n"
    if pending:
        yield b"%x\r\n" % len(pending) + pending + b"\r\n"
    values = trailer_values()
    lines = []
    for name in trailers:
        value = values.get(name, "")
        if len(value) != CHECKSUM_VALUE_LENGTHS[name]:
            raise ChunkedBodyError(f"trailer {name} is missing or malformed ({value[:60]!r})")
        lines.append(f"{name}:{value}\r\n".encode("latin-1"))
    yield b"0\r\n" + b"".join(lines) + b"\r\n"


def encode_for_test(payload: bytes, trailers: dict[str, str] | None = None, chunk: int = 8192,
                    signature: str | None = None) -> bytes:
    """An aws-chunked body as an SDK writes it (chunk signatures are placeholders when given)."""
    out = []
    ext = f";chunk-signature={signature}" if signature else ""
    for start in range(0, len(payload), chunk):
        block = payload[start:start + chunk]
        out.append(f"{len(block):x}{ext}\r\n".encode() + block + b"\r\n")
    out.append(f"0{ext}\r\n".encode())
    for name, value in (trailers or {}).items():
        out.append(f"{name}:{value}\r\n".encode())
    return b"".join(out) + b"\r\n"
