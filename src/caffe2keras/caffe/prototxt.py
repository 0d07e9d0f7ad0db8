"""Read a net definition (``.prototxt``) into a current-format NetParameter.

protobuf's text parser holds memory in proportion to the whitespace it skips
(20 MB of spaces cost it 3.4 GB), so the text is first compacted, line by line:
comments go, indentation and runs of blanks outside quoted strings shrink to
nothing or one space, blank lines go. A map from compact lines back to the
file's lines keeps parse errors pointing at the right place.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterable, Iterator

from google.protobuf import text_format

from caffe2keras.caffe.limits import MAX_PROTOTXT_BYTES, check_path_type, checked_input_file
from caffe2keras.caffe.schema import schema
from caffe2keras.caffe.upgrade import upgrade_net
from caffe2keras.errors import ArgumentError, ModelFileError

_UNKNOWN_FIELD = re.compile(r'Message type "caffe\.(\w+)" has no field named "(\w+)"')
# A quoted string (protobuf's text format: no raw newline inside), a comment, a run of blanks, any
# other run of characters, or a lone quote. Strings are matched as "unrolled loops", which Python's
# re runs without a backtracking stack, and with a bounded number of escapes, each of which costs
# it one; a string with more, or not closed on its line, is a lone quote.
MAX_STRING_ESCAPES = 4096
_TOKEN = re.compile(
    rf""""[^"\\\n]*(?:\\.[^"\\\n]*){{0,{MAX_STRING_ESCAPES}}}"|'[^'\\\n]*(?:\\.[^'\\\n]*){{0,{MAX_STRING_ESCAPES}}}'"""
    r"""|#.*|[ \t\r\f\v]+|[^"'#\s]+|["']"""
)
# protobuf's parser takes memory and time out of proportion to a long token, or to a long run of
# adjacent strings (which it concatenates); real prototxts hold none longer than a path.
MAX_TOKEN_CHARS = 64 << 10
MAX_MESSAGE_CHARS = 300


# Fields only a solver file (SolverParameter) has at its top level: one of them, and it is no net.
SOLVER_FIELDS = frozenset(
    {"net", "train_net", "test_net", "net_param", "train_net_param", "base_lr", "lr_policy", "max_iter"}
    | {"solver_type", "test_iter", "test_interval", "snapshot", "snapshot_prefix", "solver_mode", "momentum"}
)


def _solver_error(message: str, compact: str, source: str) -> ModelFileError | None:
    """A solver file given where a net is: say what it is, and where its net is."""
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown is None or unknown.group(1) != "NetParameter" or unknown.group(2) not in SOLVER_FIELDS:
        return None
    named = re.search(r'(?:^|\s)(?:train_)?net\s*:\s*"([^"]*)"', compact)
    net = f"; its net is {named.group(1)!r}: convert that prototxt" if named else ""
    return ModelFileError(
        source,
        f"this is a Caffe solver file (SolverParameter: it sets {unknown.group(2)!r}), not a net definition{net}. "
        f"To train with it, use `caffe2keras train {source}`. Received: field={unknown.group(2)!r}",
    )


def _parse_error_hint(message: str) -> str:
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown is None:
        return ""
    message_type, name = unknown.groups()
    net_fields = schema().NetParameter.DESCRIPTOR.fields_by_name
    if message_type == "SolverParameter" and name in net_fields:
        return " This is a net definition; give the solver.prototxt that names it (net: ...)."
    if message_type != "NetParameter" and name in net_fields:
        # A net-level field ("layer", "input"...) inside a layer: the previous block is unclosed.
        return " A closing '}' is probably missing before this line."
    return (
        " The field may belong to a Caffe fork that caffe2keras does not know; add it with caffe2keras.extend_schema()."
    )


class _Compactor:
    """Compacts lines one by one, holding only what is kept (see :func:`compact_text`)."""

    def __init__(self, source: str):
        self.source = source
        self.string_run = 0  # characters of adjacent strings so far, which protobuf joins into one

    def line(self, number: int, line: str) -> str:
        pieces = []
        for match in _TOKEN.finditer(line):
            token = match.group()
            first = token[0]
            if first == "#":
                break
            if first in " \t\r\f\v":
                pieces.append(" ")
                continue
            if len(token) == 1 and first in "\"'":
                raise ModelFileError(
                    self.source,
                    f"line {number}, column {match.start() + 1}: a string is not closed on its line "
                    f"(or holds more than {MAX_STRING_ESCAPES:,} escapes).",
                )
            if first in "\"'":
                self.string_run += len(token)
                length = self.string_run
            else:
                self.string_run = 0
                length = len(token)
            if length > MAX_TOKEN_CHARS:
                raise ModelFileError(
                    self.source,
                    f"line {number} holds a token or string of more than {MAX_TOKEN_CHARS:,} characters; "
                    "no Caffe net needs one.",
                )
            pieces.append(token)
        return "".join(pieces).strip()


def compact_text(lines: Iterable[str], source: str = "<prototxt>") -> tuple[str, list[tuple[int, int | None]]]:
    """The text of ``lines`` without comments, blank lines and runs of blanks outside strings, and
    for each line kept, its 1-based number in ``lines`` and the columns its indentation took (None
    when more than indentation went, so that columns no longer match). Lines are read one by one."""
    compactor = _Compactor(source)
    kept, origins = [], []
    for number, line in enumerate(lines, start=1):
        compact = compactor.line(number, line)
        if compact:
            kept.append(compact)
            stripped = line.strip()
            origins.append((number, len(line) - len(line.lstrip()) if compact == stripped else None))
    return "\n".join(kept), origins


def parse_net_text(text: str, source: str = "<prototxt>"):
    """Parse prototxt text (current or V1 format) into a current-format NetParameter."""
    if not isinstance(text, str):
        raise ArgumentError(f"the prototxt text must be a str. Received: text={type(text).__name__}")
    return _parse_compact(*compact_text(io.StringIO(text), source), source)


def _parse_compact(compact: str, origins, source: str, message_type: str = "NetParameter"):
    parsed = getattr(schema(), message_type)()
    try:
        text_format.Parse(compact, parsed)
    except text_format.ParseError as exc:
        message = re.sub(r"^\d+:\d+ : ", "", str(exc)).rstrip(".")
        if (solver := _solver_error(message, compact, source)) is not None:
            raise solver from None
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + "…"
        where = ""
        if exc.GetLine() and origins:
            line, indent = origins[min(exc.GetLine(), len(origins)) - 1]
            column = "" if indent is None else f", column {exc.GetColumn() + indent}"
            where = f"line {line}{column}: "
        raise ModelFileError(
            source, f"not a valid Caffe prototxt: {where}{message}.{_parse_error_hint(message)}"
        ) from None
    except (ValueError, RecursionError) as exc:  # protobuf refusing what its tokenizer let through
        raise ModelFileError(source, f"not a valid Caffe prototxt: {str(exc)[:MAX_MESSAGE_CHARS]}.") from None
    return upgrade_net(parsed, source) if message_type == "NetParameter" else parsed


@contextlib.contextmanager
def _opened_text(path, not_text: str):
    """``path`` opened as UTF-8 text after the checks every input file gets; reading errors become
    :class:`ModelFileError`, ``not_text`` saying what the file should have been."""
    check_path_type(path, "path")
    checked_input_file(path, "text file", MAX_PROTOTXT_BYTES)
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            yield f
    except UnicodeDecodeError:
        raise ModelFileError(path, f"not a text file; {not_text}") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror}.") from None


def _bounded_lines(file, path) -> Iterator[str]:
    """The file's lines (ended by newlines only, as protobuf counts them); a file growing past the limit is refused."""
    size = 0
    for line in file:
        size += len(line)
        if size > MAX_PROTOTXT_BYTES:
            raise ModelFileError(path, f"grew past {MAX_PROTOTXT_BYTES:,} bytes while being read.")
        yield line


def read_text(path: str | os.PathLike, not_text: str) -> str:
    """A UTF-8 text file; ``not_text`` says what the file should have been when it is not text."""
    with _opened_text(path, not_text) as f:
        return "".join(_bounded_lines(f, path))


def read_net(path: str | os.PathLike):
    """Read a ``.prototxt`` file into a current-format NetParameter, in memory bounded by its content."""
    with _opened_text(path, "a net definition is a .prototxt (weights go second).") as f:
        compact, origins = compact_text(_bounded_lines(f, path), str(path))
    return _parse_compact(compact, origins, str(path))


def read_solver(path: str | os.PathLike):
    """Read a ``solver.prototxt`` file into a SolverParameter (its nets are not read)."""
    with _opened_text(path, "a solver definition is a .prototxt.") as f:
        compact, origins = compact_text(_bounded_lines(f, path), str(path))
    return _parse_compact(compact, origins, str(path), "SolverParameter")
