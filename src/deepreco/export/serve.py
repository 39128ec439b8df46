"""``deepreco serve REPO``: the ONNX models of a Triton model repository (``deepreco export --triton``) served
over the KServe v2 inference protocol (HTTP and gRPC, the protocol Triton speaks), with MLServer as the
embedded server and onnxruntime running the models; the calorimeter networks of ``--knn tree`` run in torch
with the in-process tree search.

mlserver and tritonclient's gRPC module register the same protobuf names, so one process cannot import both:
the server imports no tritonclient, and a client process no mlserver.

MLServer runs in one process (``parallel_workers: 0``: its worker pool crashed on these machines). Every
request is checked against the model's inputs before it reaches onnxruntime: an unknown or missing input, a
dtype or a rank or a fixed dim that differs is a 400 with one line saying which, and the server answers the
next request as before. Health (``/v2/health/live``, ``/v2/health/ready``) and model metadata
(``/v2/models/NAME``) are MLServer's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from ..errors import DeepRecoError

GRPC_MAX_MESSAGE = 1 << 30


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port p with p and p + 1 free on ``host``: the HTTP and gRPC ports of a `deepreco serve` (tests,
    benchmarks). Imports nothing heavy, so a client process may call it."""
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind((host, port + 1))
            return port
        except OSError:
            continue
    raise DeepRecoError("no two free consecutive ports")


def _require_mlserver():
    try:
        import mlserver  # noqa: F401
    except ImportError:
        raise DeepRecoError("deepreco serve needs mlserver: pip install 'deepreco[serve]'") from None


def find_models(repo) -> list[tuple]:
    """(name, version, file, what) of every model of the repository, the highest version of each:
    ``NAME/<version>/model.onnx`` (``what``: its onnxruntime session), and a calorimeter network written with
    ``--knn tree``, ``NAME/<version>/model.py`` + ``model.pt`` (``what``: the torch module). A file that cannot
    be loaded is refused here, before the server starts. The other Python-backend models (steps and BLS) need
    Triton and are left out."""
    from .onnx import session
    from .pybackend import TREE_NETWORKS, tree_network

    repo = Path(repo)
    if not repo.is_dir():
        raise DeepRecoError(f"{repo}: no such model repository")
    found = []
    for folder in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        tree = folder.name in TREE_NETWORKS
        versions = sorted(int(v.name) for v in folder.iterdir() if v.name.isdigit() and (
            (v / "model.onnx").is_file() or (tree and (v / "model.py").is_file() and (v / "model.pt").is_file())))
        if not versions:
            continue
        path = folder / str(versions[-1]) / "model.onnx"
        if path.is_file():
            try:
                what = session(path)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds on a broken file
                first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise DeepRecoError(f"{path}: onnxruntime cannot load it ({first})") from None
        else:
            path = path.with_name("model.pt")
            what = tree_network(folder.name, path)  # a model file of another kind: its one-line error
        found.append((folder.name, versions[-1], path, what))
    if not found:
        raise DeepRecoError(f"{repo}: no NAME/<version>/model.onnx in it (write one with deepreco export --triton)")
    return found


def model_settings(repo) -> list:
    """MLServer settings of every model of the repository, with its metadata (from the ONNX file, or the
    network's declared inputs and outputs for a ``--knn tree`` model)."""
    from mlserver.settings import ModelParameters, ModelSettings
    from mlserver.types import MetadataTensor

    from .networks import get_network
    from .runtime import V2_DTYPE, V2_OF_NUMPY

    def meta(items):
        return [MetadataTensor(name=i.name, datatype=V2_DTYPE.get(i.type, "BYTES"),
                               shape=[d if isinstance(d, int) else -1 for d in i.shape]) for i in items]

    def declared(tensors):
        return [MetadataTensor(name=t.name, datatype=V2_OF_NUMPY[t.dtype],
                               shape=[d if isinstance(d, int) else -1 for d in t.dims]) for t in tensors]

    settings = []
    for name, version, path, what in find_models(repo):
        if path.suffix == ".onnx":
            runtime, platform, inputs, outputs = ("deepreco.export.runtime.OnnxModel", "onnxruntime_onnx",
                                                  meta(what.get_inputs()), meta(what.get_outputs()))
        else:
            spec = get_network(name)
            runtime, platform, inputs, outputs = ("deepreco.export.runtime.TreeNetwork", "python",
                                                  declared(spec.inputs), declared(spec.outputs))
        settings.append(ModelSettings(name=name, implementation=runtime, platform=platform, versions=[str(version)],
                                      inputs=inputs, outputs=outputs,
                                      parameters=ModelParameters(uri=str(path), version=str(version))))
    return settings


def serve(repo, port: int = 8000, grpc_port: int | None = None, host: str = "127.0.0.1", threads: int = 1,
          on_ready=None) -> None:
    """Serve the repository until interrupted: HTTP on ``port``, gRPC on ``grpc_port`` (``port + 1``)."""
    find_models(repo)  # a bad folder is refused before the server is imported
    _require_mlserver()
    from mlserver import MLServer
    from mlserver.settings import Settings

    os.environ["DEEPRECO_SERVE_THREADS"] = str(threads)
    models = model_settings(repo)
    # gRPC messages up to 1 GiB (the default 4 MiB is a 100,000-edge graph): a mu = 200 event's graph is larger
    settings = Settings(http_port=port, grpc_port=grpc_port or port + 1, host=host, parallel_workers=0,
                        metrics_endpoint=None, debug=False, load_models_at_startup=False,
                        grpc_max_message_length=GRPC_MAX_MESSAGE)
    if on_ready is not None:
        on_ready([m.name for m in models], settings)

    async def run():
        await MLServer(settings).start(models)

    logging.getLogger("uvicorn.error").addFilter(_quiet_shutdown)
    asyncio.run(run())


def _quiet_shutdown(record: logging.LogRecord) -> bool:
    """Drop the traceback uvicorn logs when MLServer, stopping on Ctrl-C or SIGTERM, cancels the application's
    lifespan task (Starlette reports the ``CancelledError`` as a failed shutdown): a server stopped as it should
    be ends without a traceback."""
    message = record.getMessage()
    return not (message.startswith("Traceback") and message.rstrip().endswith("CancelledError"))
