"""Server-side checks of a request against botocore shapes, in AWS's own words.

A request reaching AWS is checked by the service framework (Coral) in two steps, and so is one
reaching us:

1. **Types** (``decode_json``): the JSON must fit the shape, or the answer is a
   SerializationException. Measured against AWS JSON 1.1 services and quoted in public
   sources: members the model does not know are ignored; ``null`` counts as absent (also
   inside lists); a wrong JSON type reads ``STRING_VALUE can not be converted to an
   Integer``, ``NUMBER_VALUE can not be converted to a String``, ``TRUE_VALUE ...``,
   ``Start of list found where not expected``, ``Start of structure or map found where not
   expected.``, ``Expected list or null`` (scalar for a list), ``Expected null`` (scalar for a
   structure); a fractional number for an integer is truncated. Inferred, not observed:
   ``Expected map or null`` (scalar for a map), the Java names of types other than Integer
   and String (``a Long``, ``a Boolean``, ``a Date`` ...), and integers beyond 32/64 bits
   being refused. Timestamps are epoch numbers (all botocore's json serializer sends) and
   become UTC ``datetime``; blobs are base64 and become ``bytes``.

2. **Constraints** (``validate``): botocore's ``ParamValidator`` is a client-side check that
   reports missing members, wrong types and values below ``min`` but not ``max``, ``pattern``
   or ``enum`` (STYLE.md principle 2), in the SDK's words. Coral's ValidationException text is
   what users see and sometimes match on::

       1 validation error detected: Value 'x!' at 'trainingJobName' failed to satisfy
       constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

Rules of that text, from responses quoted in public sources:

* paths are member names with the first letter lower-cased (``RoleARN`` -> ``roleARN``),
  joined by ``.``; list items of structures read ``inputDataConfig.1.member.channelName``
  (1-based);
* a missing required member: ``Value null at 'roleArn' failed to satisfy constraint: Member
  must not be null``;
* every broken rule of a scalar is its own problem, in the order length-max, length-min,
  pattern, enum (value-max, value-min for numbers);
* a list of scalars is reported once, at the list's path, with *all* of the item shape's rules:
  ``Value '[a, b!]' at 'vpcConfig.subnets' failed to satisfy constraint: Member must satisfy
  constraint: [Member must have length less than or equal to 32, Member must satisfy regular
  expression pattern: [-0-9a-zA-Z]+]``; maps likewise, keys first (``Map keys must satisfy
  constraint: [...]``) then values (``Map value must satisfy constraint: [...]``);
* values print as Java's ``toString`` would: lists ``[a, b]``, maps ``{k=v}``, booleans
  ``true``; a member whose shape is ``sensitive`` prints no value (``Value at 'x'``);
* patterns must match the whole value (Java ``Matcher.matches``); the model's Java regexes are
  translated to Python's ``re`` (``java_pattern``), and a pattern that cannot be translated is
  skipped rather than guessed;
* messages combine as ``1 validation error detected: A`` / ``2 validation errors detected:
  A; B``.

Choices where no source says what AWS does: members are visited in model order; map values
that are structures or lists are reported under ``<map path>.<key>``; lists of lists under
``<path>.<n>.member``; tagged unions are not checked for "exactly one member set". ``validate``
skips values of an unexpected Python type: step 1 has already refused them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import logging
import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from emulator.errors import SerializationException

log = logging.getLogger(__name__)

_NOT_NULL = "Member must not be null"
_SCALAR_TYPES = frozenset({"string", "integer", "long", "float", "double", "boolean", "timestamp", "blob"})


def lower_camel(name: str) -> str:
    """The path segment AWS prints for a member: its name with the first letter lower-cased."""
    return name[:1].lower() + name[1:]


def validation_message(problems: Sequence[str]) -> str:
    """Join problems the way Coral does: ``2 validation errors detected: A; B``."""
    noun = "error" if len(problems) == 1 else "errors"
    return f"{len(problems)} validation {noun} detected: " + "; ".join(problems)


def validate(params: Mapping[str, Any], shape: Shape) -> list[str]:
    """Every constraint ``params`` breaks under ``shape``, each as one AWS-worded sentence.

    ``params`` is a decoded request (PascalCase member names, Python values). An empty list
    means the request is valid.
    """
    problems: list[str] = []
    if isinstance(shape, StructureShape):
        _check_structure(params, shape, "", problems)
    else:
        _check_value(params, shape, "", problems)
    return problems


# -- types: JSON values to Python values ----------------------------------------------------

_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_JAVA_TYPES = {
    "string": "a String",
    "integer": "an Integer",
    "long": "a Long",
    "float": "a Float",
    "double": "a Double",
    "boolean": "a Boolean",
    "timestamp": "a Date",
    "blob": "a ByteBuffer",
}
_START_OF_LIST = "Start of list found where not expected"
_START_OF_MAP = "Start of structure or map found where not expected."


def _json_kind(value: Any) -> str:
    """Coral's name for the JSON token a value came from."""
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, (int, float)):
        return "NUMBER_VALUE"
    return "STRING_VALUE"


