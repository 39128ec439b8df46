"""The MLServer runtime of ``deepreco serve``: one ONNX model run by onnxruntime, every request checked against
its inputs first (a wrong name, dtype, rank or fixed dim is a 400 naming it). Imported only by the server:
mlserver is an optional dependency (the ``serve`` extra)."""

from __future__ import annotations

import os

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

from .onnx import session

# KServe v2 datatypes of the ONNX element types the networks use
V2_DTYPE = {"tensor(float)": "FP32", "tensor(int64)": "INT64"}
NUMPY_DTYPE = {"FP32": "float32", "INT64": "int64"}
V2_OF_NUMPY = {v: k for k, v in NUMPY_DTYPE.items()}


class OnnxModel(MLModel):
    """One ONNX model; ``parameters.uri`` is its file, ``DEEPRECO_SERVE_THREADS`` its onnxruntime threads."""

    async def load(self) -> bool:
        threads = int(os.environ.get("DEEPRECO_SERVE_THREADS", "1"))
        self._session = session(self.settings.parameters.uri, threads=threads)
        self._inputs = {i.name: (V2_DTYPE[i.type], [d if isinstance(d, int) else -1 for d in i.shape])
                        for i in self._session.get_inputs()}
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    def _run(self, feed: dict) -> list:
        return self._session.run(self._outputs, feed)

    def _feed(self, payload: InferenceRequest) -> dict:
        given = [i.name for i in payload.inputs]
        if sorted(given) != sorted(self._inputs):
            raise InferenceError(f"model {self.name} takes inputs {', '.join(self._inputs)}; "
                                 f"the request has {', '.join(given) or 'none'}")
        feed = {}
        for item in payload.inputs:
            dtype, dims = self._inputs[item.name]
            sent = getattr(item.datatype, "value", item.datatype)  # an enum or its string, by pydantic's setting
            if sent != dtype:
                raise InferenceError(f"model {self.name} input {item.name} is {dtype}, the request sends {sent}")
            shape = list(item.shape)
            if len(shape) != len(dims) or any(d != -1 and d != s for d, s in zip(dims, shape, strict=True)):
                raise InferenceError(f"model {self.name} input {item.name} has shape {dims} (-1: any), the "
                                     f"request sends {shape}")
            try:
                array = NumpyCodec.decode_input(item)
                feed[item.name] = np.ascontiguousarray(array, dtype=NUMPY_DTYPE[dtype]).reshape(shape)
            except Exception:  # noqa: BLE001 - data that do not fill the shape, whatever the codec raises
                raise InferenceError(f"model {self.name} input {item.name}: the data do not fill shape "
                                     f"{shape}") from None
        return feed

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = self._feed(payload)
        try:
            outputs = self._run(feed)
        except Exception as exc:  # noqa: BLE001 - the runtime's errors on values the shapes let through
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise InferenceError(f"model {self.name}: {first}") from None
        # built by hand: MLServer's NumpyCodec sends a 1-d array as (n, 1)
        return InferenceResponse(model_name=self.name, model_version=self.version, id=payload.id,
                                 outputs=[ResponseOutput(name=n, shape=list(o.shape),
                                                         datatype=V2_OF_NUMPY[o.dtype.name], data=o.ravel().tolist())
                                          for n, o in zip(self._outputs, outputs, strict=True)])


class TreeNetwork(OnnxModel):
    """A calorimeter network of ``deepreco export --knn tree``: the in-process torch network with numba's tree
    search (`deepreco.export.pybackend.tree_network`); ``parameters.uri`` is its model file,
    ``DEEPRECO_SERVE_THREADS`` its torch and numba threads. Requests are checked as the ONNX models' are."""

    async def load(self) -> bool:
        import torch

        from .networks import get_network
        from .pybackend import tree_network

        torch.set_num_threads(int(os.environ.get("DEEPRECO_SERVE_THREADS", "1")))
        spec = get_network(self.name)
        self._module = tree_network(self.name, self.settings.parameters.uri)
        self._inputs = {t.name: (V2_OF_NUMPY[t.dtype], [d if isinstance(d, int) else -1 for d in t.dims])
                        for t in spec.inputs}
        self._outputs = [t.name for t in spec.outputs]
        return True

    def _run(self, feed: dict) -> list:
        from .pybackend import run_tree_network

        return run_tree_network(self._module, self.name, [feed[t] for t in self._inputs])
