"""The ``caffe2keras`` command line.

Each command is a module of this package with ``register(commands)``, which adds its parser
and sets ``run``. Parsing imports no Keras and no backend, so ``--help``, ``--version`` and
argument errors answer at once; a command imports what it needs when it runs.

Errors are printed as one message, never a traceback (``--debug`` shows it),
the exit status is non-zero, and no partial output file is left behind.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import signal
import sys
from collections.abc import Sequence

from caffe2keras.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    Terminated,
    UsageError,
    conversion_warnings_as_lines,
    termination_as_interrupt,
)

# In the order `caffe2keras --help` lists them.
COMMANDS = ("convert", "predict", "verify", "weights", "inspect", "zoo", "export", "layers", "train")


class Parser(argparse.ArgumentParser):
    """argparse's parser, with its errors in the form of every other error of the tool.

    argparse would print the whole usage and ``caffe2keras convert: error: ...``; a malformed
    option value is one line like the rest, with where to look for the options.
    """

    def error(self, message: str):
        from caffe2keras.console import printable

        self.exit(EXIT_USAGE, f"caffe2keras: error: {printable(message)} (see: {self.prog} --help)\n")


class CommandParser(Parser):
    """A command's parser: it takes ``--debug`` too, so the flag works after the command name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # SUPPRESS: a command that is not given --debug keeps what the top level parsed.
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)


DEBUG_HELP = "show tracebacks for errors"


def build_parser() -> argparse.ArgumentParser:
    from caffe2keras._version import __version__

    parser = Parser(
        prog="caffe2keras",
        description="Convert Caffe models (prototxt + caffemodel) to Keras 3 with Caffe's exact numbers.",
    )
    parser.add_argument("--version", action="version", version=f"caffe2keras {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for name in COMMANDS:
        importlib.import_module(f"caffe2keras.cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # With the export extra installed, Keras imports TensorFlow even on JAX (its serializer checks
    # for TensorShape); TensorFlow's start-up notes would read as the command's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from caffe2keras.console import printable
    from caffe2keras.default_backend import use_default_backend
    from caffe2keras.errors import Caffe2KerasError
    from caffe2keras.keras_setup import use_compilation_cache

    use_default_backend()
    use_compilation_cache()

    # verify keeps exit status 1 for "a blob diverged"; any failure to compare is 2.
    failure_status = getattr(args, "failure_status", EXIT_ERROR)
    try:
        with termination_as_interrupt(), conversion_warnings_as_lines():
            return args.run(args)
    except UsageError as exc:
        print(f"caffe2keras: error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Caffe2KerasError as exc:
        if args.debug:
            raise
        print(f"caffe2keras: error: {printable(exc)}", file=sys.stderr)
        return failure_status
    except Terminated as exc:
        print(f"caffe2keras: terminated by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("caffe2keras: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still no traceback unless asked for
        if isinstance(exc, BrokenPipeError) and _stdout_reader_gone():  # `| head`: nothing is left to tell it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the last flush cannot fail again
            return 128 + signal.SIGPIPE
        if args.debug:
            raise
        if _out_of_memory(exc):  # the machine's (or a ulimit's) memory, not a bug
            print(
                f"caffe2keras: error: out of memory ({type(exc).__name__}: {exc}); "
                "free memory or raise the process's memory limit (ulimit -v) and run again.",
                file=sys.stderr,
            )
            return failure_status
        print(
            f"caffe2keras: internal error: {type(exc).__name__}: {printable(exc)}\n"
            "Run again with --debug for the traceback, and please report it.",
            file=sys.stderr,
        )
        return failure_status


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader closed it (not another pipe, such as a child process's)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or no real stdout
        return False


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM


def run() -> None:
    """The console script: :func:`main`, then exit without tearing the interpreter down.

    Everything is written and closed by then; unloading Keras, JAX and their
    thousands of objects would take about half a second more.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
