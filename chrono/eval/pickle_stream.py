"""Stream the items of a pickled list or dict one at a time, without holding the whole file in memory.

TAP-Vid ships its benchmarks as pickles of a list or a dict of videos (the Kinetics shards hold hundreds of
videos each). ``pickle.load`` builds every video before returning; :func:`iter_pickle_items` instead runs
the pure-Python unpickler opcode by opcode and hands each top-level item out as soon as it is complete, then
forgets it (its memo entries included), so memory stays bounded by one item.

An item counts as complete when it is a dict accepted by ``is_item`` and the unpickler is back at the level
of the top container (protocol >= 2 pickles build such a dict within one MARK ... SETITEMS batch). Files that
cannot be streamed safely (protocol < 2, or a later item that refers back to a forgotten object) are read
with a plain ``pickle.load`` instead, which gives the same items in the same order.
"""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

_TAKEN = object()  # stands in the stack for an item already handed out
_BULK_BYTES = 1024  # strings / bytes longer than this count as bulk
# The pure-Python unpickler's internals used here exist in CPython 3.8 - 3.13; elsewhere: plain pickle.load.
_STREAMABLE = hasattr(pickle, "_Unpickler") and hasattr(pickle, "_Unframer")


class _NotStreamable(Exception):
    """The pickle cannot be streamed safely (old protocol, or it refers back to a forgotten object)."""


def _holds_bulk(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (np.ndarray, list, dict, set)):
        return True
    if isinstance(value, (bytes, bytearray, str, memoryview)):
        return len(value) > _BULK_BYTES
    if isinstance(value, tuple) and depth < 3:
        return any(_holds_bulk(v, depth + 1) for v in value)
    return False


class _StreamingUnpickler(pickle._Unpickler):  # the pure-Python unpickler exposes its stack
    """Memo policy: objects memoised up to the end of the first item (globals, dtypes, key strings, which later
    items refer back to) are kept unless bulky; everything memoised while reading a later item is forgotten
    when that item is handed out, so the memo does not grow with the number of items. A reference to a
    forgotten object raises ``_NotStreamable`` (the caller then falls back to ``pickle.load``)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, is_item: Callable[[Any], bool]):
        super().__init__(file)
        self._is_item = is_item
        self._top = None  # the top-level list or dict
        self._memo_next = 0  # MEMOIZE's next index (len(memo) no longer counts once entries are deleted)
        self._memo_seen = 0  # memo entries present after the last clean-up
        self._handed_out = 0
        self.result = _TAKEN

    def _memoize(self):
        self.memo[self._memo_next] = self.stack[-1]
        self._memo_next += 1

    def _recall(self, index: int):
        try:
            self.append(self.memo[index])
        except KeyError:
            raise _NotStreamable from None

    dispatch[pickle.MEMOIZE[0]] = _memoize
    dispatch[pickle.GET[0]] = lambda self: self._recall(int(self.readline()[:-1]))
    dispatch[pickle.BINGET[0]] = lambda self: self._recall(self.read(1)[0])
    dispatch[pickle.LONG_BINGET[0]] = lambda self: self._recall(int.from_bytes(self.read(4), "little"))

    def _stop(self):
        self.result = self.stack.pop()

    dispatch[pickle.STOP[0]] = _stop

    def _region(self) -> tuple[list, int] | None:
        """The stack slice holding top-level items under construction, as (stack, first index)."""
        if not self.metastack:
            if self._top is None and len(self.stack) == 1 and isinstance(self.stack[0], (list, dict)):
                self._top = self.stack[0]
            if self._top is not None and self.stack and self.stack[0] is self._top:
                return self.stack, 1
            return None
        if len(self.metastack) == 1 and self.metastack[0] and self.metastack[0][-1] is self._top:
            return self.stack, 0
        return None

    def _harvest(self) -> Iterator[tuple[Any, Any]]:
        """Hand out the completed items at the front of the region, leaving placeholders behind."""
        found = self._region()
        if found is None or self._top is None:
            return
        region, start = found
        keyed = isinstance(self._top, dict)
        step = 2 if keyed else 1
        i = start
        while i + step - 1 < len(region):
            if region[i + step - 1] is _TAKEN:
                i += step
                continue
            item = region[i + step - 1]
            if not self._is_item(item):
                break
            key = region[i] if keyed else len(self._top) + i - start  # its index once appended
            region[i + step - 1] = _TAKEN
            self._forget()
            self._handed_out += 1
            yield key, item
            i += step

    def _forget(self) -> None:
        """Drop the memo entries added since the last clean-up (only the bulky ones during the first item)."""
        memo = self.memo
        new = [k for k, _ in itertools.islice(reversed(memo.items()), len(memo) - self._memo_seen)]
        for key in new:
            if self._handed_out > 0 or _holds_bulk(memo[key]):
                del memo[key]
        self._memo_seen = len(memo)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Yield (key, item) for each top-level item: key is the dict key, or the list index."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        read, dispatch = self.read, self.dispatch
        first = True
        while self.result is _TAKEN:
            key = read(1)
            if not key:
                raise EOFError("the pickle ends before its STOP opcode (truncated file?)")
            dispatch[key[0]](self)
            if first:
                first = False
                if self.proto < 2:  # protocols 0 and 1 build dicts key by key: not safe to stream
                    raise _NotStreamable
            yield from self._harvest()
        yield from self._rest(self.result)

    @property
    def container(self) -> str:
        return "dict" if isinstance(self._top, dict) else "list"

    def _rest(self, result: Any) -> Iterator[tuple[Any, Any]]:
        self._top = result
        if isinstance(result, dict):
            pairs = result.items()
        elif isinstance(result, (list, tuple)):
            pairs = enumerate(result)
        else:
            raise TypeError(f"the pickle holds a {type(result).__name__}, not a list or dict of items")
        for key, item in pairs:
            if item is not _TAKEN:
                yield key, item


def iter_pickle_items(path: str | Path, is_item: Callable[[Any], bool]) -> Iterator[tuple[str, Any, Any]]:
    """Yield (container, key, item) for the items of the list or dict pickled in ``path``, one at a time.

    ``container`` is "list" or "dict"; ``key`` is the dict key, or the position in the list. ``is_item(obj)`` tells a complete item (a dict with
    the expected fields) from anything else. Raises ``TypeError`` when the pickle holds neither a list nor a
    dict, and the usual unpickling errors on a corrupt file.
    """
    path = Path(path)
    handed_out = 0
    if _STREAMABLE:
        with open(path, "rb") as f:
            unpickler = _StreamingUnpickler(f, is_item)
            try:
                for key, item in unpickler.items():
                    handed_out += 1
                    yield unpickler.container, key, item
                return
            except _NotStreamable:
                pass
    with open(path, "rb") as f:
        result = pickle.load(f)
    pairs = result.items() if isinstance(result, dict) else enumerate(result) if isinstance(result, list) else None
    if pairs is None:
        raise TypeError(f"the pickle holds a {type(result).__name__}, not a list or dict of items")
    container = "dict" if isinstance(result, dict) else "list"
    for n, (key, item) in enumerate(pairs):
        if n >= handed_out:
            yield container, key, item
