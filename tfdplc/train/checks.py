"""Checks of a gin config that a run makes before it writes anything.

gin checks parameter names when it parses a binding, but not the values: a value of the wrong type fails
only when the configurable is called, a misspelled macro (`k = 8` where the configs use `K`) is a new,
unused macro, and a resumed run may silently train with different settings than its checkpoints. The
functions here read gin's config text (`gin.config_str()`, which is also what a workdir's `config.gin`
holds) with gin's own parser, so the trainer can refuse such configs with one clear line.
"""

import collections.abc
import dataclasses
import re
import typing
from typing import Any, Dict, List, Optional, Sequence, Tuple

import gin
from gin import config_parser

__all__ = [
    "ConfigText",
    "GinConfigError",
    "check_argument_types",
    "config_changes",
    "configurable_of_error",
    "explain_error",
    "unused_macros",
]


class GinConfigError(ValueError):
    """A gin config file or binding could not be parsed, or its values are not usable.

    Attributes:
      configurable: name of the configurable whose call failed, when known (e.g. "encoder_E"); a caller
        that knows the user's bindings names the one at fault with `explain_error`.
    """

    def __init__(self, message: str, configurable: Optional[str] = None):
        super().__init__(message)
        self.configurable = configurable


@dataclasses.dataclass(frozen=True)
class _Macro:
    name: str

    def __repr__(self):
        return f"%{self.name}"


@dataclasses.dataclass(frozen=True)
class _Reference:
    name: str
    evaluate: bool

    def __repr__(self):
        return f"@{self.name}{'()' if self.evaluate else ''}"


class _Delegate(config_parser.ParserDelegate):
    """Keeps references and macros as inert values instead of resolving them against the registry."""

    def configurable_reference(self, scoped_configurable_name, evaluate):  # noqa: D102
        # Short names, as for selectors: gin prints `@tfdplc.losses.mse` or `@mse` depending on what
        # else is registered, for the same configurable.
        scope, _, name = scoped_configurable_name.rpartition("/")
        return _Reference(f"{scope}/{_short(name)}" if scope else _short(name), evaluate)

    def macro(self, macro_name):  # noqa: D102
        return _Macro(macro_name)


def _walk(value):
    """Yields `value` and every value nested in its containers."""
    yield value
    if isinstance(value, dict):
        for item in list(value.keys()) + list(value.values()):
            yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


def _short(selector: str) -> str:
    """`tfdplc.nets.encoder_E` -> `encoder_E` (gin accepts any unambiguous suffix)."""
    return selector.rsplit(".", 1)[-1]


class ConfigText:
    """The bindings and macros of a gin config text, parsed without touching gin's registry.

    Attributes:
      macros: {name: value} of the macro definitions (`K = 4`).
      parameters: {"scope/configurable.parameter": value} of the parameter bindings, with the
        configurable's short name (the part after the last dot).
    """

    def __init__(self, text: str):
        self.macros: Dict[str, Any] = {}
        self.parameters: Dict[str, Any] = {}
        for statement in config_parser.ConfigParser(text, _Delegate()):
            if not isinstance(statement, config_parser.BindingStatement):
                continue  # imports and includes
            scope = f"{statement.scope}/" if statement.scope else ""
            if not statement.arg_name:
                self.macros[scope + statement.selector] = statement.value
            else:
                key = f"{scope}{_short(statement.selector)}.{statement.arg_name}"
                self.parameters[key] = statement.value

    def resolve(self, value: Any, _depth: int = 0) -> Any:
        """`value` with its macro references replaced by the macros' values (recursively)."""
        if _depth > 50:
            raise GinConfigError(f"Macro references loop: {value!r}.")
        if isinstance(value, _Macro):
            if value.name not in self.macros:
                return value
            return self.resolve(self.macros[value.name], _depth + 1)
        if isinstance(value, tuple):
            return tuple(self.resolve(v, _depth + 1) for v in value)
        if isinstance(value, list):
            return [self.resolve(v, _depth + 1) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, _depth + 1) for k, v in value.items()}
        return value

    def resolved_parameters(self) -> Dict[str, Any]:
        """{parameter: value} with every macro resolved."""
        return {key: self.resolve(value) for key, value in self.parameters.items()}

    def macros_used_by(self, configurable: str) -> set:
        """Names of the macros that a configurable's bindings reference, directly or through macros."""
        found, todo = set(), []
        for key, value in self.parameters.items():
            if key.split("/")[-1].split(".")[0] == _short(configurable):
                todo.append(value)
        while todo:
            for item in _walk(todo.pop()):
                if isinstance(item, _Macro) and item.name not in found:
                    found.add(item.name)
                    todo.append(self.macros.get(item.name))
        return found

    def referenced_macros(self) -> set:
        """Names of every macro some binding or macro refers to."""
        values = list(self.parameters.values()) + list(self.macros.values())
        return {item.name for value in values for item in _walk(value) if isinstance(item, _Macro)}


