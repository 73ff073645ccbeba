"""Red's entry point: Downloader's libraries are made to fit Red, or a clear CogLoadError.

The fitting is tested on a miniature of the real case (Red 3.5 pins typing-extensions 4.13.2;
the newest pydantic-core imports ``typing_extensions.Sentinel``, new in 4.14): a "Red
environment" folder holds ``lf_test_te`` 1.0, which has no ``Sentinel``; local wheels offer
``lf_test_te`` 1.0 and 2.0 and ``lf_test_sdk`` 1.0 (needs te>=1) and 2.0 (needs te>=2 and
imports ``Sentinel``). pip runs offline, on those wheels only.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from redbot.core.errors import CogLoadError

import loopflow
from loopflow.downloader_libraries import (
    LibraryFitError,
    ahead_of,
    environment_pins,
    fit_libraries,
    import_failure,
    install_together,
    module_name,
)

SDK, TE = "lf-test-sdk", "lf-test-te"
TE_V2 = "class Sentinel:\n    pass\n"
SDK_V2 = "from lf_test_te import Sentinel\n"


def info_requirements() -> list[str]:
    root = Path(loopflow.__file__).parent
    return list(json.loads((root / "info.json").read_text())["requirements"])


def make_wheel(folder: Path, name: str, version: str, code: str, requires: str = "") -> None:
    """A pure-Python wheel of one module (``name`` with ``_``), as pip installs it."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires:
        metadata += f"Requires-Dist: {requires}\n"
    files = {
        f"{module}.py": f"VERSION = {version!r}\n{code}",
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{module}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip (in children of this process) sees only the miniature's wheels."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, TE, "1.0", "")
    make_wheel(wheels, TE, "2.0", TE_V2)
    make_wheel(wheels, SDK, "1.0", "import lf_test_te\n", f"{TE}>=1")
    make_wheel(wheels, SDK, "2.0", SDK_V2, f"{TE}>=2")
    for key, value in {
        "PIP_CONFIG_FILE": os.devnull,  # no machine-wide index, find-links or constraints
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_COMPILE": "1",
    }.items():
        monkeypatch.setenv(key, value)
    return wheels


@pytest.fixture
def red_env(tmp_path: Path) -> Path:
    """The miniature's Red environment: ``lf_test_te`` 1.0, installed."""
    env = tmp_path / "red-env"
    info = env / "lf_test_te-1.0.dist-info"
    info.mkdir(parents=True)
    (env / "lf_test_te.py").write_text("VERSION = '1.0'\n")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {TE}\nVersion: 1.0\n")
    return env


@pytest.fixture
async def downloader_lib(tmp_path: Path, offline_pip: Path) -> Path:
    """A lib folder as Downloader leaves it: ``pip install -U -t lib lf-test-sdk``, which
    ignores what Red has and takes the newest of everything (sdk 2.0, te 2.0)."""
    lib = tmp_path / "lib"
    await install_together([SDK], lib, [])
    assert (lib / "lf_test_sdk.py").read_text().startswith("VERSION = '2.0'")
    return lib


def search_path(red_env: Path, lib: Path) -> list[str]:
    """Red's ``sys.path``: its environment first, Downloader's lib folder appended."""
    return [str(red_env), *sys.path, str(lib)]


async def test_downloaders_libraries_are_installed_again_within_reds_versions(
    red_env: Path, downloader_lib: Path
) -> None:
    path = search_path(red_env, downloader_lib)
    failure = await import_failure(["lf_test_sdk"], path)
    assert failure is not None and "cannot import name 'Sentinel'" in failure

    assert await fit_libraries([f"{SDK}>=1"], downloader_lib, search_path=path) is True
    assert await import_failure(["lf_test_sdk"], path) is None
    assert (downloader_lib / "lf_test_sdk.py").read_text().startswith("VERSION = '1.0'")
    # Fitting libraries are left alone (no pip run: the wheels are not even needed).
    assert await fit_libraries([f"{SDK}>=1"], downloader_lib, search_path=path) is False


async def test_a_failed_pip_run_is_an_error_that_says_why(
    red_env: Path, downloader_lib: Path
) -> None:
    path = search_path(red_env, downloader_lib)
    with pytest.raises(LibraryFitError, match=r"pip failed: .*lf-test-sdk>=3"):
        await fit_libraries([f"{SDK}>=3"], downloader_lib, search_path=path)
    assert (downloader_lib / "lf_test_sdk.py").read_text().startswith("VERSION = '2.0'")


def test_the_pins_are_what_import_finds_ahead_of_the_lib_folder(
    red_env: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    path = search_path(red_env, lib)
    assert ahead_of(lib, path) == path[:-1]
    pins = environment_pins(ahead_of(lib, path))
    assert f"{TE}==1.0" in pins
    assert f"typing_extensions=={importlib.metadata.version('typing_extensions')}" in pins
    assert len(pins) == len({pin.split("==")[0].lower() for pin in pins})  # first of each name


def test_each_requirement_names_the_module_it_installs() -> None:
    owners = importlib.metadata.packages_distributions()
    for requirement in info_requirements():
        name = requirement.split(">")[0].split("<")[0].split("=")[0]
        distributions = {d.lower().replace("_", "-") for d in owners[module_name(requirement)]}
        assert name in distributions, (requirement, module_name(requirement))


async def test_libraries_that_cannot_be_fitted_name_the_pipinstall_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline_pip: Path
) -> None:
    """Loaded from Downloader's copy (no ``loopflow_cog``), with a requirement that neither
    imports nor installs: Red's CogLoadError says why and gives the manual line."""
    monkeypatch.setitem(sys.modules, "loopflow_cog", None)
    monkeypatch.setattr("redbot.core.data_manager.cog_data_path", lambda **_: tmp_path)
    monkeypatch.setattr("loopflow._requirements", lambda: [f"{SDK}>=3"])
    with pytest.raises(CogLoadError) as caught:
        await loopflow.setup(object())
    message = str(caught.value)
    assert message.startswith("loopflow could not make Downloader's libraries fit this Red")
    assert "pip failed" in message
    te = importlib.metadata.version("typing_extensions")
    assert f'`[p]pipinstall "typing-extensions=={te}" "{SDK}>=3"`' in message


async def test_an_import_failure_while_loading_names_the_pipinstall_fix(monkeypatch) -> None:
    async def broken_setup(bot: object) -> None:
        raise ImportError("cannot import name 'Sentinel' from 'typing_extensions'")

    monkeypatch.setattr("loopflow.cog_adapter.setup", broken_setup)  # what setup() loads
    with pytest.raises(CogLoadError) as caught:
        await loopflow.setup(object())
    message = str(caught.value)
    assert "could not import a library it needs: cannot import name 'Sentinel'" in message
    te = importlib.metadata.version("typing_extensions")
    assert f'[p]pipinstall "typing-extensions=={te}" ' in message
    assert all(f'"{requirement}"' in message for requirement in info_requirements())


def test_the_library_and_downloader_ask_for_the_same_requirements() -> None:
    pyproject = (Path(loopflow.__file__).parent.parent / "pyproject.toml").read_text()
    for requirement in info_requirements():
        assert f'"{requirement}"' in pyproject


def test_unloading_forgets_the_adapter_so_a_reload_runs_new_code(tmp_path: Path) -> None:
    # A fresh interpreter: dropping modules must not disturb this test process.
    code = (
        "import asyncio, sys, loopflow, loopflow_cog.cog\n"
        "old = loopflow_cog.cog.Loopflow\n"
        "class Bot:\n"
        "    async def remove_cog(self, name): print('removed', name)\n"
        "asyncio.run(loopflow.teardown(Bot()))\n"
        "left = sorted(n for n in sys.modules if n.split('.')[0] == 'loopflow_cog')\n"
        "import loopflow_cog.cog\n"
        "print(left, loopflow_cog.cog.Loopflow is old)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["removed Loopflow", "[] False"]


def test_the_adapter_loads_inside_the_package_so_red_unloads_and_finds_it() -> None:
    # Red's [p]slash enablecog and discord.py's unload both go by the package name.
    code = (
        "import asyncio, loopflow, loopflow.cog_adapter as adapter, loopflow_cog\n"
        "async def called(name, bot): print(name)\n"
        "adapter.setup = lambda bot: called('loopflow.cog_adapter', bot)\n"
        "loopflow_cog.setup = lambda bot: called('loopflow_cog', bot)\n"
        "asyncio.run(loopflow.setup(None))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "loopflow.cog_adapter", result.stderr[-2000:]
