"""Ventilators: feed work items to a generic pool's ``ventilate`` from a background thread.

:class:`ConcurrentVentilator` ventilates a list of keyword-argument dicts one or more times (or forever), optionally
in a fresh random order each time, and keeps at most ``max_ventilation_queue_size`` items ventilated but not yet
processed (the pool reports each processed item through :meth:`Ventilator.processed_item`).
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from time import sleep
from typing import Any, Callable

import numpy as np

__all__ = ["Ventilator", "ConcurrentVentilator", "sleep"]

_VENTILATION_INTERVAL = 0.01


class Ventilator(ABC):
    """What a pool needs from a ventilator: ``start``, ``processed_item``, ``completed`` and ``stop``.

    :param ventilate_fn: called for each item (usually a pool's ``ventilate``).
    """

    def __init__(self, ventilate_fn: Callable[..., Any]) -> None:
        self._ventilate_fn = ventilate_fn

    @abstractmethod
    def start(self) -> None:
        """Begins ventilating (the pool must be ready to take items)."""

    @abstractmethod
    def processed_item(self) -> None:
        """The pool's report that one ventilated item has been processed."""

    @abstractmethod
    def completed(self) -> bool:
        """Whether every item this ventilator will ever ventilate has been ventilated."""

    @abstractmethod
    def stop(self) -> None:
        """Stops ventilating."""


class ConcurrentVentilator(Ventilator):
    """Ventilates ``items_to_ventilate`` (a list of kwargs dicts) from its own daemon thread.

    :param ventilate_fn: called as ``ventilate_fn(**item)``.
    :param items_to_ventilate: a list of dicts.
    :param iterations: how many passes over the items; None: until :meth:`stop`.
    :param randomize_item_order: shuffle the items at the start of every pass.
    :param random_seed: seed of that shuffle; None or 0: not reproducible (as in the original).
    :param max_ventilation_queue_size: most items ventilated and not yet processed; default: the number of items.
    :param ventilation_interval: seconds between checks while that limit is reached.
    """

    def __init__(self, ventilate_fn: Callable[..., Any], items_to_ventilate: list, iterations: int | None = 1,
                 randomize_item_order: bool = False, random_seed: int | None = None,
                 max_ventilation_queue_size: int | None = None,
                 ventilation_interval: float = _VENTILATION_INTERVAL) -> None:
        super().__init__(ventilate_fn)
        if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
            raise ValueError("iterations must be positive integer or None")
        if not isinstance(items_to_ventilate, list) or not all(isinstance(item, dict) for item in items_to_ventilate):
            raise ValueError("items_to_ventilate must be a list of dicts")
        self._items_to_ventilate = items_to_ventilate
        self._iterations = iterations
        self._iterations_remaining = iterations
        self._randomize_item_order = randomize_item_order
        self._random_seed = random_seed
        seeded = random_seed is not None and random_seed != 0
        self._rng = np.random.default_rng(random_seed if seeded else None)
        self._max_ventilation_queue_size = max_ventilation_queue_size or len(items_to_ventilate)
        self._ventilation_interval = ventilation_interval
        self._ventilation_thread: threading.Thread | None = None
        self._ventilated_items_count = 0
        self._processed_items_count = 0
        self._stop_requested = False

    def start(self) -> None:
        self._ventilation_thread = threading.Thread(target=self._ventilate, name="petastorm-ventilator", daemon=True)
        self._ventilation_thread.start()

    def processed_item(self) -> None:
        self._processed_items_count += 1

    def completed(self) -> bool:
        return self._stop_requested or self._iterations_remaining == 0 or not self._items_to_ventilate

    def reset(self) -> None:
        """Ventilates all passes again; only allowed once the ventilator has completed."""
        if not self.completed():
            raise NotImplementedError("Resetting a ventilator while it is ventilating is not supported")
        self._iterations_remaining = self._iterations
        self.start()

    def _pass_order(self) -> list:
        if not self._randomize_item_order:
            return self._items_to_ventilate
        return [self._items_to_ventilate[i] for i in self._rng.permutation(len(self._items_to_ventilate))]

    def _wait_for_room(self) -> bool:
        """Sleeps while the ventilation queue is full; False if stopped meanwhile."""
        while self._ventilated_items_count - self._processed_items_count >= self._max_ventilation_queue_size:
            if self._stop_requested:
                return False
            sleep(self._ventilation_interval)
        return not self._stop_requested

    def _ventilate(self) -> None:
        while not self.completed():
            for item in self._pass_order():
                if not self._wait_for_room():
                    return
                self._ventilate_fn(**item)
                self._ventilated_items_count += 1
            if self._iterations_remaining is not None:
                self._iterations_remaining -= 1

    def stop(self) -> None:
        self._stop_requested = True
        thread, self._ventilation_thread = self._ventilation_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
