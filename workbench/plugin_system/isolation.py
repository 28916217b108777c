"""Running a plugin's code so that nothing it does takes the process down with it.

A plugin module runs arbitrary code when it is imported and when its hooks are called.  ``except Exception`` is
not enough for that: ``sys.exit()`` raises :class:`SystemExit`, a stray ``raise KeyboardInterrupt`` looks like the
user's Ctrl-C, a hook can block or loop for ever, an exception's ``__str__`` can raise, a module's ``__getattr__``
can raise on any name.  So the loader calls third-party code through :func:`call_isolated`:

- the code runs in a daemon thread of its own and whatever it raises, :class:`BaseException` included, comes
  back as an :class:`Outcome` with a one-line message and the traceback, both made here, defensively
  (:func:`describe_exception`, :func:`format_traceback`), inside that same thread and time limit;
- the calling thread waits at most ``limit`` seconds (:func:`time_limit`: ``SEQWB_PLUGIN_TIME_LIMIT``, default
  10).  Code that has not finished by then is left running in its daemon thread, and the plugin is reported as
  failed; the process goes on (and exits normally: Python does not wait for daemon threads);
- a real Ctrl-C is a signal, and Python delivers signals to the main thread only, where the loader is waiting:
  it interrupts that wait and is re-raised as it should be.  A ``KeyboardInterrupt`` that the plugin raises
  itself happens in the plugin's thread, so it is recorded as the plugin's failure, never mistaken for the
  user's.

What this cannot stop: ``os._exit()``, a crash in native code, or a thread that never gives the interpreter back
(only running plugins in another process would).  The built-in plugins are trusted and called in the loader's
own thread with :func:`call_trusted`, which still turns everything but a ``KeyboardInterrupt`` into a failure.

Plain Python: no torch, no Qt.
"""

from __future__ import annotations

import os
import threading
import traceback
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["DEFAULT_TIME_LIMIT_S", "ENV_TIME_LIMIT", "MAX_DETAIL_CHARS", "MAX_MESSAGE_CHARS", "Outcome",
           "call_isolated", "call_trusted", "clean_line", "describe_exception", "format_traceback", "time_limit",
           "type_name"]

ENV_TIME_LIMIT = "SEQWB_PLUGIN_TIME_LIMIT"
#: seconds a plugin's import, or one of its hooks, may take; registration is meant to be cheap (no torch), so
#: this is far above what a well-behaved plugin needs while keeping the window's start bounded
DEFAULT_TIME_LIMIT_S = 10.0
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 20_000


