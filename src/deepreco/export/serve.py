"""``deepreco serve REPO``: the ONNX models of a Triton model repository (``deepreco export --triton``) served
over the KServe v2 inference protocol (HTTP and gRPC, the protocol Triton speaks), with MLServer as the
embedded server and onnxruntime running the models.

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
    """(name, version, file, onnxruntime session) of every model of the repository: ``NAME/<version>/model.onnx``,
    the highest version of each; a file onnxruntime cannot load is refused here, before the server starts."""
    from .onnx import session

    repo = Path(repo)
    if not repo.is_dir():
        raise DeepRecoError(f"{repo}: no such model repository")
    found = []
    for folder in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        versions = sorted(int(v.name) for v in folder.iterdir() if v.name.isdigit() and (v / "model.onnx").is_file())
        if versions:
            path = folder / str(versions[-1]) / "model.onnx"
            try:
                sess = session(path)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds on a broken file
                first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise DeepRecoError(f"{path}: onnxruntime cannot load it ({first})") from None
            found.append((folder.name, versions[-1], path, sess))
    if not found:
        raise DeepRecoError(f"{repo}: no NAME/<version>/model.onnx in it (write one with deepreco export --triton)")
    return found


def model_settings(repo) -> list:
    """MLServer settings of every model of the repository, with its metadata from the ONNX file."""
    from mlserver.settings import ModelParameters, ModelSettings
    from mlserver.types import MetadataTensor

    from .runtime import V2_DTYPE

    def meta(items):
        return [MetadataTensor(name=i.name, datatype=V2_DTYPE.get(i.type, "BYTES"),
                               shape=[d if isinstance(d, int) else -1 for d in i.shape]) for i in items]

    settings = []
    for name, version, path, sess in find_models(repo):
        settings.append(ModelSettings(name=name, implementation="deepreco.export.runtime.OnnxModel",
                                      platform="onnxruntime_onnx", versions=[str(version)],
                                      inputs=meta(sess.get_inputs()), outputs=meta(sess.get_outputs()),
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

    asyncio.run(run())
