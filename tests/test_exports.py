"""The public face: everything is importable from the package, and says so."""

from __future__ import annotations

import inspect
import pickle
import re
import subprocess
import sys
import types
import typing
from typing import Any

import attrs
import pytest

import supervised_loops
import supervised_loops.errors


def test_every_public_name_is_exported_and_reports_the_package_as_its_module() -> None:
    for name in supervised_loops.__all__:
        value = getattr(supervised_loops, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == "supervised_loops", name


def test_all_is_sorted_and_has_no_duplicates() -> None:
    names = supervised_loops.__all__
    assert len(set(names)) == len(names)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))


def test_the_core_never_imports_aiostream() -> None:
    # aiostream is GPL-3.0-or-later: only supervised_loops.streams may import it.
    code = (
        "import sys, supervised_loops, supervised_loops.testing, supervised_loops.service.cli;"
        "assert 'aiostream' not in sys.modules, sorted(m for m in sys.modules if 'aio' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_documented_entry_points_are_where_the_docs_put_them() -> None:
    from supervised_loops.messages import (  # noqa: F401
        Cancel,
        ChangeInterval,
        GetStatus,
        Pause,
        Restart,
        Resume,
        RunNow,
        Stop,
    )

    assert callable(supervised_loops.run)
    assert callable(supervised_loops.loop)
    assert callable(supervised_loops.child)


def _public_modules() -> list[types.ModuleType]:
    import supervised_loops.events
    import supervised_loops.messages
    import supervised_loops.render
    import supervised_loops.schedule
    import supervised_loops.streams
    import supervised_loops.testing

    return [
        supervised_loops,
        supervised_loops.events,
        supervised_loops.messages,
        supervised_loops.render,
        supervised_loops.schedule,
        supervised_loops.streams,
        supervised_loops.testing,
    ]


def test_dir_of_the_package_and_all_name_the_same_public_objects() -> None:
    # A name imported into __init__ but missing from __all__ (or the reverse)
    # fails here: star-imports, docs and type checkers all read __all__.
    public = {
        name
        for name in dir(supervised_loops)
        if not name.startswith("_")
        and not isinstance(getattr(supervised_loops, name), types.ModuleType)
    }
    assert public == set(supervised_loops.__all__)


def _types_in(annotation: Any, found: set[type]) -> None:
    if isinstance(annotation, type):
        found.add(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(origin, type):
        found.add(origin)
    for argument in typing.get_args(annotation):
        _types_in(argument, found)


def _defining_module(cls: type) -> types.ModuleType:
    pattern = re.compile(rf"^class {cls.__name__}\b", re.MULTILINE)
    for name, module in sorted(sys.modules.items()):
        if (
            name.startswith("supervised_loops.")
            and getattr(module, cls.__name__, None) is cls
            and pattern.search(inspect.getsource(module))
        ):
            return module
    raise LookupError(cls)


#: Exported classes that users receive but never construct: their
#: constructors are not public API (a Subscription comes from events()).
_MADE_BY_THE_LIBRARY = {"Subscription"}


def _signature_types(obj: Any) -> dict[type, str]:
    """Our types named in the signatures (and public attrs fields) of an exported object."""
    functions: list[tuple[str, Any]] = []
    if inspect.isclass(obj):
        if attrs.has(obj):
            functions.append((obj.__name__, obj))  # the fields' annotations
        for attribute, value in inspect.getmembers(obj):
            if attribute.startswith("_") and attribute != "__init__":
                continue
            if attribute == "__init__" and obj.__name__ in _MADE_BY_THE_LIBRARY:
                continue
            if isinstance(value, property):
                value = value.fget
            if inspect.isfunction(value) and not (attrs.has(obj) and attribute == "__init__"):
                functions.append((f"{obj.__name__}.{attribute}", value))
    elif inspect.isfunction(obj):
        functions.append((obj.__name__, obj))
    found: dict[type, str] = {}
    for where, function in functions:
        named: set[type] = set()
        # A class's __module__ says "supervised_loops" (see __init__); its
        # annotations must be read in the module that defines it.
        namespace = vars(_defining_module(function)) if inspect.isclass(function) else None
        hints = typing.get_type_hints(function, globalns=namespace)
        if inspect.isclass(function):  # private attrs fields are not API
            hints = {key: value for key, value in hints.items() if not key.startswith("_")}
        for annotation in hints.values():
            _types_in(annotation, named)
        for kind in named:
            if kind.__module__.split(".")[0] == "supervised_loops":
                found.setdefault(kind, where)
    return found


def test_every_type_in_a_public_signature_is_exported() -> None:
    # Hooks receive Child, Exit (whose kind is an ExitKind); events() returns
    # a Subscription of Events; subclasses of Loop handle ControlMessages...
    # a user must be able to import every type they are handed or must name.
    exported = {getattr(supervised_loops, name) for name in supervised_loops.__all__}
    missing = {}
    for name in supervised_loops.__all__:
        for kind, where in _signature_types(getattr(supervised_loops, name)).items():
            if kind not in exported:
                missing[kind.__qualname__] = where
    assert missing == {}
    for name in ("Exit", "ExitKind", "ControlMessage", "Subscription", "Event"):
        assert name in supervised_loops.__all__


def test_clock_protocol_is_internal_since_no_public_api_takes_one() -> None:
    # Wall time comes from the clock attached to the event loop; the only
    # way to replace it is supervised_loops.testing (docs/testing.md).
    assert "Clock" not in supervised_loops.__all__
    assert "SystemClock" not in supervised_loops.__all__


def _exception_classes() -> list[type[BaseException]]:
    return [
        value
        for name in supervised_loops.errors.__all__
        for value in [getattr(supervised_loops.errors, name)]
    ]


def _instance_of(cls: type[BaseException]) -> BaseException:
    parameters = list(inspect.signature(cls).parameters)
    samples: dict[str, Any] = {
        "actor": "app/poller",
        "message": ("Restart", 1),
        "timeout": 2.5,
        "supervisor": "app",
        "restarts": 3,
        "seconds": 5.0,
        "child": "poller",
        "name": "missing",
        "reason": "app is stopped: restart it first",
    }
    return cls(*(samples[parameter] for parameter in parameters))


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda cls: cls.__name__)
def test_every_exception_survives_pickling_with_message_and_attributes(
    cls: type[BaseException],
) -> None:
    error = _instance_of(cls)
    error.add_note("seen in a child process")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
    assert copy.__notes__ == ["seen in a child process"]


def test_every_error_class_is_exported_from_the_package() -> None:
    for cls in _exception_classes():
        assert getattr(supervised_loops, cls.__name__) is cls


def test_no_two_public_classes_share_a_name() -> None:
    # The error ActorStopped and an event of the same name made isinstance
    # checks and logs ambiguous; the event is ActorEnded now.
    seen: dict[str, Any] = {}
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.isclass(value):
                other = seen.setdefault(value.__name__, value)
                assert other is value, f"two classes named {value.__name__}"


def test_the_old_event_name_is_a_deprecated_alias_of_actor_ended() -> None:
    from supervised_loops import events

    with pytest.warns(DeprecationWarning, match="renamed ActorEnded"):
        alias = events.ActorStopped  # type: ignore[attr-defined]
    assert alias is events.ActorEnded
    assert supervised_loops.ActorStopped is not events.ActorEnded
    with pytest.raises(AttributeError):
        events.NoSuchEvent  # type: ignore[attr-defined]  # noqa: B018


def _public_coroutines(module: types.ModuleType) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name)
        if inspect.iscoroutinefunction(value):
            found.append((name, value))
        if inspect.isclass(value):
            for attribute, member in vars(value).items():
                public = not attribute.startswith("_") or attribute in ("__anext__", "__aexit__")
                if public and inspect.iscoroutinefunction(member):
                    found.append((f"{name}.{attribute}", member))
    return found


@pytest.mark.parametrize(
    "module_name",
    ["events", "messages", "schedule", "backoff", "testing", "errors", "clock", "_validate"],
)
def test_every_public_coroutine_says_what_cancellation_does(module_name: str) -> None:
    import importlib

    module = importlib.import_module(f"supervised_loops.{module_name}")
    silent = [
        name
        for name, function in _public_coroutines(module)
        if "cancel" not in (inspect.getdoc(function) or "").lower()
    ]
    assert silent == []