@dataclass(frozen=True)
class Outcome:
    """What a call into a plugin's code gave: its ``value``, or ``error`` (one line) with ``detail`` (the
    traceback); ``timed_out`` when it was still running at the time limit."""

    value: Any = None
    error: str = ""
    detail: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def time_limit() -> float:
    """The time limit in seconds: ``SEQWB_PLUGIN_TIME_LIMIT`` when it is a positive number, else the default."""
    raw = (os.environ.get(ENV_TIME_LIMIT) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_TIME_LIMIT_S
    return value if 0 < value < float("inf") else DEFAULT_TIME_LIMIT_S


def call_isolated(fn: Callable[[], Any], *, limit: float, what: str) -> Outcome:
    """Run ``fn()`` in a daemon thread and wait at most ``limit`` seconds for it.  ``what`` names the call in the
    message of a time-out ("the import", "the hook seqwb_cells").  Only a ``KeyboardInterrupt`` that reaches
    this (the main) thread, i.e. the user's Ctrl-C, is raised from here."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - everything a plugin raises is the plugin's failure
            box["error"] = _describe_in_plugin_thread(exc)
            box["detail"] = format_traceback(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"seqwb-plugin: {what}", daemon=True)
    thread.start()
    if not done.wait(limit):
        return Outcome(timed_out=True, error=(
            f"{what} did not finish within {limit:g} s and was given up; its code may still be running in the "
            f"background: disable or uninstall the plugin ({ENV_TIME_LIMIT}=SECONDS allows more time)"))
    if "error" in box:
        return Outcome(error=box["error"], detail=box.get("detail", ""))
    if "value" not in box:   # the thread ended without a value or an error: describing the error failed too
        return Outcome(error=f"{what} failed in a way that could not be described")
    return Outcome(value=box["value"])


def call_trusted(fn: Callable[[], Any]) -> Outcome:
    """Run ``fn()`` here (the built-in plugins): every failure is an :class:`Outcome`, except a
    ``KeyboardInterrupt``, which in this thread can be the user's."""
    try:
        return Outcome(value=fn())
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: a built-in must not end the process either
        return Outcome(error=describe_exception(exc), detail=format_traceback(exc))


def _describe_in_plugin_thread(exc: BaseException) -> str:
    try:
        return describe_exception(exc)
    except BaseException:  # noqa: BLE001 - describe_exception is defensive; this is the last resort
        return "the plugin raised an exception that could not be described"


def describe_exception(exc: BaseException) -> str:
    """One line for the user: ``"Name: message"``, with the words that explain the exceptions a plugin must not
    raise (``SystemExit``, ``KeyboardInterrupt``).  Survives an exception whose ``__str__`` raises or returns
    something odd; control characters are dropped and the line is cut at :data:`MAX_MESSAGE_CHARS`."""
    name = type_name(exc)
    # the real type, not isinstance: an exception can fake its __class__
    if issubclass(type(exc), SystemExit):
        code = _safe_text(lambda: repr(getattr(exc, "code", None)))
        return clean_line(f"{name}: the plugin called sys.exit({code}) (or raised {name}); Sequence Workbench "
                          f"went on without it")
    if issubclass(type(exc), KeyboardInterrupt):
        return clean_line(f"{name}: raised by the plugin's own code (not a Ctrl-C of the user); Sequence "
                          f"Workbench went on without it")
    message = _safe_text(lambda: str(exc))
    return clean_line(f"{name}: {message}" if message else name)


def format_traceback(exc: BaseException) -> str:
    """The traceback as text, or a line saying why there is none; at most :data:`MAX_DETAIL_CHARS` (the end,
    where the error is, is kept)."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException as inner:  # noqa: BLE001 - a hostile exception can break the traceback module too
        return f"(no traceback: formatting it raised {type_name(inner)})"
    if len(text) > MAX_DETAIL_CHARS:
        text = "… (cut)\n" + text[-MAX_DETAIL_CHARS:]
    return "".join(ch for ch in text if ch in "\n\t" or not _is_control(ch))


def clean_line(text: str) -> str:
    """``text`` as one line (its lines joined by "; ") without control characters (terminal escapes included), cut
    to a readable length."""
    text = str.__str__(text)[:MAX_MESSAGE_CHARS * 4]
    joined = "; ".join(part.strip() for part in text.replace("\t", " ").splitlines() if part.strip())
    line = "".join("?" if _is_control(ch) else ch for ch in joined).strip()
    return line if len(line) <= MAX_MESSAGE_CHARS else line[:MAX_MESSAGE_CHARS - 1] + "…"


def _is_control(ch: str) -> bool:
    # control, format (bidirectional overrides), surrogate, private-use and unassigned code points: none of
    # them belongs in a message, and several can rewrite what a terminal or a label shows
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


def type_name(obj: Any) -> str:
    """The name of ``obj``'s class, read where a metaclass can neither fake nor break it."""
    try:
        return str.__str__(type.__dict__["__name__"].__get__(type(obj)))
    except BaseException:  # noqa: BLE001
        return "object"


def _safe_text(read: Callable[[], Any]) -> str:
    """``read()`` as a plain string, or a note saying that reading it raised."""
    try:
        value = read()
        if not isinstance(value, str):
            return f"(its message is a {type_name(value)}, not text)"
        # only the first line is shown: a message of any size is cut before it is copied around, with str's
        # own methods, since a str subclass could override slicing
        return str.__str__(str.__getitem__(value, slice(0, MAX_MESSAGE_CHARS * 4)))
    except BaseException as inner:  # noqa: BLE001 - the message itself is plugin code
        return f"(its message could not be read: str() raised {type_name(inner)})"