def type_mismatch(value: Any, shape: Shape) -> SerializationException:
    """The SerializationException Coral raises when ``value`` cannot become ``shape``."""
    if isinstance(value, list):
        return SerializationException(_START_OF_LIST)
    if isinstance(value, dict):
        return SerializationException(_START_OF_MAP)
    kind = shape.type_name
    if kind == "structure":
        return SerializationException("Expected null")
    if kind == "list":
        return SerializationException("Expected list or null")
    if kind == "map":
        return SerializationException("Expected map or null")
    target = _JAVA_TYPES.get(kind, kind)
    return SerializationException(f"{_json_kind(value)} can not be converted to {target}")


def decode_json(value: Any, shape: Shape) -> Any:
    """A JSON value (from ``json.loads``) as the Python value of ``shape``.

    Unknown members are ignored and ``null`` counts as absent; a value of the wrong JSON type
    raises SerializationException in Coral's words (see the module docstring).
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise type_mismatch(value, shape)
        members = shape.members
        return {
            name: decode_json(item, members[name])
            for name, item in value.items()
            if item is not None and name in members
        }
    if kind == "list":
        if not isinstance(value, list):
            raise type_mismatch(value, shape)
        return [decode_json(item, shape.member) for item in value if item is not None]
    if kind == "map":
        if not isinstance(value, dict):
            raise type_mismatch(value, shape)
        return {key: decode_json(item, shape.value) for key, item in value.items() if item is not None}
    if isinstance(value, (list, dict)):
        raise type_mismatch(value, shape)
    if kind == "string":
        if not isinstance(value, str):
            raise type_mismatch(value, shape)
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise type_mismatch(value, shape)
        number = int(value)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise type_mismatch(value, shape)
        return number
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise type_mismatch(value, shape)
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise type_mismatch(value, shape)
        return value
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise type_mismatch(value, shape)
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise type_mismatch(value, shape) from None
    if kind == "blob":
        if not isinstance(value, str):
            raise type_mismatch(value, shape)
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise SerializationException("Base64 encoded value is not valid") from None
    return value


def _no_constants(name: str) -> Any:
    """JSON has no NaN or Infinity; Python's parser would accept them."""
    raise ValueError(f"{name} is not a JSON value")


