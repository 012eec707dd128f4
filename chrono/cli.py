"""How every ``python -m chrono.<command>`` runs: Hydra composition from ``conf/`` and one-line errors.

- :func:`hydra_command` wraps a command's body: Hydra composes ``conf/<config_name>.yaml`` with the
  command-line overrides (``key=value``; ``-m`` sweeps where the command allows them), then the body runs.
  The suite's own errors (:class:`chrono.errors.ChronoError`: a file or setting it cannot use) print one
  line ``<prog>: error: <message>`` and exit with code 2; anything else is a bug and keeps its traceback.
- The commands that used argparse flags before they moved to Hydra (``chrono.bench``,
  ``chrono.data.synthetic``) still take those flags: :func:`legacy_overrides` turns ``--num-clips 10`` into
  ``num_clips=10``, ``--force`` into ``force=true``, ``--no-isolate`` into ``isolate=false``.
- :func:`compose` is the same composition for library callers and tests (no run folder).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Sequence

from chrono.errors import USAGE_EXIT_CODE, ChronoError
from chrono.files import conf_dir


def one_line(err: BaseException) -> str:
    """The message of a suite error on one line. An error raised in a DataLoader worker comes back wrapped in
    the worker's traceback: its own message is the last line there."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("Error") else last
    return " ".join(text.split("\n")).replace("\n", " ")


def report_error(prog: str, err: BaseException) -> None:
    """The one-line form of a suite error."""
    print(f"{prog}: error: {one_line(err)}", file=sys.stderr, flush=True)


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except ImportError:  # pragma: no cover - hydra is a dependency
        return False


def one_line_errors(prog: str) -> Callable:
    """Decorator: :class:`ChronoError` -> one line on stderr and ``SystemExit(2)``; other errors pass.

    Inside a ``-m`` sweep the error is printed the same way and then raised again, so that Hydra records the
    job as failed and the sweep goes on with its other jobs (its summary names what failed).
    """

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ChronoError as err:
                report_error(prog, err)
                if _in_multirun():
                    raise
                raise SystemExit(USAGE_EXIT_CODE) from None

        return wrapped

    return wrap


def _override_value(values: list[str]) -> str:
    if not values:
        return "true"
    if len(values) > 1:
        return "[" + ",".join(values) + "]"
    value = values[0]
    return f"'{value}'" if any(c in value for c in ",[]{}()= ") else value


def legacy_overrides(argv: Sequence[str], positional: str | None = None) -> list[str]:
    """argparse-style flags -> Hydra overrides; ``key=value`` items and ``-m``/Hydra flags pass unchanged.

    ``positional``: the config key a leading bare word is given to (``python -m chrono.data.synthetic train``
    -> ``what=train``).
    """
    argv, out, i = list(argv), [], 0
    hydra_flags = {"-m", "--multirun", "--help", "-h", "--hydra-help", "--info", "--cfg", "-c", "--resolve",
                   "--config-dir", "-cd", "--config-name", "-cn", "--package", "-p", "--run", "-r", "--shell-completion", "-sc"}
    while i < len(argv):
        arg = argv[i]
        if arg in hydra_flags or "=" in arg and not arg.startswith("--") or arg.startswith("+") or arg.startswith("~"):
            out.append(arg)
            i += 1
            continue
        if arg.startswith("--"):
            key, _, inline = arg[2:].partition("=")
            i += 1
            values = [inline] if inline else []
            while not inline and i < len(argv) and not argv[i].startswith("--") and "=" not in argv[i]:
                values.append(argv[i])
                i += 1
            if key.startswith("no-") and not values:
                out.append(f"{key[3:].replace('-', '_')}=false")
            else:
                out.append(f"{key.replace('-', '_')}={_override_value(values)}")
            continue
        if positional is not None and not out:
            out.append(f"{positional}={arg}")
            i += 1
            continue
        out.append(arg)
        i += 1
    return out


def hydra_command(config_name: str, prog: str, positional: str | None = None) -> Callable:
    """Decorator turning ``body(cfg)`` into the ``main()`` of a command composed from ``conf/<config_name>``.

    ``main(argv=None)`` reads the process's arguments through Hydra (run folder, sweeps, ``--help``);
    ``main(argv=[...])`` composes directly (no run folder, no sweep) and returns the body's result.
    """

    def decorate(body: Callable) -> Callable:
        guarded = one_line_errors(prog)(body)

        def main(argv: Sequence[str] | None = None) -> Any:
            if argv is not None:
                return guarded(compose(config_name, legacy_overrides(argv, positional)))
            import hydra

            sys.argv[1:] = legacy_overrides(sys.argv[1:], positional)
            check_overrides(config_name, prog, sys.argv[1:])
            return hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(guarded)()

        main.__doc__ = body.__doc__
        main.body = body
        return main

    return decorate


_HYDRA_FLAGS = ("-m", "--multirun", "--help", "-h", "--hydra-help", "--info", "--cfg", "-c", "--resolve",
                "--shell-completion", "-sc", "--config-dir", "-cd", "--config-name", "-cn")


def check_overrides(config_name: str, prog: str, argv: Sequence[str]) -> None:
    """Compose the config with the command line's overrides before Hydra runs, so that a bad override
    (``stepz=3``, ``steps=[1``, an unknown group option) is one line and exit 2 instead of Hydra's report.
    Sweeps (``-m``) and Hydra's own flags are left to Hydra."""
    if any(a in _HYDRA_FLAGS or a.startswith("--") for a in argv):
        return
    try:
        compose(config_name, [a for a in argv if not a.startswith("hydra.") and not a.startswith("hydra/")])
    except Exception as err:  # noqa: BLE001 - Hydra and OmegaConf raise many kinds; each is a bad command line
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if not isinstance(err, (HydraException, OmegaConfBaseException)):
            raise
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        report_error(prog, ChronoError(f"{message} (see --help)"))
        raise SystemExit(USAGE_EXIT_CODE) from None


def compose(config_name: str, overrides: Sequence[str] = ()) -> Any:
    """The config ``conf/<config_name>.yaml`` with ``overrides``, as a command would see it (resolvers
    registered; Hydra's own node left out)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from chrono.config import register

    register()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))
