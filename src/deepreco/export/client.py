"""A network served by ``deepreco serve`` (or a Triton server of ``deepreco export --triton``), called like the
in-process torch module: the same inputs, the same outputs.

The client speaks the KServe v2 protocol over gRPC with ``tritonclient``: the tensors travel as raw bytes,
where the HTTP/JSON form would spell out every number of a 400,000-edge graph. The address is the server's
gRPC one, ``HOST:PORT`` or ``grpc://HOST:PORT`` (``deepreco serve --port 8000`` listens for gRPC on 8001).

Every call has a timeout; a server that is down, slow or answers an error is one `DeepRecoError` line. `connect`
checks, before the first event, that the server is up and serves every network a method needs; with
``fallback="local"`` a server that does not answer is said on stderr and the method runs its networks
in-process instead, and so is a server that stops answering mid-run: from that call on, the network runs
in-process (the model file the method was given), said once on stderr. An error answer (a 4xx) stays an error.
A `RemoteNetwork` pickles without its connection (a Dask worker opens its own).

This module imports no mlserver: mlserver and tritonclient's gRPC module register the same protobuf names, so
a process holds the server or the client, never both.
"""

from __future__ import annotations

import sys
import weakref

import numpy as np

from ..errors import DeepRecoError
from ..registry import FALLBACKS as REGISTRY_FALLBACKS
from .networks import OC_KEYS, get_network

TIMEOUT = 120.0  # seconds a request may take (a mu = 200 event's filter chunk takes about one on a CPU server)
FALLBACKS = (None, *REGISTRY_FALLBACKS)  # not given, or local (listed in deepreco.registry)
V2 = {"float32": "FP32", "int64": "INT64"}
GONE = ("StatusCode.UNAVAILABLE",)  # gRPC's status when nothing answers at the address (a server that died)


def _grpc():
    try:
        import tritonclient.grpc as grpcclient
    except ImportError:
        raise DeepRecoError("--server needs tritonclient: pip install 'deepreco[serve]'") from None
    return grpcclient


def grpc_address(url: str) -> str:
    """``HOST:PORT`` of ``url`` (``HOST:PORT`` or ``grpc://HOST:PORT``)."""
    text = str(url).strip()
    if text.startswith("grpc://"):
        text = text[len("grpc://"):]
    elif "://" in text:
        raise DeepRecoError(f"server {url}: give the server's gRPC address, HOST:PORT or grpc://HOST:PORT "
                            "(deepreco serve --port P listens for gRPC on P + 1)")
    host, _, port = text.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise DeepRecoError(f"server {url}: expected HOST:PORT, e.g. localhost:8001")
    return f"{host}:{port}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:240] if text else type(exc).__name__


def _let_go(box: list) -> None:
    """Close the gRPC client in ``box`` and drop it, with its `RemoteNetwork` or at exit while gRPC is whole.
    Dropped, not only closed: tritonclient's ``__del__`` closes again, and run at interpreter teardown (a
    RemoteNetwork kept alive to the end by a reference cycle, e.g. a test's frame held by its own
    ``pytest.raises``) it finds grpc's module globals gone and prints an AttributeError traceback."""
    while box:
        box.pop().close()


