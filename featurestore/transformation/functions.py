"""Transformation functions (hsfs's model-dependent transformations): the record, the ``@udf`` decorator
for user-defined ones and the built-ins.

A :class:`TransformationFunction` is a name and version plus either a built-in's name or a Python
function, bound to the input features it reads (``min_max_scaler("amount")``) and naming its output
feature(s). A user-defined function is called once per row with the row's input values (``None`` for
null) and its result is converted to the declared return type, the same way on every path (Spark rows,
in-process vectors, the HTTP server), so the same input gives the same output everywhere.

User functions are stored by value (cloudpickle, the serializer Spark itself uses for Python
functions) so that another process, such as the HTTP server, runs exactly the registered code.
Loading one executes code from the registry: the registry is as trusted as the code that wrote it.
"""

from __future__ import annotations

import base64
import getpass
import inspect
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from featurestore.errors import FeatureStoreError

BUILTINS = ("min_max_scaler", "standard_scaler", "robust_scaler", "label_encoder", "one_hot_encoder")
# Spark type of each built-in's output(s)
BUILTIN_TYPES = {"min_max_scaler": "double", "standard_scaler": "double", "robust_scaler": "double",
                 "label_encoder": "int", "one_hot_encoder": "int"}
# Return types a user function may declare: Spark DDL type -> the Python conversion applied to every result
RETURN_TYPES: dict[str, Callable[[Any], Any]] = {"double": float, "bigint": int, "int": int, "string": str,
                                                 "boolean": bool}
_PYTHON_TYPES = {float: "double", int: "bigint", str: "string", bool: "boolean"}
_TYPE_ALIASES = {"integer": "int", "long": "bigint", "str": "string", "bool": "boolean", "float64": "double"}


class TransformationError(FeatureStoreError, ValueError):
    """Bad input for a transformation function, or a function that failed: names the function, its
    version and the feature at fault."""


def return_type_name(return_type: Any) -> str:
    """The Spark DDL name of a declared return type (``float``, ``"double"``, a Spark ``DataType``)."""
    if isinstance(return_type, type) and return_type in _PYTHON_TYPES:
        return _PYTHON_TYPES[return_type]
    if hasattr(return_type, "simpleString"):
        return_type = return_type.simpleString()
    if isinstance(return_type, str):
        name = _TYPE_ALIASES.get(return_type.strip().lower(), return_type.strip().lower())
        if name in RETURN_TYPES:
            return name
    raise TransformationError(f"unsupported return type {return_type!r} of a transformation function; use one of "
                              f"float, int, str, bool (or {', '.join(RETURN_TYPES)})")


