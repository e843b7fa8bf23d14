"""What a model is, in words: `tflstm info` prints it, `repr(StreamingModel)` says it in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tflstm import fused_op
from tflstm.flatbuf import ModelView
from tflstm.format import ModelMetadata, TensorSpec


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """The facts `tflstm info` shows about one model.

    Attributes:
        name: the file name, or "<bytes>" for a model given as bytes.
        size_bytes: size of the `.tflite` flatbuffer.
        fused_ops: number of fused LSTM ops (one per layer).
        total_ops: number of ops in subgraph 0.
        metadata: the model's tflstm metadata (embedded, or derived for stock models).
    """

    name: str
    size_bytes: int
    fused_ops: int
    total_ops: int
    metadata: ModelMetadata

    @classmethod
    def of(cls, view: ModelView, metadata: ModelMetadata, path: str | Path | None = None) -> ModelSummary:
        """The summary of a verified model and its metadata."""
        codes = [op.builtin_code for op in view.operators]
        return cls(
            name="<bytes>" if path is None else Path(path).name, size_bytes=len(view.content),
            fused_ops=codes.count(fused_op.BUILTIN_CODE), total_ops=len(codes), metadata=metadata,
        )

    def normalization(self) -> str:
        """"mean [...] std [...]" or "none"."""
        norm = self.metadata.normalization
        if norm is None:
            return "none (inputs are fed as they are)"
        return f"(x - mean) / std, mean {_numbers(norm['mean'])}, std {_numbers(norm['std'])}"

    def lines(self) -> list[tuple[str, str]]:
        """(label, text) rows, as `tflstm info` prints them."""
        meta = self.metadata
        kind = {"step": "step (one time step per invoke, state carried)", "sequence": "sequence"}[meta.kind]
        return [
            ("kind", kind),
            ("quantization", meta.quantization),
            *[("input", _tensor(t)) for t in meta.inputs],
            ("normalization", self.normalization()),
            *[("output", _tensor(t)) for t in meta.outputs],
            *[("state", _tensor(t)) for t in meta.states],
            ("per invoke", f"batch {meta.batch_size} x {meta.time_steps} time step(s)"),
            ("fused ops", f"{self.fused_ops} {fused_op.OP_NAME} of {self.total_ops} ops"),
            ("file size", f"{self.size_bytes:,} bytes ({self.size_bytes / 1024:.1f} KiB)"),
            ("fingerprint", meta.fingerprint),
            ("converter", ", ".join(f"{k} {v}" for k, v in meta.converter.items()) or "-"),
        ]

    def one_line(self) -> str:
        """The same facts on one line (states by name and shape, fingerprint shortened)."""
        meta = self.metadata
        inputs = ", ".join(_tensor(t) for t in meta.inputs)
        outputs = ", ".join(_tensor(t) for t in meta.outputs)
        states = " ".join(f"{s.name}{list(s.shape)}" for s in meta.states)
        norm = "none" if meta.normalization is None else f"mean/std of {len(meta.normalization['mean'])} features"
        return (
            f"{self.name}: {meta.kind} {meta.quantization}, input {inputs}, output {outputs}, "
            f"states {states}, normalization {norm}, batch {meta.batch_size} x {meta.time_steps} step(s), "
            f"{self.fused_ops} fused LSTM ops, {self.size_bytes / 1024:.1f} KiB, fingerprint {meta.fingerprint[:12]}"
        )


def _tensor(spec: TensorSpec) -> str:
    quantized = "" if spec.scale is None else f" (scale {spec.scale:.3g}, zero point {spec.zero_point})"
    return f"{spec.name} {spec.dtype}{list(spec.shape)}{quantized}"


def _numbers(values: list[float], shown: int = 6) -> str:
    text = ", ".join(f"{v:.4g}" for v in values[:shown])
    return f"[{text}{', ...' if len(values) > shown else ''}]"