class RemoteNetwork:
    """The network ``name`` (an `deepreco.export.NETWORKS` name) on the server at ``url``.

    ``run(*arrays)`` sends NumPy arrays and returns the outputs as NumPy arrays, in the network's order;
    calling it with torch tensors returns what the torch module returns: one tensor, a tuple, or for the
    calorimeter condensation networks the dict of ``beta, coords, energy, logits``.
    """

    def __init__(self, url: str, name: str, timeout: float = TIMEOUT, fallback: str | None = None, model=None):
        self.url, self.name, self.timeout = url, name, float(timeout)
        self.address = grpc_address(url)
        self.spec = get_network(name)
        self.fallback, self.model = fallback, model
        self._box = []  # the gRPC client, once opened: its only reference (`_let_go`)
        self._local = None  # the in-process network, once the server has stopped answering (fallback local)

    def __getstate__(self):
        return {**self.__dict__, "_box": [], "_local": None}

    def __repr__(self) -> str:
        return f"RemoteNetwork({self.name!r} at {self.address})"

    @property
    def client(self):
        if not self._box:
            self._box.append(_grpc().InferenceServerClient(self.address))
            weakref.finalize(self, _let_go, self._box)
        return self._box[0]

    def check(self) -> None:
        """`DeepRecoError` unless the server is up and serves this network."""
        from tritonclient.utils import InferenceServerException

        try:
            ready = self.client.is_model_ready(self.name, client_timeout=min(self.timeout, 10.0))
        except InferenceServerException as exc:
            raise DeepRecoError(f"server {self.address} does not answer ({_first_line(exc)})") from None
        if not ready:
            raise DeepRecoError(f"server {self.address} does not serve the network {self.name} "
                                "(export it with deepreco export --triton)")

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        from tritonclient.utils import InferenceServerException

        grpcclient = _grpc()
        if len(arrays) != len(self.spec.inputs):
            raise DeepRecoError(f"{self.name} takes {len(self.spec.inputs)} inputs, got {len(arrays)}")
        items = []
        for t, a in zip(self.spec.inputs, arrays, strict=True):
            a = np.ascontiguousarray(a, dtype=t.dtype)
            item = grpcclient.InferInput(t.name, list(a.shape), V2[t.dtype])
            item.set_data_from_numpy(a)
            items.append(item)
        if self._local is not None:
            return self._run_local(arrays)
        wanted = [grpcclient.InferRequestedOutput(t.name) for t in self.spec.outputs]
        try:
            result = self.client.infer(self.name, items, outputs=wanted, client_timeout=self.timeout)
        except InferenceServerException as exc:
            if self.fallback != "local" or exc.status() not in GONE:
                raise DeepRecoError(f"server {self.address}, network {self.name}: {_first_line(exc)}") from None
            print(f"warning: server {self.address} stopped answering ({_first_line(exc)}); {self.name} runs "
                  "in-process from now on (--fallback local)", file=sys.stderr, flush=True)
            self._local = self.spec.load(self.model)[1]
            return self._run_local(arrays)
        return [np.array(result.as_numpy(t.name)) for t in self.spec.outputs]  # writable copies

    def _run_local(self, arrays) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            outs = self._local(*[torch.from_numpy(np.ascontiguousarray(a, dtype=t.dtype))
                                 for t, a in zip(self.spec.inputs, arrays, strict=True)])
        return [o.numpy() for o in outs]

    def __call__(self, *inputs):
        import torch

        outs = [torch.from_numpy(o) for o in self.run(*[torch.as_tensor(i).numpy() for i in inputs])]
        if tuple(t.name for t in self.spec.outputs) == OC_KEYS:
            return dict(zip(OC_KEYS, outs, strict=True))
        return outs[0] if len(outs) == 1 else tuple(outs)

    # the in-process modules are moved and switched to eval; a remote network is where it is
    def to(self, *args, **kwargs) -> RemoteNetwork:
        return self

    def eval(self) -> RemoteNetwork:
        return self


class RemoteDeepCore(RemoteNetwork):
    """DeepCore on the server, with the in-process model's ``predict``: (sigmoid of the logits, parameters)."""

    def __init__(self, url: str, timeout: float = TIMEOUT, fallback: str | None = None, model=None):
        super().__init__(url, "deepcore", timeout, fallback, model)

    def predict(self, maps, jet):
        import torch

        logits, params = self(maps, jet)
        return torch.sigmoid(logits), params


def connect(url: str | None, names, fallback: str | None = None, timeout: float = TIMEOUT,
            what: str = "the method", model=None) -> dict[str, RemoteNetwork] | None:
    """The networks ``names`` on the server at ``url``, checked now (before any event); None when ``url`` is
    None, or when the server does not answer and ``fallback`` is ``"local"`` (said on stderr). ``model``: the
    model file the networks come from (None: the shipped one), run in-process if the server stops answering
    mid-run with ``fallback="local"``."""
    if fallback not in FALLBACKS:
        raise DeepRecoError(f"unknown fallback {fallback!r}; expected local or none")
    if url is None:
        return None
    remote = {n: (RemoteDeepCore(url, timeout, fallback, model) if n == "deepcore"
                  else RemoteNetwork(url, n, timeout, fallback, model)) for n in names}
    try:
        for net in remote.values():
            net.check()
    except DeepRecoError as exc:
        if fallback != "local":
            raise
        print(f"warning: {exc}; {what} runs its networks in-process (--fallback local)", file=sys.stderr)
        return None
    return remote