class TransformationFunction:
    """One transformation function version, optionally bound to input features.

    Calling it with feature names binds it (``min_max_scaler("amount")``, ``add("a", "b")``);
    :meth:`alias` names its output(s). ``save()`` registers a function made by
    ``fs.create_transformation_function``.
    """

    def __init__(self, name: str, version: int | None, return_type: str, *, builtin: str | None = None,
                 function: Callable[..., Any] | None = None, features: Sequence[str] = (),
                 output_names: Sequence[str] | None = None, source: str = "", payload: str | None = None,
                 store: Any = None) -> None:
        if (builtin is None) == (function is None):
            raise TransformationError(f"transformation function '{name}': a built-in or a Python function, not "
                                      "both or neither")
        self.name = name
        self.version = version
        self.return_type = return_type
        self.builtin = builtin
        self.function = function
        self.features = tuple(features)
        self.output_names = tuple(output_names) if output_names is not None else None
        self.source = source
        self._payload = payload  # the stored pickle, reused so every copy runs the very same bytes
        self._store = store  # the StoreContext of fs.create_transformation_function, for save()

    def _copy(self, **changes: Any) -> TransformationFunction:
        values = {"builtin": self.builtin, "function": self.function, "features": self.features,
                  "output_names": self.output_names, "source": self.source, "payload": self._payload,
                  "store": self._store, "version": self.version}
        values.update(changes)
        version = values.pop("version")
        return TransformationFunction(self.name, version, self.return_type, **values)

    # -- binding ---------------------------------------------------------------------------
    def __call__(self, *features: str) -> TransformationFunction:
        """This function bound to the input features it reads, in the order of its parameters."""
        if not features or any(not isinstance(f, str) or not f for f in features):
            raise TransformationError(f"transformation function '{self.name}': bind it to feature names, "
                                      f"e.g. {self.name}(\"amount\"), got {features!r}")
        if self.builtin is not None and len(features) != 1:
            raise TransformationError(f"built-in transformation function '{self.name}' reads one feature, "
                                      f"got {list(features)}")
        if self.function is not None:
            arity = self.parameters()
            if arity is not None and len(arity) != len(features):
                raise TransformationError(f"transformation function '{self.name}' takes {len(arity)} feature(s) "
                                          f"({', '.join(arity)}), got {list(features)}")
        return self._copy(features=features, output_names=None)

    def alias(self, *names: str) -> TransformationFunction:
        """This function with its output feature(s) named (not for ``one_hot_encoder``, whose outputs are
        named after the categories)."""
        if self.builtin == "one_hot_encoder":
            raise TransformationError("one_hot_encoder names its outputs <feature>_<category>; it takes no alias")
        if len(names) != 1 or not isinstance(names[0], str) or not names[0]:
            raise TransformationError(f"transformation function '{self.name}': alias takes one output name, "
                                      f"got {names!r}")
        return self._copy(output_names=names)

    def parameters(self) -> list[str] | None:
        """The Python function's parameter names (None for a built-in or ``*args``)."""
        if self.function is None:
            return None
        params = list(inspect.signature(self.function).parameters.values())
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            return None
        return [p.name for p in params]

    def bound(self) -> TransformationFunction:
        """This function bound: as given, or a user function to its parameter names (hsfs's default)."""
        if self.features:
            return self
        names = self.parameters()
        if self.builtin is not None or not names:
            raise TransformationError(f"transformation function '{self.name}' is not bound to a feature: pass "
                                      f"{self.name}(\"<feature>\")")
        return self(*names)

    @property
    def output_name(self) -> str:
        """The output feature of a one-output function: its alias, the input's name (the feature is
        replaced) or, over several inputs, ``<function>_<input>_<input>...``."""
        if self.output_names:
            return self.output_names[0]
        if len(self.features) == 1:
            return self.features[0]
        return "_".join((self.name, *self.features))

    @property
    def needs_statistics(self) -> bool:
        """True for the built-ins, which are fitted on a training dataset."""
        return self.builtin is not None

    # -- running a user function -------------------------------------------------------------
    def call(self, values: Sequence[Any]) -> Any:
        """The user function on one row's input values, converted to the return type (None stays None);
        a failure is a :class:`TransformationError` naming the function, its version and the inputs."""
        function = self.function
        if function is None:
            raise TransformationError(f"'{self.name}' is a built-in; it is applied with its statistics")
        try:
            result = function(*values)
            return None if result is None else RETURN_TYPES[self.return_type](result)
        except Exception as exc:
            inputs = ", ".join(f"{f}={v!r}" for f, v in zip(self.features, values, strict=False))
            which = f" v{self.version}" if self.version is not None else ""
            raise TransformationError(f"transformation function '{self.name}'{which} failed on "
                                      f"{inputs}: {type(exc).__name__}: {exc}") from exc

    # -- storage -----------------------------------------------------------------------------
    def payload(self) -> str | None:
        """The user function pickled by value, base64 (None for a built-in)."""
        if self.function is None:
            return None
        if self._payload is None:
            self._payload = _pickle_by_value(self.function)
        return self._payload

    def to_dict(self) -> dict[str, Any]:
        """The JSON definition stored in the registry (with a feature view: bound features and outputs)."""
        return {"name": self.name, "version": self.version, "return_type": self.return_type,
                "builtin": self.builtin, "function": self.payload(), "source": self.source,
                "features": list(self.features),
                "output_names": list(self.output_names) if self.output_names is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any], store: Any = None) -> TransformationFunction:
        """Rebuild a stored definition (a user function is unpickled: see the module's note)."""
        function = _unpickle(data["function"], data["name"]) if data.get("function") else None
        return cls(data["name"], data.get("version"), data["return_type"], builtin=data.get("builtin"),
                   function=function, features=data.get("features") or (),
                   output_names=data.get("output_names"), source=data.get("source") or "",
                   payload=data.get("function"), store=store)

    def save(self) -> TransformationFunction:
        """Register this function (hsfs's ``fs.create_transformation_function(fn, version=).save()``)."""
        if self._store is None:
            raise TransformationError(f"transformation function '{self.name}' is not attached to a feature "
                                      "store: make it with fs.create_transformation_function(...)")
        if self.name in BUILTIN_FUNCTIONS:
            raise TransformationError(f"'{self.name}' is the name of a built-in transformation function")
        ctx = self._store
        version = self.version or ctx.registry.next_transformation_function_version(ctx.id, self.name)
        saved = self._copy(version=version, features=(), output_names=None)
        ctx.registry.create_transformation_function({"feature_store_id": ctx.id, "name": self.name,
                                                     "version": version, "definition": saved.to_dict(),
                                                     "created_by": getpass.getuser()})
        self.version = version
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransformationFunction) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.features))

    def __repr__(self) -> str:
        bound = f"({', '.join(map(repr, self.features))})" if self.features else ""
        return f"TransformationFunction({self.name!r}, version={self.version}){bound}"


