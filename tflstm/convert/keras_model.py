"""Reading a Keras model: which Keras made it, its input, its layers and how they are wired.

Two Kerases are in use: Keras 3 (`keras`, TensorFlow 2.16+'s `tf.keras`) and
tf-keras (`tf_keras`, Keras 2, also `tf.keras` under `TF_USE_LEGACY_KERAS=1`).
Both describe a functional model's wiring in `get_config()`, in two formats:

    Keras 3    "inbound_nodes": [{"args": [<tensor>, ...], "kwargs": {...}}], a
               tensor being {"class_name": "__keras_tensor__",
               "config": {"keras_history": [layer, node_index, tensor_index]}}
    tf-keras   "inbound_nodes": [[[layer, node_index, tensor_index, kwargs], ...]]

A Sequential model is a chain of its `layers`. Nothing here imports a Keras
that the model did not come from.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from tflstm.convert.errors import UnsupportedModelError

FLAVORS = ("keras", "tf_keras")
"""Module names of Keras 3 and tf-keras."""


@dataclasses.dataclass(frozen=True)
class KerasNode:
    """One layer call of the model.

    Attributes:
        layer: the Keras layer.
        inputs: names of the layers whose outputs it takes, in call order.
        call_kwargs: names of the call's keyword arguments that carry a value
            (e.g. "initial_state", "mask"); `training` is left out.
    """

    layer: Any
    inputs: tuple[str, ...]
    call_kwargs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The layer's name, unique in the model."""
        return self.layer.name


@dataclasses.dataclass(frozen=True)
class KerasGraph:
    """A Keras model's single input, its layer calls in topological order, and its outputs.

    Attributes:
        model: the Keras model.
        keras: the Keras module it belongs to (`keras` or `tf_keras`).
        input_name: name of the input layer.
        window: time steps of the input (its fixed time dimension), or None.
        depth: features per time step.
        nodes: every layer call but the input, producers before consumers.
        outputs: names of the layers whose outputs the model returns.
    """

    model: Any
    keras: ModuleType
    input_name: str
    window: int | None
    depth: int
    nodes: tuple[KerasNode, ...]
    outputs: tuple[str, ...]


def keras_module(model: Any) -> ModuleType:
    """`keras` or `tf_keras`, whichever `model` is a model of.

    Raises:
        TypeError: `model` is not a Keras model.
    """
    for cls in type(model).__mro__:  # the first Keras class: subclassed models are defined elsewhere
        root = cls.__module__.split(".")[0]
        if root in FLAVORS:
            module = __import__(root)
            if isinstance(model, module.Model):
                return module
            break
    raise TypeError(
        f"Expected a Keras 3 or tf-keras model, or the path of a saved one, got {type(model).__name__} "
        f"from module {type(model).__module__!r}."
    )


def saved_keras_version(path: Path) -> str:
    """The Keras version that wrote a `.keras` or `.h5` file ("2..." for tf-keras, "3..." for Keras 3).

    A SavedModel directory can only come from tf-keras (Keras 3 exports, but does not
    load, SavedModels as models), so it reads as "2".

    Raises:
        ValueError: an unknown kind of file, or one without a recorded version.
    """
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "2"
        raise ValueError(f"{path} is a directory without saved_model.pb: not a SavedModel.")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            version = json.loads(archive.read("metadata.json")).get("keras_version")
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as h5:
            version = h5.attrs.get("keras_version")
        version = version.decode() if isinstance(version, bytes) else version
    else:
        raise ValueError(f"Expected a .keras file, a .h5 file or a SavedModel directory, got {path}.")
    if not version:
        raise ValueError(f"{path} records no Keras version: save it with model.save().")
    return str(version)


def load_model(model_or_path: Any) -> Any:
    """A Keras model as given, or loaded (without compiling) from a `.keras`/`.h5` file or SavedModel.

    Files written by Keras 3 load with `keras`, those written by tf-keras with `tf_keras`.
    """
    if not isinstance(model_or_path, (str, Path)):
        keras_module(model_or_path)
        return model_or_path
    path = Path(model_or_path)
    if not path.exists():
        raise FileNotFoundError(f"No Keras model at {path}.")
    module = __import__("keras" if saved_keras_version(path).startswith("3") else "tf_keras")
    try:
        return module.models.load_model(str(path), compile=False)
    except (TypeError, ValueError) as err:
        raise UnsupportedModelError(
            f"{module.__name__} could not load {path}: {err}. If the model has custom layers or Lambda "
            "layers, tflstm cannot convert it: build it from the layers tflstm supports (see the README's "
            "Keras section)."
        ) from err