def load_json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; anything else is a SerializationException."""
    from emulator.gateway.policy_middleware import MAX_JSON_DEPTH, json_too_deep

    if json_too_deep(body):
        raise SerializationException(f"The request body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SerializationException(f"The request body is not valid JSON: {str(exc)[:200]}") from None
    if isinstance(document, list):
        raise SerializationException(_START_OF_LIST)
    if not isinstance(document, dict):
        raise SerializationException("The request body must be a JSON object")
    return document


# -- walking ------------------------------------------------------------------------------


def _check_structure(value: Mapping[str, Any], shape: StructureShape, path: str, out: list[str]) -> None:
    required = shape.required_members
    for name, member in shape.members.items():
        sub_path = f"{path}.{lower_camel(name)}" if path else lower_camel(name)
        item = value.get(name)
        if item is None:
            if name in required:
                out.append(f"Value null at '{sub_path}' failed to satisfy constraint: {_NOT_NULL}")
            continue
        _check_value(item, member, sub_path, out)


def _check_value(value: Any, shape: Shape, path: str, out: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if isinstance(value, Mapping):
            _check_structure(value, shape, path, out)
    elif kind == "list":
        if isinstance(value, (list, tuple)):
            _check_list(value, shape, path, out)
    elif kind == "map":
        if isinstance(value, Mapping):
            _check_map(value, shape, path, out)
    else:
        for rule in _broken_rules(value, shape):
            out.append(f"{_value_prefix(value, shape)} at '{path}' failed to satisfy constraint: {rule}")


def _check_list(value: Sequence[Any], shape: ListShape, path: str, out: list[str]) -> None:
    for rule in _size_rules(len(value), shape):
        out.append(f"{_value_prefix(value, shape)} at '{path}' failed to satisfy constraint: {rule}")
    item_shape = shape.member
    if item_shape.type_name in _SCALAR_TYPES:
        if any(item is not None and _broken_rules(item, item_shape) for item in value):
            out.append(
                f"{_value_prefix(value, item_shape)} at '{path}' failed to satisfy constraint: "
                f"Member must satisfy constraint: [{', '.join(_all_rules(item_shape))}]"
            )
        return
    for index, item in enumerate(value, start=1):
        if item is not None:
            _check_value(item, item_shape, f"{path}.{index}.member", out)


def _check_map(value: Mapping[str, Any], shape: MapShape, path: str, out: list[str]) -> None:
    for rule in _size_rules(len(value), shape):
        out.append(f"{_value_prefix(value, shape)} at '{path}' failed to satisfy constraint: {rule}")
    key_shape, value_shape = shape.key, shape.value
    if any(_broken_rules(key, key_shape) for key in value):
        out.append(
            f"{_value_prefix(value, key_shape)} at '{path}' failed to satisfy constraint: "
            f"Map keys must satisfy constraint: [{', '.join(_all_rules(key_shape))}]"
        )
    if value_shape.type_name in _SCALAR_TYPES:
        if any(item is not None and _broken_rules(item, value_shape) for item in value.values()):
            out.append(
                f"{_value_prefix(value, value_shape)} at '{path}' failed to satisfy constraint: "
                f"Map value must satisfy constraint: [{', '.join(_all_rules(value_shape))}]"
            )
        return
    for key, item in value.items():
        if item is not None:
            _check_value(item, value_shape, f"{path}.{key}", out)


# -- rules ---------------------------------------------------------------------------------


def _size_rules(size: int, shape: Shape) -> list[str]:
    """Broken length rules of a string, blob, list or map of ``size`` elements."""
    meta = shape.metadata
    broken = []
    if "max" in meta and size > meta["max"]:
        broken.append(f"Member must have length less than or equal to {_number(meta['max'])}")
    if "min" in meta and size < meta["min"]:
        broken.append(f"Member must have length greater than or equal to {_number(meta['min'])}")
    return broken


LOCAL_URI_SHAPES = frozenset({"S3Uri"})
"""String shapes that also take ``file://`` URIs: the emulator's documented extension that
lets a channel read a local folder for fast development loops. The services decide where
such a URI is meaningful and refuse it elsewhere."""


def _is_local_uri_extension(value: str, shape: Shape) -> bool:
    return shape.name in LOCAL_URI_SHAPES and value.startswith("file://")


def _broken_rules(value: Any, shape: Shape) -> list[str]:
    """The rules of a scalar shape that ``value`` breaks (empty for values of another type)."""
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            return []
        broken = _size_rules(len(value), shape)
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not _is_local_uri_extension(value, shape):
            compiled = java_pattern(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                broken.append(f"Member must satisfy regular expression pattern: {pattern}")
        enum = shape.enum
        if enum and value not in enum:
            broken.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        return broken
    if kind == "blob":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _size_rules(len(value), shape)
        return []
    if kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return []
        meta = shape.metadata
        broken = []
        if "max" in meta and value > meta["max"]:
            broken.append(f"Member must have value less than or equal to {_number(meta['max'])}")
        if "min" in meta and value < meta["min"]:
            broken.append(f"Member must have value greater than or equal to {_number(meta['min'])}")
        return broken
    return []


def _all_rules(shape: Shape) -> list[str]:
    """Every rule of a scalar shape, as printed inside ``Member must satisfy constraint: [...]``."""
    meta = shape.metadata
    numeric = shape.type_name in ("integer", "long", "float", "double")
    noun = "value" if numeric else "length"
    rules = []
    if "max" in meta:
        rules.append(f"Member must have {noun} less than or equal to {_number(meta['max'])}")
    if "min" in meta:
        rules.append(f"Member must have {noun} greater than or equal to {_number(meta['min'])}")
    if "pattern" in meta:
        rules.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    enum = getattr(shape, "enum", None)
    if enum:
        rules.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
    return rules


# -- printing values as Java does --------------------------------------------------------------


ECHO_LIMIT = 256
"""Longest value a validation message echoes; a longer one is cut (a 50 MB name is not sent back)."""


def _value_prefix(value: Any, shape: Shape) -> str:
    if shape.metadata.get("sensitive"):
        return "Value"
    text = _java_text(value)
    if len(text) > ECHO_LIMIT:
        text = f"{text[:ECHO_LIMIT]}... ({len(text)} characters)"
    return f"Value '{text}'"


def _java_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        size = len(value)
        return f"java.nio.HeapByteBuffer[pos=0 lim={size} cap={size}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    return str(value)


def _number(value: Any) -> str:
    """A model bound or value as Java prints it (``1.0`` for a whole double, ``5`` for an int)."""
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


# -- Java regular expressions -----------------------------------------------------------------


class _Untranslatable(ValueError):
    """A Java construct with no faithful ``re`` counterpart."""


_POSIX_CLASSES = {
    "ASCII": r"\x00-\x7f",
    "Alnum": "a-zA-Z0-9",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Lower": "a-z",
    "Upper": "A-Z",
    "Punct": r"!-/:-@\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": r" \t",
    "Space": r" \t\n\x0b\f\r",
    "Cntrl": r"\x00-\x1f\x7f",
    "XDigit": "0-9a-fA-F",
}
_HORIZONTAL_SPACE = r"\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000"
_JAVA_DOT = r"[^\n\r\x85\u2028\u2029]"  # Java's '.' stops at every line terminator, not just \n


@functools.cache
def java_pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's Java regex compiled for ``re``, or None when it cannot be translated.

    Java's ``\\w \\d \\s`` are ASCII-only by default, hence ``re.ASCII``; ``\\p{..}`` classes,
    ``\\z``/``\\Z``, ``\\h``, ``\\Q..\\E``, surrogate-pair ``\\uD800\\uDC00`` escapes and Java's
    ``.`` are rewritten. Class unions/intersections (``[a[b]]``, ``&&``) are not supported.
    Cached: every pattern is translated once per process.
    """
    try:
        translated = _translate(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # re's FutureWarnings flag Java-only set syntax
            return re.compile(translated, re.ASCII)
    except (_Untranslatable, re.error, FutureWarning, ValueError) as exc:
        log.debug("pattern %r is not checked: %s", pattern, exc)
        return None


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        char = pattern[i]
        if char == "\\":
            text, i = _translate_escape(pattern, i, in_class)
            out.append(text)
            continue
        if in_class:
            if char == "[" or pattern.startswith("&&", i):
                raise _Untranslatable("character class union or intersection")
            if char == "]" and out[-1] not in ("[", "[^"):
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            opener = "[^" if pattern.startswith("[^", i) else "["
            out.append(opener)
            i += len(opener)
            continue
        if char in "^$":
            i = _anchor(pattern, i, out)
            continue
        out.append(_JAVA_DOT if char == "." else char)
        i += 1
    return "".join(out)


_QUANTIFIER = re.compile(r"(?:\{(\d+)(?:,\d*)?\}|([*+?]))[?+]?")


def _anchor(pattern: str, i: int, out: list[str]) -> int:
    """Emit the anchor at ``pattern[i]``; Java lets a quantifier follow it (``${1,128}``), re does not.

    A repeated zero-width anchor is the anchor itself when it must occur at least once, and
    nothing when it may occur zero times. Returns the index after the anchor and quantifier.
    """
    found = _QUANTIFIER.match(pattern, i + 1)
    if found is None:
        out.append(pattern[i])
        return i + 1
    least = int(found.group(1)) if found.group(1) is not None else (1 if found.group(2) == "+" else 0)
    if least >= 1:
        out.append(pattern[i])
    return found.end()


def _translate_escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """Translate the escape at ``pattern[i]`` (a backslash); return the text and the next index."""
    if i + 1 >= len(pattern):
        raise _Untranslatable("trailing backslash")
    code = pattern[i + 1]
    if code in "pP":
        if pattern.startswith("{", i + 2):
            end = pattern.find("}", i + 3)
            if end < 0:
                raise _Untranslatable("unterminated \\p{")
            name, after = pattern[i + 3 : end], end + 1
        else:
            name, after = pattern[i + 2 : i + 3], i + 3
        members = _property_class(name)
        if in_class:
            if code == "P":
                raise _Untranslatable("negated property inside a class")
            return members, after
        return ("[^" if code == "P" else "[") + members + "]", after
    if code == "h":
        return (_HORIZONTAL_SPACE if in_class else f"[{_HORIZONTAL_SPACE}]"), i + 2
    if code in "zZ":
        if in_class:
            raise _Untranslatable("anchor inside a class")
        return (r"\Z" if code == "z" else r"(?=\n?\Z)"), i + 2
    if code == "Q":
        end = pattern.find(r"\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        return re.escape(literal), len(pattern) if end < 0 else end + 2
    if code == "u":
        point = int(pattern[i + 2 : i + 6], 16)
        after = i + 6
        if 0xD800 <= point <= 0xDBFF and pattern.startswith(r"\u", after):
            low = int(pattern[after + 2 : after + 6], 16)
            if 0xDC00 <= low <= 0xDFFF:  # a UTF-16 surrogate pair is one code point in Python
                point = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)
                after += 6
        return f"\\U{point:08x}", after
    if code == "x" and pattern.startswith("{", i + 2):
        end = pattern.index("}", i + 3)
        return f"\\U{int(pattern[i + 3 : end], 16):08x}", end + 1
    return pattern[i : i + 2], i + 2


def _property_class(name: str) -> str:
    """The members of ``\\p{name}`` as the inside of a character class."""
    if name in _POSIX_CLASSES:
        return _POSIX_CLASSES[name]
    category = name[2:] if name.startswith("Is") else name
    ranges = _category_ranges().get(category)
    if ranges is None:
        raise _Untranslatable(f"unknown property \\p{{{name}}}")
    return ranges


@functools.lru_cache(maxsize=1)
def _category_ranges() -> dict[str, str]:
    """Unicode general categories (``L``, ``Lu``, ...) as class contents, built once (~0.3 s).

    Only patterns with ``\\p{L}``-style classes pay this, on first use.
    """
    runs: dict[str, list[list[int]]] = {}
    for point in range(0x110000):
        found = runs.setdefault(unicodedata.category(chr(point)), [])
        if found and found[-1][1] == point - 1:
            found[-1][1] = point
        else:
            found.append([point, point])
    for major in {category[0] for category in list(runs)}:
        merged: list[list[int]] = []
        for start, end in sorted(r for key, found in runs.items() if key[0] == major for r in found):
            if merged and merged[-1][1] == start - 1:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        runs[major] = merged
    return {key: "".join(_range(start, end) for start, end in found) for key, found in runs.items()}


def _range(start: int, end: int) -> str:
    return f"\\U{start:08x}" if start == end else f"\\U{start:08x}-\\U{end:08x}"


__all__ = [
    "decode_json",
    "java_pattern",
    "load_json_object",
    "lower_camel",
    "type_mismatch",
    "validate",
    "validation_message",
]