def udf(return_type: Any, name: str | None = None) -> Callable[[Callable[..., Any]], TransformationFunction]:
    """hsfs's ``@udf(return_type)``: make a Python function over feature values a transformation function.

    The function takes one argument per input feature and is called once per row (``None`` for null);
    its result is converted to ``return_type`` (``float``, ``int``, ``str``, ``bool`` or a Spark type name).
    Register it with ``fs.create_transformation_function(fn, version=1).save()``; attach it to a feature
    view bound to features (``fn("amount")``; unbound, it reads the features named like its parameters).
    """
    type_name = return_type_name(return_type)

    def wrap(function: Callable[..., Any]) -> TransformationFunction:
        if not callable(function):
            raise TransformationError(f"@udf decorates a function, got {type(function).__name__}")
        fn_name = name or getattr(function, "__name__", "")
        if fn_name == "<lambda>":
            raise TransformationError("a lambda has no name: pass @udf(return_type, name=...)")
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError):
            source = ""
        return TransformationFunction(fn_name, None, type_name, function=function, source=source)

    return wrap


def _pickle_by_value(function: Callable[..., Any]) -> str:
    """The function and what it uses from its own module, pickled by value: the module need not be
    importable where it is loaded (a test module, a notebook, a script)."""
    from pyspark import cloudpickle

    module = sys.modules.get(getattr(function, "__module__", "") or "")
    by_value = (module is not None and module.__name__ not in ("__main__", "builtins")
                and not module.__name__.startswith("featurestore")
                and module.__name__ not in cloudpickle.list_registry_pickle_by_value())
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return base64.b64encode(cloudpickle.dumps(function)).decode("ascii")
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _unpickle(payload: str, name: str) -> Callable[..., Any]:
    import pickle

    try:
        return pickle.loads(base64.b64decode(payload))  # noqa: S301 - registry code, see the module's note
    except Exception as exc:
        raise TransformationError(f"transformation function '{name}' could not be loaded from the registry: "
                                  f"{type(exc).__name__}: {exc}") from exc


def _builtin(kind: str) -> TransformationFunction:
    return TransformationFunction(kind, 1, BUILTIN_TYPES[kind], builtin=kind)


min_max_scaler = _builtin("min_max_scaler")
"""``(x - min) / (max - min)`` with the training dataset's min and max; 0.0 when max == min."""
standard_scaler = _builtin("standard_scaler")
"""``(x - mean) / stddev`` (population standard deviation); 0.0 when the stddev is 0."""
robust_scaler = _builtin("robust_scaler")
"""``(x - median) / (q3 - q1)`` with Spark's ``percentile_approx`` quartiles; 0.0 when q3 == q1."""
label_encoder = _builtin("label_encoder")
"""The index of the value among the training dataset's distinct values, sorted; -1 for an unseen value."""
one_hot_encoder = _builtin("one_hot_encoder")
"""One 0/1 column ``<feature>_<category>`` per distinct training value (sorted); all 0 for an unseen value."""

BUILTIN_FUNCTIONS = {f.name: f for f in (min_max_scaler, standard_scaler, robust_scaler, label_encoder,
                                         one_hot_encoder)}


def bind_all(value: Any, what: str) -> list[TransformationFunction]:
    """A feature view's ``transformation_functions=`` as bound functions: hsfs's list of bound functions
    (``[min_max_scaler("amount")]``) or its older dict ``{"amount": min_max_scaler}``."""
    if value is None:
        return []
    if isinstance(value, dict):
        items = []
        for feature, tf in value.items():
            if not isinstance(tf, TransformationFunction):
                raise TransformationError(f"{what}: transformation_functions[{feature!r}] must be a transformation "
                                          f"function, got {type(tf).__name__}")
            items.append(tf(feature))
        return items
    if isinstance(value, TransformationFunction):
        value = [value]
    if not isinstance(value, list | tuple):
        raise TransformationError(f"{what}: transformation_functions must be a list of transformation functions "
                                  f"bound to features (e.g. [min_max_scaler(\"amount\")]), got {type(value).__name__}")
    out = []
    for tf in value:
        if not isinstance(tf, TransformationFunction):
            raise TransformationError(f"{what}: transformation_functions holds {type(tf).__name__}, not a "
                                      "transformation function")
        out.append(tf.bound())
    return out


def from_definitions(definitions: list[dict[str, Any]] | None) -> list[TransformationFunction]:
    """The bound functions a feature view stores (``None`` for a view made before migration 9)."""
    return [TransformationFunction.from_dict(d) for d in definitions or []]
