"""The per-process handle on the store and the domain settings.

The store is opened on first use, not at import or app creation, so a worker
starts (and answers liveness) even while the database is still coming up; the
readiness endpoint reports 503 until it can be opened. A store that can be
reached but is wrong for this code (an index built with other fingerprint
parameters, a bad URL) is another matter: :meth:`Services.warm_up` raises, so
the worker fails at boot instead of answering 503 forever.
"""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app

from audiofp.config import Settings
from audiofp.errors import RetryableError, StoreUnavailableError
from audiofp.services.operations import Store, open_store

from .errors import StoreUnavailable

#: Failures to open the store that may go away by themselves: the database is down
#: or busy. Anything else (IndexMismatchError, ParameterError) needs an operator.
TRANSIENT_OPEN_ERRORS = (StoreUnavailableError, RetryableError)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url: str = settings.resolved_database_url
        self.migrate: bool = settings.server.migrate
        self._store: Store | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        if self._store is not None and self._pid != os.getpid():
            # Forked after opening (gunicorn --preload): the parent's pooled
            # connections must not be shared; drop them without closing them.
            self._store.engine.dispose(close=False)
            self._store = None
        if self._store is None:
            with self._lock:
                if self._store is None:
                    try:
                        self._store = open_store(
                            self.url, migrate=self.migrate, index_dir=self.settings.resolved_index_dir,
                            refresh_postings=self.settings.index.index_refresh_postings)
                        self._pid = os.getpid()
                    except TRANSIENT_OPEN_ERRORS as exc:
                        raise StoreUnavailable(f"the store cannot be opened ({type(exc).__name__}); retry later",
                                               headers={"Retry-After": "5"}) from exc
        return self._store

    def warm_up(self) -> bool:
        """Open the store and load the engine now, so the first request does not pay for it.

        Returns False (and stays lazy) if the database is not reachable yet.

        Raises
        ------
        IndexMismatchError
            If the index was built with other fingerprint parameters, or its
            schema by newer code: no request could be served, so the worker must not start.
        ParameterError
            If the configured database URL is not one audiofp supports.
        """
        import audiofp.services  # noqa: F401 - imports numpy/scipy/PyAV once, at boot
        from audiofp.services.catalogue import warm_up_matcher

        warm_up_matcher()  # the compiled kernels, so the first request does not compile them

        try:
            self.store
        except StoreUnavailable:  # readiness reports it; requests retry opening
            return False
        return True

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


def services() -> Services:
    return current_app.extensions["audiofp"]


def init_app(app: Flask) -> None:
    app.extensions["audiofp"] = Services(app.config["AUDIOFP_SETTINGS"])