def _layer_refs(value: Any) -> list[str]:
    """Names of the layers whose outputs a Keras 3 call argument holds, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for item in value.values() for name in _layer_refs(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _layer_refs(item)]
    return []


def _parse_node(layer_config: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input layer names, keyword arguments with a value) of a layer's only call."""
    name = layer_config["config"]["name"]
    nodes = layer_config["inbound_nodes"]
    if len(nodes) != 1:
        raise UnsupportedModelError(
            f"Layer {name!r} ({layer_config['class_name']}) is called {len(nodes)} times: a layer shared between "
            "calls is not supported. Use a separate layer for each call."
        )
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3
        kwargs = {key: value for key, value in node.get("kwargs", {}).items() if key != "training"}
        return tuple(_layer_refs(node.get("args", []))), tuple(k for k, v in kwargs.items() if v is not None)
    inputs = tuple(ref[0] for ref in node)  # tf-keras: [layer, node_index, tensor_index, kwargs]
    kwargs = {key for ref in node if len(ref) > 3 for key, value in ref[3].items() if value is not None}
    return inputs, tuple(sorted(kwargs - {"training"}))


def _io_names(refs: list[Any]) -> list[str]:
    """Layer names of a functional config's `input_layers` / `output_layers` (one ref or a list)."""
    return [refs[0]] if refs and isinstance(refs[0], str) else [ref[0] for ref in refs]


def _topological(nodes: dict[str, KerasNode], outputs: list[str], known: set[str]) -> list[KerasNode]:
    order: list[KerasNode] = []
    done = set(known)

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path or name not in nodes:
            raise UnsupportedModelError(f"Layer {name!r} cannot be reached from the model's input.")
        for parent in nodes[name].inputs:
            visit(parent, (*path, name))
        done.add(name)
        order.append(nodes[name])

    for name in outputs:
        visit(name, ())
    return order


def read_graph(model: Any) -> KerasGraph:
    """The model's wiring: its one input, layer calls and outputs.

    Raises:
        UnsupportedModelError: a subclassed model, several inputs, a shared
            layer, or an input that is not [batch, time, features].
    """
    keras = keras_module(model)
    try:
        config = model.get_config()
    except NotImplementedError:  # tf-keras: a subclassed model without get_config
        config = None
    if not isinstance(config, dict) or "layers" not in config:
        raise UnsupportedModelError(
            f"Model {model.name!r} ({type(model).__name__}) is a subclassed model: tflstm reads the layers of "
            "Sequential and functional models. Rebuild it as one of those."
        )
    inputs = model.inputs or []
    if len(inputs) != 1:
        raise UnsupportedModelError(
            f"Model {model.name!r} has {len(inputs)} inputs: tflstm converts models with one input "
            "[batch, time, features] (build the model with an Input shape)."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 3 or shape[2] is None:
        raise UnsupportedModelError(
            f"Model {model.name!r} takes input of shape {list(shape)}: expected [batch, time, features] with a "
            "known number of features."
        )
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        first = config["layers"][0] if config["layers"] else {}
        input_name = first["config"]["name"] if first.get("class_name") == "InputLayer" else "input"
        nodes = [KerasNode(layer, (layers[k - 1].name,) if k else (input_name,)) for k, layer in enumerate(layers)]
        outputs = [layers[-1].name]
    else:
        (input_name,) = _io_names(config["input_layers"])
        by_name = {}
        for layer_config in config["layers"]:
            name = layer_config["config"]["name"]
            if name == input_name:
                continue
            refs, kwargs = _parse_node(layer_config)
            by_name[name] = KerasNode(model.get_layer(name), refs, kwargs)
        outputs = _io_names(config["output_layers"])
        nodes = _topological(by_name, outputs, {input_name})
    return KerasGraph(
        model=model, keras=keras, input_name=input_name, window=shape[1], depth=int(shape[2]),
        nodes=tuple(nodes), outputs=tuple(outputs),
    )
