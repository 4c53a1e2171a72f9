"""The reader engine's core: one :class:`ReaderCore` under both public readers.

It hands work items to the pool a bounded number at a time and yields their output in plan order, so the sequence
of samples is a function of ``seed`` alone (not of worker timing), which is what makes :meth:`ReaderCore.state_dict`
resumable. Planning lives in :mod:`~petastorm.reader_impl.planning`, reading and decoding in
:mod:`~petastorm.reader_impl.loaders`, the pools in :mod:`~petastorm.reader_impl.pools`; the public
:class:`petastorm.reader.Reader` adds the original's constructor.
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
import weakref
from typing import Any, Iterator, Sequence


from petastorm.ngram import NGram
from petastorm.reader_impl.loaders import ItemLoader, ItemResult, ReaderWorkerError
from petastorm.reader_impl.outputs import OutputAssembly
from petastorm.reader_impl.planning import ReadPlan, WorkItem
from petastorm.unischema import Unischema

__all__ = ["ReaderCore", "STATE_VERSION"]

STATE_VERSION = 1


def _unit_at(units: Sequence[list[WorkItem]], index: int) -> list[WorkItem] | None:
    """Unit ``index`` of an epoch, or None past its end (a plan over files learns its length only at the end)."""
    try:
        return units[index]
    except IndexError:
        return None


def _stop_pool(pool: Any, loader: Any) -> None:
    try:
        pool.stop()
        pool.join()
    finally:
        loader.close()


class ReaderCore(OutputAssembly):
    """The engine under :class:`petastorm.reader.Reader`: schedules work items on the pool a bounded number at a
    time, yields their output in plan order (rows, n-grams or batches), and saves/resumes its position.
    :meth:`_start` sets it up (called by :func:`petastorm.reader_impl.assembly.assemble`)."""

    def _start(self, schema: Unischema, plan: ReadPlan, loader: ItemLoader, pool: Any, batched_output: bool,
               ngram: NGram | None, results_queue_size: int, dataset_url: Any = None, cache: Any = None,
               cache_cleanup: bool = False) -> None:
        self.schema, self.ngram, self.plan, self.dataset_url = schema, ngram, plan, dataset_url
        self._loader, self._pool, self._batched_output = loader, pool, batched_output
        self._cache, self._cache_cleanup = cache, cache_cleanup
        self._window = 1 if pool.kind == "dummy" else pool.workers_count + max(1, results_queue_size)
        # Until the first result: one item per worker, so the first row waits for no more planning (a plan over
        # files reads the footers of the files it schedules) than the workers can start on.
        self._start_window = 1 if pool.kind == "dummy" else pool.workers_count
        self._started = False
        self._row_type = schema._get_namedtuple()
        self._row_names = list(schema.fields)
        if ngram is not None:
            base = min(ngram.fields)
            self._ngram_steps = [(base + step, ngram.get_schema_at_timestep(schema, base + step))
                                 for step in range(ngram.length)]
        self._epoch = 0
        self._unit = 0
        self._rows_in_unit = 0
        self._end_epoch = plan.num_epochs
        self._units_cache: dict[int, list] = {}
        self._schedule: Iterator | None = None
        self._inflight: collections.deque = collections.deque()
        self._ready: dict[int, tuple[bool, Any]] = {}
        self._seq = 0
        self._outputs: Iterator | None = None
        self._outputs_as_columns = False
        self._failed: BaseException | None = None
        self.last_row_consumed = False
        self.stopped = False
        self._joined = False
        self._counters = collections.Counter()
        self._lock = threading.RLock()
        if pool.kind == "thread":
            pool.start(loader, on_exit=loader.files.close_thread_files)
        else:
            pool.start(loader)
        self._finalizer = weakref.finalize(self, _stop_pool, pool, loader)

    # -- public surface -----------------------------------------------------------------------------------------

    @property
    def batched_output(self) -> bool:
        """True when each item is a batch (a namedtuple of arrays), False when it is one row (or n-gram)."""
        return self._batched_output

    @property
    def num_epochs(self) -> int | None:
        """Passes over the data per ``reset()`` (None: no end), as the original's attribute."""
        return self.plan.num_epochs

    @property
    def is_batched_reader(self) -> bool:
        return self._batched_output

    def __iter__(self) -> "ReaderCore":
        return self

    def __next__(self) -> Any:
        return self._next_output(False)

    def column_chunks(self) -> Iterator[dict]:
        """A row reader's rows as column chunks: dicts ``{field: array}`` whose rows, chunk after chunk, are the
        rows ``next(reader)`` would yield (same order, epochs, shards and resume position), a row group or a
        shuffle window at a time. For adapters that batch in columns; not for n-gram or batch readers. A pass is
        consumed either row by row or chunk by chunk, not both."""
        if self._batched_output or self.ngram is not None:
            raise ValueError("column_chunks() is for make_reader readers without an NGram")
        while True:
            try:
                yield self._next_output(True)
            except StopIteration:
                return

    def _next_output(self, as_columns: bool) -> Any:
        """The next output; one caller at a time, so that threads sharing a reader each get other rows."""
        with self._lock:
            return self._next_output_locked(as_columns)

    def _next_output_locked(self, as_columns: bool) -> Any:
        if self.stopped:
            raise RuntimeError("Trying to read a sample after the reader was stopped (for example after its "
                               "context manager exited)")
        if self._failed is not None:
            raise self._failed
        if self._outputs is None:
            self._outputs = self._iterate(as_columns)
            self._outputs_as_columns = as_columns
        elif self._outputs_as_columns != as_columns:
            raise RuntimeError("This pass of the reader is being read " +
                               ("chunk by chunk (column_chunks)" if self._outputs_as_columns else "row by row") +
                               "; finish it (or reset) before reading it the other way")
        try:
            return next(self._outputs)
        except StopIteration:
            self.last_row_consumed = True
            raise
        except BaseException as e:
            self._failed = e
            self._outputs = None
            self._finalizer()  # a failed reader releases its workers at once
            raise

    def next(self) -> Any:
        return self.__next__()

    def reset(self) -> None:
        """Starts another ``num_epochs`` epochs (with new shuffles); only allowed once every sample was consumed."""
        if not self.last_row_consumed:
            raise NotImplementedError("A reader can only be reset after all its samples were consumed")
        if self._end_epoch is not None:
            self._end_epoch = self._epoch + self.plan.num_epochs
        self.last_row_consumed = False
        self._outputs = None
        self._schedule = None

    def stop(self) -> None:
        """Stops reading and the workers; later ``next()`` calls raise."""
        self.stopped = True
        self._pool.stop()

    def join(self) -> None:
        """Waits (briefly) for the workers to end; worker processes still running are killed."""
        if self._joined:
            return
        self._joined = True
        self._finalizer()
        if self._cache_cleanup and self._cache is not None:
            self._cache.cleanup()

    def __enter__(self) -> "ReaderCore":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.stop()
        self.join()

    @property
    def diagnostics(self) -> dict:
        """Counters: the plan's row-group selection (``row_groups_total``, ``row_groups_selected``,
        ``row_groups_pruned_by_filters`` / ``_by_predicate`` / ``_by_selector``), what the workers did
        (``items_read``, ``rows_read``, ``rows_filtered_out`` by ``filters``, ``rows_dropped_by_predicate``,
        ``cache_requests``, ``cache_hits``), what was emitted (``samples_emitted``, ``rows_emitted``), the
        position (``epoch``, ``unit``, ``rows_in_unit``) and the pool (``pool_type``, ``workers_count``,
        ``items_in_flight``, ``file_opens``, ``footer_reads``)."""
        d = self.plan.diagnostics()
        for key in ("items_read", "rows_read", "rows_filtered_out", "rows_dropped_by_predicate", "cache_requests",
                    "cache_hits", "samples_emitted", "rows_emitted"):
            d[key] = int(self._counters.get(key, 0))
        d.update(epoch=self._epoch, unit=self._unit, rows_in_unit=self._rows_in_unit, pool_type=self._pool.kind,
                 workers_count=self._pool.workers_count, items_in_flight=len(self._inflight),
                 file_opens=self._loader.files.file_opens, footer_reads=self._loader.files.footer_reads)
        return d

    # -- resumable state ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The position of the next sample, as a small JSON-serialisable dict: give it to
        :meth:`load_state_dict` (or ``make_reader(..., resume_from=state)``) of a reader made with the same
        arguments to continue exactly there."""
        return {"version": STATE_VERSION, "seed": int(self.plan.seed), "epoch": self._epoch, "unit": self._unit,
                "rows_in_unit": self._rows_in_unit, "end_epoch": self._end_epoch,
                "batched": self._batched_output, "plan": self.plan.fingerprint()}

    def load_state_dict(self, state: dict) -> None:
        """Continues from a position saved by :meth:`state_dict` (same dataset and arguments; ``seed`` may be None
        here: the saved seed is used)."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"Not a reader state of version {STATE_VERSION}: {state!r}")
        if state.get("batched") != self._batched_output:
            raise ValueError("The state was saved by a reader of the other kind (make_reader vs make_batch_reader)")
        plan = dataclasses.replace(self.plan, seed=int(state["seed"]))
        if list(state.get("plan", [])) != plan.fingerprint():
            raise ValueError("The state was saved by a reader with different row groups, sharding, drop partitions "
                             "or shuffle buffer; it cannot be resumed by this reader")
        with self._lock:
            self.plan = plan
            self._units_cache.clear()
            self._epoch, self._unit = int(state["epoch"]), int(state["unit"])
            self._rows_in_unit = int(state["rows_in_unit"])
            self._end_epoch = state.get("end_epoch", self.plan.num_epochs)
            self._pool.discard_pending()
            self._inflight.clear()
            self._ready.clear()
            self._schedule = None
            self._outputs = None
            self.last_row_consumed = False

    # -- the engine ---------------------------------------------------------------------------------------------

    def _units(self, epoch: int) -> list:
        units = self._units_cache.get(epoch)
        if units is None:
            units = self.plan.epoch_units(epoch)
            self._units_cache[epoch] = units
            for old in [e for e in self._units_cache if e < epoch - 1]:
                del self._units_cache[old]
        return units

    def _done(self, epoch: int) -> bool:
        return self._end_epoch is not None and epoch >= self._end_epoch

    def _schedule_from(self, epoch: int, unit: int) -> Iterator[tuple[int, int, WorkItem]]:
        if self.plan.is_empty:
            return
        while not self._done(epoch):
            units = self._units(epoch)
            index = unit
            while (items := _unit_at(units, index)) is not None:
                for item in items:
                    yield epoch, index, item
                index += 1
            epoch, unit = epoch + 1, 0

    def _fill(self, minimum: int) -> None:
        window = self._window if self._started else self._start_window
        while len(self._inflight) < max(window, minimum):
            try:
                epoch, unit, item = next(self._schedule)
            except StopIteration:
                return
            seq = self._seq
            self._seq += 1
            self._pool.submit(seq, (item, epoch, self.plan.seed), self._loader.describe(item))
            self._inflight.append((seq, epoch, unit, item))

    def _next_result(self, unit_size: int) -> ItemResult:
        self._fill(unit_size)
        seq, epoch, unit, item = self._inflight.popleft()
        valid = {entry[0] for entry in self._inflight} | {seq}
        while seq not in self._ready:
            got_seq, ok, value = self._pool.get()
            if got_seq in valid:
                self._ready[got_seq] = (ok, value)
        ok, value = self._ready.pop(seq)
        if not ok:
            if isinstance(value, Exception):
                raise value
            raise ReaderWorkerError(f"A reader worker failed on {self._loader.describe(item)}: {value!r}")
        if self._started:
            self._fill(0)
        self._started = True
        stats = value.stats
        self._counters["items_read"] += 1
        for key in ("rows_read", "rows_filtered_out", "cache_requests", "cache_hits"):
            self._counters[key] += stats.get(key, 0)
        if "rows_after_predicate" in stats and "rows_read" in stats:
            self._counters["rows_dropped_by_predicate"] += (stats["rows_read"] - stats.get("rows_filtered_out", 0)
                                                            - stats["rows_after_predicate"])
        return value

    def _iterate(self, as_columns: bool = False) -> Iterator[Any]:
        self._schedule = self._schedule_from(self._epoch, self._unit)
        self._pool.discard_pending()
        self._inflight.clear()
        self._ready.clear()
        if self.plan.is_empty:
            return
        while not self._done(self._epoch):
            unit = _unit_at(self._units(self._epoch), self._unit)
            if unit is None:
                self._epoch, self._unit, self._rows_in_unit = self._epoch + 1, 0, 0
                continue
            results = [self._next_result(len(unit)) for _ in unit]
            skip = self._rows_in_unit
            if as_columns:
                columns, rows = self._unit_columns(results, self._epoch, self._unit)
                if rows > skip:
                    self._rows_in_unit = rows
                    self._counters["samples_emitted"] += rows - skip
                    self._counters["rows_emitted"] += rows - skip
                    yield {name: values[skip:] for name, values in columns.items()} if skip else columns
                self._unit += 1
                self._rows_in_unit = 0
                continue
            if self._batched_output:
                outputs = self._unit_batches(results, self._epoch, self._unit)
                for batch, rows in self._skip_batches(outputs, skip):
                    self._rows_in_unit += rows
                    self._counters["samples_emitted"] += 1
                    self._counters["rows_emitted"] += rows
                    yield batch
            else:
                for row in itertools.islice(self._unit_rows(results, self._epoch, self._unit), skip, None):
                    self._rows_in_unit += 1
                    self._counters["samples_emitted"] += 1
                    self._counters["rows_emitted"] += 1
                    yield row
            self._unit += 1
            self._rows_in_unit = 0