def unused_macros(text: Optional[str] = None) -> List[str]:
    """Macros a config defines but never uses (a misspelled `k = 8` for `K`, say).

    Args:
      text: a gin config text; default: the current config (`gin.config_str()`).

    Returns:
      The unused macro names, sorted.
    """
    config = ConfigText(gin.config_str() if text is None else text)
    return sorted(set(config.macros) - config.referenced_macros())


def config_changes(saved: str, current: str, ignore: Sequence[str] = ()) -> List[Tuple[str, Any, Any]]:
    """Parameters whose values differ between two config texts, with macros resolved.

    Args:
      saved: the config a workdir was trained with (its `config.gin`).
      current: the config of the run about to resume.
      ignore: parameters ("train.total_steps") left out of the comparison.

    Returns:
      (parameter, saved value, current value) triples, sorted by parameter; a parameter bound in only
      one of the texts has the value `"(unset)"` in the other.
    """
    old = ConfigText(saved).resolved_parameters()
    new = ConfigText(current).resolved_parameters()
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        before, after = old.get(key, "(unset)"), new.get(key, "(unset)")
        if repr(before) != repr(after):
            changes.append((key, before, after))
    return changes


_CONFIGURABLE_IN_MESSAGE = re.compile(r"\n\s*In call to configurable '([^']+)'")


def configurable_of_error(error: BaseException) -> Optional[str]:
    """The innermost configurable named in gin's "In call to configurable 'X'" notes, or None."""
    match = _CONFIGURABLE_IN_MESSAGE.search(str(error))
    return match.group(1) if match else None


def reason_of_error(error: BaseException) -> str:
    """An error's message without gin's "In call to configurable" notes, on one line."""
    message = _CONFIGURABLE_IN_MESSAGE.split(str(error), maxsplit=1)[0]
    return " ".join(message.split()) or type(error).__name__


def _binding_parts(binding: str) -> Optional[Tuple[str, str]]:
    """("macro", name) or ("parameter", short configurable name) of one binding string."""
    try:
        statement = config_parser.ConfigParser(binding, _Delegate()).parse_statement()
    except SyntaxError:
        return None
    if not isinstance(statement, config_parser.BindingStatement):
        return None
    if not statement.arg_name:
        return ("macro", statement.selector)
    return ("parameter", _short(statement.selector))


def explain_error(error: GinConfigError, bindings: Sequence[str], config_text: Optional[str] = None) -> str:
    """One line naming the user's binding at fault, when one of `bindings` caused `error`.

    A binding is at fault when it binds a parameter of the failing configurable, or a macro that
    configurable's bindings use. The last such binding wins (as in gin). Parameters bound to a macro that
    the message names (`DPLC.generator_path`) are followed by the macro to set instead.

    Args:
      error: the error, with `configurable` set when a configurable's call failed.
      bindings: the user's bindings, in the order they were applied.
      config_text: the current config text (default: `gin.config_str()`).

    Returns:
      "Bad gin binding '<binding>': <reason>" or, with no binding at fault, "Bad gin config (in X):
      <reason>"; an error without a configurable keeps its own message (it names its file or binding,
      or is about the workdir), without gin's notes.
    """
    message = reason_of_error(error)
    if error.configurable is None:
        return message  # names its file or binding already, or is about the workdir (a resume)
    config = ConfigText(gin.config_str() if config_text is None else config_text)
    for key, value in config.parameters.items():
        parameter = key.split("/")[-1]
        if isinstance(value, _Macro) and parameter in message and f"%{value.name}" not in message:
            message += f" ({parameter} is %{value.name} in this config: bind {value.name} = ...)"
    macros = config.macros_used_by(error.configurable)
    for binding in reversed(bindings):
        parts = _binding_parts(binding)
        if parts == ("parameter", _short(error.configurable)) or (
            parts is not None and parts[0] == "macro" and parts[1] in macros
        ):
            return f"Bad gin binding {binding!r}: {message}"
    return f"Bad gin config (in {error.configurable}): {message}"


def check_argument_types(configurable: str, function, arguments: Dict[str, Any]) -> None:
    """Checks argument values against the function's annotations (gin passes values as written).

    Understands plain classes (`int`, `str`, ...; a bool is not an int, an int is a float) and
    `Optional[...]` / `Sequence[...]` of them; other annotations are not checked.

    Args:
      configurable: the name to report, e.g. "train".
      function: the annotated function.
      arguments: {parameter: value} to check.

    Raises:
      GinConfigError: naming "configurable.parameter", the expected type and the value.
    """
    hints = typing.get_type_hints(function)
    for name, value in arguments.items():
        hint = hints.get(name)
        if hint is not None and not _matches(value, hint):
            raise GinConfigError(
                f"{configurable}.{name} must be {_describe(hint)}, got {value!r} ({type(value).__name__}).",
                configurable=configurable,
            )


def _matches(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin in (list, tuple, collections.abc.Sequence):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return False
        return not args or all(_matches(v, args[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this check does not understand


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return " or ".join(_describe(arg) for arg in args)
    if hint is type(None):
        return "None"
    if origin is not None:
        return f"a list of {_describe(args[0])}" if args else "a list"
    return {int: "an int", float: "a number", bool: "True or False", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )
